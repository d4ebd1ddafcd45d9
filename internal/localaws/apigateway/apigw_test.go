package apigateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
)

const callerARN = "arn:aws:sts::111122223333:assumed-role/bastion/0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"

var creds = aws.Credentials{AccessKeyID: "ASIATEST", SecretAccessKey: "secret", SessionToken: "token"}

// gateway returns a test server and the events its function received.
func gateway(t *testing.T, fail error) (*httptest.Server, *[]events.APIGatewayV2HTTPRequest) {
	var got []events.APIGatewayV2HTTPRequest
	gw := &apigateway.Gateway{
		Routes: []string{"POST /terminate", "POST /extend"}, Region: "eu-west-1", AccountID: "111122223333", Now: time.Now,
		Callers: []apigateway.Caller{{Credentials: creds, ARN: callerARN, AccountID: "111122223333"}},
		Invoke: func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got = append(got, ev)
			return events.APIGatewayV2HTTPResponse{StatusCode: 202, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"ok":true}`}, fail
		},
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv, &got
}

func send(t *testing.T, method, url, body string, c aws.Credentials, service, region string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hex.EncodeToString(sum[:]), service, region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestGatewayPassesTheCallersIdentity(t *testing.T) {
	srv, got := gateway(t, nil)
	status, body := send(t, "POST", srv.URL+"/terminate", `{"taskArn":"x"}`, creds, "execute-api", "eu-west-1")
	if status != 202 || body != `{"ok":true}` {
		t.Fatalf("%d %s", status, body)
	}
	if len(*got) != 1 {
		t.Fatalf("function invoked %d times", len(*got))
	}
	ev := (*got)[0]
	if ev.RequestContext.Authorizer.IAM.UserARN != callerARN || ev.RequestContext.HTTP.Method != "POST" || ev.Body != `{"taskArn":"x"}` || ev.RawPath != "/terminate" {
		t.Fatalf("event %+v", ev)
	}
}

func TestGatewayRejectsBeforeTheFunction(t *testing.T) {
	srv, got := gateway(t, nil)
	other := aws.Credentials{AccessKeyID: "ASIATEST", SecretAccessKey: "wrong"}
	unknown := aws.Credentials{AccessKeyID: "ASIAUNKNOWN", SecretAccessKey: "secret"}
	for name, c := range map[string]struct {
		method, path string
		creds        aws.Credentials
		service, reg string
		status       int
	}{
		"wrong secret":  {"POST", "/terminate", other, "execute-api", "eu-west-1", 403},
		"unknown key":   {"POST", "/terminate", unknown, "execute-api", "eu-west-1", 403},
		"other region":  {"POST", "/terminate", creds, "execute-api", "us-east-1", 403},
		"other service": {"POST", "/terminate", creds, "ecs", "eu-west-1", 403},
		"other method":  {"GET", "/terminate", creds, "execute-api", "eu-west-1", 404},
		"other path":    {"POST", "/stop", creds, "execute-api", "eu-west-1", 404},
	} {
		if status, body := send(t, c.method, srv.URL+c.path, "{}", c.creds, c.service, c.reg); status != c.status {
			t.Errorf("%s: %d %s, want %d", name, status, body, c.status)
		}
	}
	if len(*got) != 0 {
		t.Fatalf("the function was invoked %d times for rejected requests", len(*got))
	}
}

func TestGatewayFunctionErrorIs500(t *testing.T) {
	srv, _ := gateway(t, errors.New("Runtime.ExitError"))
	if status, body := send(t, "POST", srv.URL+"/terminate", "{}", creds, "execute-api", "eu-west-1"); status != 500 || strings.Contains(body, "Runtime") {
		t.Fatalf("%d %s, want 500 without the error text", status, body)
	}
}
