package stophandler

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// goldenEvent decodes the stored API Gateway HTTP API (payload 2.0) event of
// a task role calling POST /terminate: an event an HTTP API with IAM
// authorization gave its function, as captured and published in
// applicationdesignframework/applicationdesignframework.github.io
// (examples/iam-session-broker/README.md), with the route, body, caller,
// account and host made a bastion's; testdata/README.md lists every change.
func goldenEvent(t *testing.T) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/apigw-v2-iam-terminate.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestGoldenEvent(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(*events.APIGatewayV2HTTPRequest)
		status int
	}{
		{"as API Gateway sends it", func(*events.APIGatewayV2HTTPRequest) {}, 202},
		{"another role's ID", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.Authorizer.IAM.UserID = "AROAZSOMEOTHERROLE99:" + taskID
		}, 403},
		{"another API account", func(ev *events.APIGatewayV2HTTPRequest) { ev.RequestContext.AccountID = "210987654321" }, 403},
		{"no IAM authorizer", func(ev *events.APIGatewayV2HTTPRequest) { ev.RequestContext.Authorizer = nil }, 403},
		{"GET", func(ev *events.APIGatewayV2HTTPRequest) { ev.RequestContext.HTTP.Method = "GET" }, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := goldenEvent(t)
			tt.tamper(&ev)
			f := &fakeECS{}
			var log bytes.Buffer
			resp, _ := newService(f, &log).Handle(context.Background(), proven(ev))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			if stopped := len(f.calls) == 1; stopped != (tt.status == 202) {
				t.Fatalf("StopTask calls: %d", len(f.calls))
			}
			if tt.status == 202 && aws.ToString(f.calls[0].Task) != taskARN {
				t.Fatalf("stopped %s", aws.ToString(f.calls[0].Task))
			}
		})
	}
}

// goldenREST decodes the stored REST API (payload 1.0) event of the same
// call through a private API: an event a private REST API with IAM
// authorization gave its function through a VPC endpoint, as recorded in
// jcjorel/clonesquad-ec2-pet-autoscaler
// (tests/interact/event-api-gw-reschedule-now.json), made a bastion's call
// in the same way; testdata/README.md lists every change.
func goldenREST(t *testing.T) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/apigw-rest-iam-terminate.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestGoldenRESTEvent(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(*events.APIGatewayProxyRequest)
		status int
	}{
		{"as API Gateway sends it", func(*events.APIGatewayProxyRequest) {}, 202},
		{"another role's ID", func(ev *events.APIGatewayProxyRequest) {
			ev.RequestContext.Identity.User = "AROAZSOMEOTHERROLE99:" + taskID
		}, 403},
		{"another API account", func(ev *events.APIGatewayProxyRequest) { ev.RequestContext.AccountID = "210987654321" }, 403},
		{"no identity", func(ev *events.APIGatewayProxyRequest) {
			ev.RequestContext.Identity = events.APIGatewayRequestIdentity{}
		}, 403},
		{"the caller's own account field lies", func(ev *events.APIGatewayProxyRequest) {
			ev.RequestContext.Identity.UserArn = "arn:aws:sts::210987654321:assumed-role/bastion-ttl-BastionTaskRole-1A2B3C4D5E6F/" + taskID
		}, 403},
		{"GET", func(ev *events.APIGatewayProxyRequest) { ev.HTTPMethod = "GET" }, 405},
		{"another resource", func(ev *events.APIGatewayProxyRequest) { ev.Resource = "/{proxy+}" }, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := goldenREST(t)
			tt.tamper(&ev)
			f := &fakeECS{}
			var log bytes.Buffer
			resp, _ := newService(f, &log).HandleREST(context.Background(), provenREST(ev))
			if resp.StatusCode != tt.status || resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			if stopped := len(f.calls) == 1; stopped != (tt.status == 202) {
				t.Fatalf("StopTask calls: %d", len(f.calls))
			}
		})
	}
}

// Invoke answers each payload format in its own response shape (a REST
// API rejects a response with members it does not know), and refuses
// anything that is not an API Gateway request, doing nothing.
func TestInvokeBothFormats(t *testing.T) {
	// The stored events, each with the proof its caller's supervisor sends.
	for name, raw := range map[string][]byte{"2.0": mustJSON(proven(goldenEvent(t))), "1.0": mustJSON(provenREST(goldenREST(t)))} {
		f := &fakeECS{}
		var log bytes.Buffer
		out, err := newService(f, &log).Invoke(context.Background(), raw)
		if err != nil || len(f.calls) != 1 {
			t.Fatalf("%s: %v, %d StopTask calls", name, err, len(f.calls))
		}
		b, _ := json.Marshal(out)
		var members map[string]any
		_ = json.Unmarshal(b, &members)
		if members["statusCode"] != 202.0 {
			t.Fatalf("%s: answer %s", name, b)
		}
		if _, cookies := members["cookies"]; cookies == (name == "1.0") {
			t.Errorf("%s: answer %s has the other format's shape", name, b)
		}
	}
	for _, raw := range []string{`{}`, `{"version":"3.0"}`, `[]`, `{"detail-type":"Scheduled Event"}`, `not json`} {
		f := &fakeECS{}
		var log bytes.Buffer
		if out, err := newService(f, &log).Invoke(context.Background(), json.RawMessage(raw)); err == nil || out != nil || len(f.calls) != 0 {
			t.Errorf("Invoke(%s) = %v, %v", raw, out, err)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
