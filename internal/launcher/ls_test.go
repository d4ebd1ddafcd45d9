package launcher

import (
	"bytes"
	"context"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// ls's output for people and for scripts, against fixed tasks and a fixed
// clock: bastions oldest first, aligned; untagged tasks left out; a tag
// that is not a duration shown as it is, with no deadline.
func TestLsGolden(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	const cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	task := func(id string) string { return "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + id }
	api := ecsapi.New()
	api.Add(
		ecsapi.Task{ARN: task("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"), ClusterARN: cluster, StartedAt: now.Add(-90 * time.Minute),
			Tags: map[string]string{TTLTag: "2h0m0s", OwnerTag: "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com"}},
		ecsapi.Task{ARN: task("1a2b3c4d5e6f70819a2b3c4d5e6f7081"), ClusterARN: cluster, StartedAt: now.Add(-10 * time.Minute),
			Tags: map[string]string{TTLTag: "30m"}},
		ecsapi.Task{ARN: task("2b3c4d5e6f708192a3b4c5d6e7f80912"), ClusterARN: cluster, StartedAt: now.Add(-5 * time.Hour),
			Tags: map[string]string{TTLTag: "forever"}},
		ecsapi.Task{ARN: task("3c4d5e6f708192a3b4c5d6e7f8091223"), ClusterARN: cluster, StartedAt: now.Add(-time.Hour)}, // not a bastion
	)
	srv := httptest.NewServer(api)
	defer srv.Close()
	env := Env{Environ: map[string]string{}, Now: func() time.Time { return now },
		ECS: ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})}
	for name, args := range map[string][]string{"ls.golden": {"ls", "--cluster", "bastions"}, "ls-json.golden": {"ls", "--cluster", "bastions", "--json"}} {
		var out bytes.Buffer
		env.Stdout, env.Stderr = &out, &out
		if err := Run(context.Background(), args, env); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != string(want) {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", name, out.String(), want)
		}
	}
}

// Interrupted while waiting, run leaves the task running and says so.
func TestInterruptedWaitLeavesTheTask(t *testing.T) {
	api := ecsapi.New()
	arn := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"
	api.Add(ecsapi.Task{ARN: arn, ClusterARN: "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions", LastStatus: "PROVISIONING"})
	srv := httptest.NewServer(api)
	defer srv.Close()
	var out bytes.Buffer
	env := Env{Stdout: &out, Now: time.Now, Poll: 20 * time.Millisecond,
		ECS: ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond) // Ctrl-C
	defer cancel()
	err := waitRunning(ctx, env, "bastions", arn, 2*time.Hour, nil, nil)
	var errs bytes.Buffer
	if code := ExitCode(err, &errs); code != 130 || !strings.Contains(errs.String(), "keeps running and stops at its TTL") {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "PROVISIONING") {
		t.Fatalf("progress: %s", out.String())
	}
	if task, _ := api.Task(arn); task.DesiredStatus == "STOPPED" {
		t.Fatal("an interrupted wait stopped the task")
	}
}
