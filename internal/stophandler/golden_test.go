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
// a task role calling POST /terminate, in the shape of aws-lambda-go's
// events/testdata/apigw-v2-request-iam.json.
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
			resp, _ := newService(f, &log).Handle(context.Background(), ev)
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
