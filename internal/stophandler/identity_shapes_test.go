package stophandler

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
)

// jsonEvent is a stored event as JSON objects, so that a test can make a
// member null or drop it, as API Gateway does, and the handler decodes it
// as it decodes what the runtime delivers.
type jsonEvent = map[string]any

func loadJSON(t *testing.T, path string) jsonEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // numbers go back out as they were written
	var ev jsonEvent
	if err := d.Decode(&ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// object is the object at the path of member names in ev.
func object(ev jsonEvent, names ...string) jsonEvent {
	for _, n := range names {
		ev, _ = ev[n].(map[string]any)
	}
	return ev
}

// iamOf is the identity a stored event of either format names: a payload
// 2.0 event's authorizer.iam, a payload 1.0 event's identity.
func iamOf(ev jsonEvent) jsonEvent {
	if ev["version"] == "2.0" {
		return object(ev, "requestContext", "authorizer", "iam")
	}
	return object(ev, "requestContext", "identity")
}

// claimed is the (userArn, userId) an event names; a payload 1.0 event's
// userId is its identity's user.
func claimed(ev jsonEvent) (string, string) {
	id := iamOf(ev)
	arn, _ := id["userArn"].(string)
	userID, _ := id["userId"].(string)
	if ev["version"] != "2.0" {
		userID, _ = id["user"].(string)
	}
	return arn, userID
}

// setIdentity writes an identity into ev in its format's members: userArn,
// and userId and callerId (2.0) or user and caller (1.0).
func setIdentity(ev jsonEvent, arn, userID string) {
	id := iamOf(ev)
	id["userArn"] = arn
	if ev["version"] == "2.0" {
		id["userId"], id["callerId"] = userID, userID
		return
	}
	id["user"], id["caller"] = userID, userID
}

// withProofHeader gives ev the proof header under name, as API Gateway
// delivers it: a REST API's event carries it in both header maps.
func withProofHeader(ev jsonEvent, name, value string) {
	object(ev, "headers")[name] = value
	if m := object(ev, "multiValueHeaders"); m != nil {
		m[name] = []any{value}
	}
}

// Each shape of caller identity seen in captured API Gateway events, and
// in AWS's own sample events (testdata/README.md names each source), from a
// caller with a valid proof of the identity it shows unless said otherwise.
func TestIdentityShapes(t *testing.T) {
	const (
		ssoSession = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DeveloperAccess_0123456789abcdef/user@example.com"
		ec2Session = "arn:aws:sts::123456789012:assumed-role/EC2_Admin/i-0123456789abcdef0"
		iamUser    = "arn:aws:iam::123456789012:user/alice"
		iamUserID  = "AIDAZEXAMPLEALICE0001"
		pool       = "arn:aws:sts::123456789012:assumed-role/bastion-app-CognitoAuthRole/CognitoIdentityCredentials"
		poolUserID = "AROAZEXAMPLEPOOLROLE1:CognitoIdentityCredentials"
	)
	otherTask := Identity{UserARN: "arn:aws:sts::123456789012:assumed-role/bastion-ttl-BastionTaskRole-1A2B3C4D5E6F/11111111111111111111111111111111", UserID: pinnedID + ":11111111111111111111111111111111"}
	fullID := Identity{UserARN: "arn:aws:sts::123456789012:assumed-role/bastion-ttl-BastionTaskRole-1A2B3C4D5E6F/" + taskID, UserID: pinnedID + ":" + taskID}
	cognitoV2 := map[string]any{
		"amr": []any{"authenticated", "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE",
			"cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE:CognitoSignIn:11111111-2222-3333-4444-555555555555"},
		"identityId":     "eu-west-1:66666666-7777-8888-9999-000000000000",
		"identityPoolId": "eu-west-1:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
	}
	type shape struct {
		name    string
		fixture string
		edit    func(jsonEvent)
		proveAs *Identity // the proof's identity; nil: the one the event names (none: no proof)
		header  string    // the proof header's name as delivered; "": the format's usual
		status  int
		says    string // in the answer's error
		noSTS   bool   // refused before any proof is sent to STS
	}
	tests := []shape{
		// HTTP API, payload 2.0: requestContext.authorizer.iam.
		{name: "2.0: a task role's session, userId <RoleId>:<session>", fixture: "v2", status: 202},
		{name: "2.0: principalOrgId null", fixture: "v2", edit: func(ev jsonEvent) { iamOf(ev)["principalOrgId"] = nil }, status: 202},
		{name: "2.0: principalOrgId and cognitoIdentity absent", fixture: "v2", edit: func(ev jsonEvent) {
			delete(iamOf(ev), "principalOrgId")
			delete(iamOf(ev), "cognitoIdentity")
		}, status: 202},
		{name: "2.0: userId the role ID alone, callerId <RoleId>:<session>", fixture: "v2", edit: func(ev jsonEvent) {
			iamOf(ev)["userId"] = pinnedID
		}, proveAs: &fullID, status: 202},
		{name: "2.0: an IAM user", fixture: "v2", edit: func(ev jsonEvent) {
			setIdentity(ev, iamUser, iamUserID)
			iamOf(ev)["accessKey"] = "AKIAZEXAMPLEALICE001"
		}, status: 403, says: "IAM user"},
		{name: "2.0: a Cognito identity", fixture: "v2", edit: func(ev jsonEvent) {
			setIdentity(ev, pool, poolUserID)
			iamOf(ev)["cognitoIdentity"], iamOf(ev)["principalOrgId"] = cognitoV2, nil
		}, status: 403, says: "Cognito", noSTS: true},
		{name: "2.0: the libraries' sample: an IAM user's ARN, a Cognito identity, userId a role ID", fixture: "v2", edit: func(ev jsonEvent) {
			setIdentity(ev, iamUser, "AROAZEXAMPLEPOOLROLE1")
			iamOf(ev)["callerId"], iamOf(ev)["cognitoIdentity"] = poolUserID, cognitoV2
		}, status: 403, says: "Cognito", noSTS: true},
		{name: "2.0: a person's IAM Identity Center role session", fixture: "v2", edit: func(ev jsonEvent) {
			setIdentity(ev, ssoSession, "AROAZEXAMPLESSOROLE01:user@example.com")
		}, status: 403, says: "not a bastion task role"},
		{name: "2.0: no authorizer (a route without IAM auth), no proof", fixture: "v2", edit: func(ev jsonEvent) {
			delete(object(ev, "requestContext"), "authorizer")
		}, status: 403, says: "no X-Bastion-Ttl-Identity header"},
		// The proof is the authentication: a route left without IAM auth
		// still stops only the task whose credentials made the proof.
		{name: "2.0: no authorizer, the task's own proof", fixture: "v2", edit: func(ev jsonEvent) {
			delete(object(ev, "requestContext"), "authorizer")
		}, proveAs: &fullID, status: 202},
		{name: "2.0: no authorizer, another task's proof", fixture: "v2", edit: func(ev jsonEvent) {
			delete(object(ev, "requestContext"), "authorizer")
		}, proveAs: &otherTask, status: 403, says: "only its own task"},

		// REST API, payload 1.0: requestContext.identity.
		{name: "1.0: a task role's session through a VPC endpoint", fixture: "rest", status: 202},
		{name: "1.0: no principalOrgId, vpcId, vpceId (a regional API)", fixture: "rest", edit: func(ev jsonEvent) {
			for _, k := range []string{"principalOrgId", "vpcId", "vpceId"} {
				delete(iamOf(ev), k)
			}
		}, status: 202},
		{name: "1.0: principalOrgId null", fixture: "rest", edit: func(ev jsonEvent) { iamOf(ev)["principalOrgId"] = nil }, status: 202},
		{name: "1.0: proof header in lower case (the sender's case is kept)", fixture: "rest", header: "x-bastion-ttl-identity", status: 202},
		{name: "1.0: an IAM user, as the console's test invoke sends it", fixture: "rest", edit: func(ev jsonEvent) {
			setIdentity(ev, iamUser, iamUserID)
			id := iamOf(ev)
			id["apiKey"], id["apiKeyId"], id["principalOrgId"], id["sourceIp"] = "test-invoke-api-key", "test-invoke-api-key-id", nil, "test-invoke-source-ip"
			object(ev, "requestContext")["stage"] = "test-invoke-stage"
		}, status: 403, says: "IAM user"},
		{name: "1.0: a Cognito identity", fixture: "rest", edit: func(ev jsonEvent) {
			setIdentity(ev, pool, poolUserID)
			id := iamOf(ev)
			id["cognitoIdentityPoolId"], id["cognitoIdentityId"] = cognitoV2["identityPoolId"], cognitoV2["identityId"]
			id["cognitoAuthenticationType"] = "authenticated"
			id["cognitoAuthenticationProvider"] = "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE,cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE:CognitoSignIn:11111111-2222-3333-4444-555555555555"
		}, status: 403, says: "Cognito", noSTS: true},
		{name: "1.0: an EC2 instance role's session", fixture: "rest", edit: func(ev jsonEvent) {
			setIdentity(ev, ec2Session, "AROAZEXAMPLEEC2ROLE01:i-0123456789abcdef0")
		}, status: 403, says: "not a bastion task role"},
		{name: "1.0: a private API method without IAM auth, no proof", fixture: "rest", edit: func(ev jsonEvent) {
			for _, k := range []string{"accessKey", "accountId", "caller", "principalOrgId", "user", "userArn"} {
				iamOf(ev)[k] = nil
			}
		}, status: 403, says: "no X-Bastion-Ttl-Identity header"},
	}
	// Any one Cognito member is enough to refuse: each alone, on an event
	// that otherwise names the task's own session.
	for _, k := range []string{"identityId", "identityPoolId", "amr"} {
		tests = append(tests, shape{name: "2.0: cognitoIdentity with only " + k, fixture: "v2", edit: func(ev jsonEvent) {
			iamOf(ev)["cognitoIdentity"] = map[string]any{k: cognitoV2[k]}
		}, status: 403, says: "Cognito", noSTS: true})
	}
	for _, k := range []string{"cognitoIdentityId", "cognitoIdentityPoolId", "cognitoAuthenticationType", "cognitoAuthenticationProvider"} {
		tests = append(tests, shape{name: "1.0: only " + k, fixture: "rest", edit: func(ev jsonEvent) {
			iamOf(ev)[k] = "eu-west-1:66666666-7777-8888-9999-000000000000"
		}, status: 403, says: "Cognito", noSTS: true})
	}
	files := map[string]string{"v2": "testdata/apigw-v2-iam-terminate.json", "rest": "testdata/apigw-rest-iam-terminate.json"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := loadJSON(t, files[tt.fixture])
			if tt.edit != nil {
				tt.edit(ev)
			}
			arn, userID := claimed(ev)
			if tt.proveAs != nil {
				arn, userID = tt.proveAs.UserARN, tt.proveAs.UserID
			}
			if arn != "" {
				header := tt.header
				if header == "" {
					header = identityproof.Header
					if tt.fixture == "v2" {
						header = strings.ToLower(header) // an HTTP API lowercases header names
					}
				}
				body, _ := ev["body"].(string)
				withProofHeader(ev, header, proofOf(arn, userID, "terminate", []byte(body), time.Now()))
			}
			f := &fakeECS{}
			var log bytes.Buffer
			before := testSTSRequests()
			out, err := newService(f, &log).Invoke(context.Background(), mustJSON(ev))
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			var resp struct {
				StatusCode int
				Body       string
			}
			_ = json.Unmarshal(mustJSON(out), &resp)
			if resp.StatusCode != tt.status || !strings.Contains(resp.Body, tt.says) {
				t.Fatalf("status %d %s, want %d saying %q", resp.StatusCode, resp.Body, tt.status, tt.says)
			}
			if stopped := len(f.calls) == 1; stopped != (tt.status == 202) || len(f.calls) > 1 {
				t.Fatalf("StopTask calls: %d", len(f.calls))
			}
			if asked := testSTSRequests() - before; tt.noSTS && asked != 0 {
				t.Fatalf("%d requests reached STS for a caller the event already disqualifies", asked)
			}
		})
	}
}

// Hand-edited events seen in public code that API Gateway never sends: a
// string for isBase64Encoded, a number for cognitoIdentity. They are not
// requests: an error, nothing stopped, nothing asked of STS.
func TestHandEditedEventsDoNothing(t *testing.T) {
	rest := loadJSON(t, "testdata/apigw-rest-iam-terminate.json")
	rest["isBase64Encoded"] = "false"
	v2 := loadJSON(t, "testdata/apigw-v2-iam-terminate.json")
	iamOf(v2)["cognitoIdentity"] = json.Number("0")
	for name, ev := range map[string]jsonEvent{"isBase64Encoded a string": rest, "cognitoIdentity a number": v2} {
		arn, userID := claimed(ev)
		body, _ := ev["body"].(string)
		withProofHeader(ev, identityproof.Header, proofOf(arn, userID, "terminate", []byte(body), time.Now()))
		f := &fakeECS{}
		var log bytes.Buffer
		before := testSTSRequests()
		if out, err := newService(f, &log).Invoke(context.Background(), mustJSON(ev)); err == nil || out != nil || len(f.calls) != 0 || testSTSRequests() != before {
			t.Errorf("%s: %v, %v, %d StopTask calls", name, out, err, len(f.calls))
		}
	}
}
