package stophandler

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
)

// FuzzHandle holds the one invariant that matters: StopTask is called only
// for the caller's own task, in an allowed cluster, in this region and account.
func FuzzHandle(f *testing.F) {
	seeds := []struct {
		method, body, caller string
		b64                  bool
	}{
		{"POST", body(taskARN, "TTL expired"), self, false},
		{"POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/r/" + taskID[:31], false},
		{"POST", body("arn:aws:ecs:eu-west-1:123456789012:task/jump/"+taskID, ""), self, false},
		{"POST", body("arn:aws:ecs:eu-west-1:123456789012:task/prod/"+taskID, ""), self, false},
		{"POST", `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/` + taskID + `","cluster":"bastions"}`, self, false},
		{"POST", `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/` + taskID + `","cluster":"arn:aws:ecs:eu-west-1:123456789012:cluster/prod"}`, self, false},
		{"POST", "eyJ0YXNrQXJuIjoiIn0=", self, true},
		{"POST", `{"taskArn":"` + taskARN + `","taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/prod/` + taskID + `"}`, self, false},
		{"GET", "", "", false},
		{"POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/Admin/" + taskID, false},
		{"POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/bastion-extra-role/" + taskID, false},
		{"POST", body(taskARN, "\u202e"), "arn:aws:iam::123456789012:user/" + taskID, false},
	}
	for _, s := range seeds {
		f.Add(s.method, s.body, s.caller, s.b64)
	}
	f.Fuzz(func(t *testing.T, method, reqBody, caller string, b64 bool) {
		fake := &fakeECS{}
		var log bytes.Buffer
		ev := event(method, reqBody, caller)
		ev.IsBase64Encoded = b64
		resp, err := newService(fake, &log).Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("Handle error: %v", err)
		}
		if len(fake.calls) == 0 {
			return
		}
		if len(fake.calls) != 1 || resp.StatusCode != 202 {
			t.Fatalf("%d calls, status %d", len(fake.calls), resp.StatusCode)
		}
		in := fake.calls[0]
		task, perr := ecsarn.ParseTask(aws.ToString(in.Task))
		if perr != nil {
			t.Fatalf("stopped a malformed ARN %q", aws.ToString(in.Task))
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
		cluster := aws.ToString(in.Cluster)
		if cluster != "bastions" && cluster != "jump" {
			t.Fatalf("stopped in cluster %q", cluster)
		}
		if task.Cluster != "" && task.Cluster != cluster {
			t.Fatalf("cluster %q but ARN's cluster %q", cluster, task.Cluster)
		}
	})
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
