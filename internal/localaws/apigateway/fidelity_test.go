package apigateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
)

// The events the stand-in builds carry every member that API Gateway's own
// (the stored captures) fill, in the same JSON type: values differ, the
// shape does not. Null or empty members of a capture ask for nothing.
func TestEventsHaveTheCapturesMembers(t *testing.T) {
	for _, c := range []struct {
		name, stage, fixture string
		foldHeaderNames      bool // 2.0 lower-cases header names; 1.0 keeps the sender's
		// except names the members the stand-in leaves out, and why.
		except map[string]string
	}{
		{"HTTP API, payload 2.0", "", "apigw-v2-iam-terminate.json", true, map[string]string{
			"requestContext.authorizer.iam.principalOrgId": "the stand-in's callers belong to no organization (the function does not read it)",
		}},
		{"private REST API, payload 1.0", "prod", "apigw-rest-iam-terminate.json", false, map[string]string{
			// events.APIGatewayRequestIdentity, the type the event is built
			// as and the function decodes, has no such members: the
			// function never sees them from AWS either. The VPC and its
			// endpoint are in the x-amzn-vpc-id and x-amzn-vpce-id headers.
			"requestContext.identity.principalOrgId": "not in the library's type",
			"requestContext.identity.vpcId":          "not in the library's type",
			"requestContext.identity.vpceId":         "not in the library's type",
			// The library's type omits a false isBase64Encoded; absent
			// decodes as false.
			"isBase64Encoded": "omitted when false by the library's type",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want map[string]any
			raw, err := os.ReadFile("../../stophandler/testdata/" + c.fixture)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			got := capture(t, c.stage, "v1.proof")
			compare(t, "", want, got, c.foldHeaderNames, c.except)
			if t.Failed() {
				t.Logf("the stand-in's event: %s", mustJSON(got))
			}
		})
	}
}

// capture sends a terminate request as the supervisor does (signed with a
// task role session's credentials, its proof header, a JSON body) through
// the stand-in, and returns the event the function got, as JSON: through
// the Lambda invoke API, as the Runtime Interface Emulator gets it.
func capture(t *testing.T, stage string, proofs ...string) map[string]any {
	var payload []byte
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, `{"statusCode":202,"headers":{"Content-Type":"application/json"},"body":"{}"}`)
	}))
	defer fn.Close()
	invoke := apigateway.InvokeURL(fn.URL)
	if stage != "" {
		invoke = apigateway.RESTInvokeURL(fn.URL, stage)
	}
	gw := httptest.NewServer(&apigateway.Gateway{
		Routes: []string{"POST /terminate"}, Region: "eu-west-1", AccountID: "111122223333", Now: time.Now,
		Callers: []apigateway.Caller{{Credentials: creds, ARN: callerARN, AccountID: "111122223333", UserID: "AROATESTROLE:0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"}},
		Invoke:  invoke, Stage: stage,
	})
	defer gw.Close()

	url := gw.URL + "/terminate"
	if stage != "" {
		url = gw.URL + "/" + stage + "/terminate"
	}
	body := `{"taskArn":"arn:aws:ecs:eu-west-1:111122223333:task/bastions/0f3a9c1be7d84a52b6c1d2e3f4a5b6c7","reason":"TTL 2h0m0s expired"}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header["X-Bastion-Ttl-Identity"] = proofs
	req.Header.Set("User-Agent", "bastion-ttl-supervisor/test")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "eu-west-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var ev map[string]any
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatalf("the function's payload %q: %v", payload, err)
	}
	return ev
}

// A REST API passes a repeated header on as its last value in headers and
// all of them in multiValueHeaders; the HTTP API joins them with commas.
func TestARepeatedHeader(t *testing.T) {
	v2 := capture(t, "", "v1.first", "v1.second")["headers"].(map[string]any)
	if got := v2["x-bastion-ttl-identity"]; got != "v1.first,v1.second" {
		t.Errorf("2.0: %v", got)
	}
	rest := capture(t, "prod", "v1.first", "v1.second")
	if got := rest["headers"].(map[string]any)["X-Bastion-Ttl-Identity"]; got != "v1.second" {
		t.Errorf("1.0 headers: %v", got)
	}
	if got := mustJSON(rest["multiValueHeaders"].(map[string]any)["X-Bastion-Ttl-Identity"]); got != `["v1.first","v1.second"]` {
		t.Errorf("1.0 multiValueHeaders: %s", got)
	}
}

// compare reports each member of want (below path) that got lacks, leaves
// empty, or holds as another JSON type.
func compare(t *testing.T, path string, want, got any, foldHeaderNames bool, except map[string]string) {
	t.Helper()
	if want == nil || except[path] != "" {
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if len(w) > 0 && (!ok || len(g) == 0) {
			t.Errorf("%s: %s, want an object with members", path, describe(got))
			return
		}
		if foldHeaderNames && path == "headers" {
			w, g = lowerKeys(w), lowerKeys(g)
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			wv, p := w[k], k
			if path != "" {
				p = path + "." + k
			}
			compare(t, p, wv, g[k], foldHeaderNames, except)
		}
	case []any:
		g, ok := got.([]any)
		if len(w) > 0 && (!ok || len(g) == 0) {
			t.Errorf("%s: %s, want a list with values", path, describe(got))
			return
		}
		for i := range min(len(w), len(g)) {
			compare(t, fmt.Sprintf("%s[%d]", path, i), w[i], g[i], foldHeaderNames, except)
		}
	case string:
		if g, ok := got.(string); w != "" && (!ok || g == "") {
			t.Errorf("%s: %s, want a string like %q", path, describe(got), w)
		}
	case float64:
		if g, ok := got.(float64); w != 0 && (!ok || g == 0) {
			t.Errorf("%s: %s, want a number like %v", path, describe(got), w)
		}
	default: // a boolean
		if fmt.Sprintf("%T", got) != fmt.Sprintf("%T", w) {
			t.Errorf("%s: %s, want a %T like %v", path, describe(got), w, w)
		}
	}
}

func describe(v any) string {
	if v == nil {
		return "absent or null"
	}
	return fmt.Sprintf("%T %s", v, mustJSON(v))
}

func lowerKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
