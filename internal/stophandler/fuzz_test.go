package stophandler

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// FuzzHandle holds the invariants that matter: StopTask (on /terminate) and
// TagResource (on /extend, the bastion-ttl tag only, at most the cap) are
// called only for the caller's own task, in an allowed cluster, in this
// region and account.
func FuzzHandle(f *testing.F) {
	seeds := []struct {
		route, method, body, caller string
		b64                         bool
	}{
		{"POST /terminate", "POST", body(taskARN, "TTL expired"), self, false},
		{"POST /terminate", "POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/r/" + taskID[:31], false},
		{"POST /terminate", "POST", body("arn:aws:ecs:eu-west-1:123456789012:task/jump/"+taskID, ""), self, false},
		{"POST /terminate", "POST", body("arn:aws:ecs:eu-west-1:123456789012:task/prod/"+taskID, ""), self, false},
		{"POST /terminate", "POST", `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/` + taskID + `","cluster":"bastions"}`, self, false},
		{"POST /terminate", "POST", `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/` + taskID + `","cluster":"arn:aws:ecs:eu-west-1:123456789012:cluster/prod"}`, self, false},
		{"POST /terminate", "POST", "eyJ0YXNrQXJuIjoiIn0=", self, true},
		{"POST /terminate", "POST", `{"taskArn":"` + taskARN + `","taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/prod/` + taskID + `"}`, self, false},
		{"POST /terminate", "GET", "", "", false},
		{"POST /terminate", "POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/Admin/" + taskID, false},
		{"POST /terminate", "POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/bastion-extra-role/" + taskID, false},
		{"POST /terminate", "POST", body(taskARN, "\u202e"), "arn:aws:iam::123456789012:user/" + taskID, false},
		{"POST /extend", "POST", extendBody(taskARN, "2h"), self, false},
		{"POST /extend", "POST", extendBody(taskARN, "9999h"), self, false},
		{"POST /extend", "POST", `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/` + taskID + `","cluster":"bastions","ttl":"1h"}`, self, false},
		{"POST /extend", "POST", extendBody("arn:aws:ecs:eu-west-1:123456789012:task/prod/"+taskID, "2h"), self, false},
		{"POST /extend", "POST", body(taskARN, ""), self, false},
		{"POST /extend", "POST", extendBody(taskARN, "2h"), "arn:aws:sts::123456789012:assumed-role/Admin/" + taskID, false},
		{"$default", "POST", extendBody(taskARN, "2h"), self, false},
	}
	for _, s := range seeds {
		f.Add(s.route, s.method, s.body, s.caller, s.b64, false)
		f.Add(s.route, s.method, s.body, s.caller, s.b64, true)
	}
	// rest: the same request as the private REST API delivers it (payload 1.0).
	f.Fuzz(func(t *testing.T, route, method, reqBody, caller string, b64, rest bool) {
		fake := &fakeECS{}
		var log bytes.Buffer
		ev := event(method, reqBody, caller)
		ev.RouteKey, ev.IsBase64Encoded = route, b64
		var status int
		var err error
		if rest {
			var resp events.APIGatewayProxyResponse
			resp, err = newService(fake, &log).HandleREST(context.Background(), provenREST(apigateway.ToREST(ev, "prod")))
			status = resp.StatusCode
		} else {
			var resp events.APIGatewayV2HTTPResponse
			resp, err = newService(fake, &log).Handle(context.Background(), proven(ev))
			status = resp.StatusCode
		}
		if err != nil {
			t.Fatalf("Handle error: %v", err)
		}
		for _, in := range fake.tagCalls {
			if routeV2(ev) != "extend" || len(fake.calls) > 0 {
				t.Fatalf("tagged on route %q, or tagged and stopped", route)
			}
			if len(in.Tags) != 1 || aws.ToString(in.Tags[0].Key) != ttltag.Key {
				t.Fatalf("tags %v", in.Tags)
			}
			if d, err := time.ParseDuration(aws.ToString(in.Tags[0].Value)); err != nil || d <= 0 || d > maxTTL {
				t.Fatalf("tag value %q beyond the cap", aws.ToString(in.Tags[0].Value))
			}
			checkOwnTask(t, caller, aws.ToString(in.ResourceArn), "")
		}
		if len(fake.calls) == 0 {
			return
		}
		if len(fake.calls) != 1 || status != 202 || routeV2(ev) != "terminate" {
			t.Fatalf("%d calls, status %d, route %q", len(fake.calls), status, route)
		}
		in := fake.calls[0]
		checkOwnTask(t, caller, aws.ToString(in.Task), aws.ToString(in.Cluster))
	})
}

// checkOwnTask fails unless arn is the caller's own task in this region,
// account and an allowed cluster; cluster, if given, must agree.
func checkOwnTask(t *testing.T, caller, arn, cluster string) {
	t.Helper()
	{
		task, perr := ecsarn.ParseTask(arn)
		if perr != nil {
			t.Fatalf("acted on a malformed ARN %q", arn)
		}
		if task.Region != region || task.Account != account || task.Partition != "aws" {
			t.Fatalf("stopped %s outside region/account", task)
		}
		if caller != "arn:aws:sts::"+account+":assumed-role/"+roleOf(caller)+"/"+task.ID {
			t.Fatalf("caller %q stopped task %s", caller, task)
		}
		if role := roleOf(caller); role != "bastion-task-role" && role != "bastion-extra-role" {
			t.Fatalf("role %q is not pinned, yet stopped task %s", role, task)
		}
		if cluster == "" {
			cluster = task.Cluster
		}
		if cluster != "bastions" && cluster != "jump" {
			t.Fatalf("stopped in cluster %q", cluster)
		}
		if task.Cluster != "" && task.Cluster != cluster {
			t.Fatalf("cluster %q but ARN's cluster %q", cluster, task.Cluster)
		}
	}
}

// roleOf returns the role segment of an assumed-role ARN, "" otherwise.
func roleOf(caller string) string {
	_, rest, ok := strings.Cut(caller, ":assumed-role/")
	if !ok {
		return ""
	}
	role, _, _ := strings.Cut(rest, "/")
	return role
}
