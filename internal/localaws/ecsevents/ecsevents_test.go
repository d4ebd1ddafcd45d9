package ecsevents_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsevents"
)

const (
	clusterARN = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	bastion    = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef"
	other      = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/fedcba9876543210fedcba9876543210"
)

// Against the ECS stand-in: a bastion's start and stop are two events, in
// the shape the ledger parses, with versions 1 and 2 and the times the
// stand-in does not keep filled in; a failed delivery is delivered again;
// a task of a family the rule does not name is never delivered.
func TestSourceDeliversEachChange(t *testing.T) {
	srv := ecsapi.New()
	started := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	srv.Add(ecsapi.Task{ARN: bastion, ClusterARN: clusterARN, StartedAt: started, CPU: "256", Memory: "512",
		TaskDefinitionARN: "arn:aws:ecs:eu-west-1:123456789012:task-definition/bastion:3", Containers: []string{"bastion", "supervisor"}})
	srv.Add(ecsapi.Task{ARN: other, ClusterARN: clusterARN, StartedAt: started,
		TaskDefinitionARN: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1"})
	front := httptest.NewServer(srv)
	defer front.Close()
	client := ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(front.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test", "")})

	var got []ledger.TaskStateChange
	fail := false
	src := &ecsevents.Source{ECS: client, Cluster: "bastions", Region: "eu-west-1", Account: "123456789012", Now: time.Now,
		Rule: ecsevents.Rule{ClusterARN: clusterARN, StartedBy: []string{"bastion-ttl"}, Groups: []string{"family:bastion"}},
		Deliver: func(_ context.Context, event []byte) error {
			if fail {
				return errors.New("the function failed")
			}
			e, err := ledger.ParseEvent(event)
			if err != nil {
				t.Fatalf("%v: %s", err, event)
			}
			got = append(got, e)
			return nil
		}}
	ctx := context.Background()
	poll := func() {
		t.Helper()
		if err := src.Poll(ctx); err != nil && !fail {
			t.Fatal(err)
		}
	}
	poll()
	poll() // no change: no event
	if len(got) != 1 {
		t.Fatalf("%d events after the start, want 1 (the bastion's, not the other family's)", len(got))
	}
	run := got[0]
	if run.TaskARN != bastion || run.Version != 1 || run.LastStatus != "RUNNING" || run.Group != "family:bastion" ||
		run.StartedAt == nil || !run.StartedAt.Equal(started) || run.CreatedAt == nil || run.PullStartedAt == nil || len(run.Containers) != 2 {
		t.Errorf("the start's event: %+v", run)
	}

	if _, err := client.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("bastions"), Task: aws.String(bastion), Reason: aws.String("bastion-ttl: TTL 1m expired")}); err != nil {
		t.Fatal(err)
	}
	fail = true
	poll()
	fail = false
	poll()
	if len(got) != 2 {
		t.Fatalf("%d events after the stop, want 2", len(got))
	}
	stop := got[1]
	if stop.Version != 2 || stop.LastStatus != "STOPPED" || stop.DesiredStatus != "STOPPED" || stop.StopCode != "UserInitiated" ||
		stop.StoppedReason != "bastion-ttl: TTL 1m expired" || stop.StoppingAt == nil || stop.StoppedAt == nil || stop.StoppingAt.Before(*run.CreatedAt) {
		t.Errorf("the stop's event: %+v", stop)
	}
	for _, c := range stop.Containers {
		if c.LastStatus != "STOPPED" {
			t.Errorf("container %s is %s in the stop's event", c.Name, c.LastStatus)
		}
	}
}
