package launcher

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// ls's output for people and for scripts, against fixed tasks and a fixed
// clock: bastions oldest first, aligned; untagged tasks left out; a tag
// that is not a duration shown as it is, with no deadline; a reason cut to
// the table's width (whole in JSON).
func TestLsGolden(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	const cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	task := func(id string) string { return "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + id }
	api := ecsapi.New()
	api.Add(
		ecsapi.Task{ARN: task("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"), ClusterARN: cluster, StartedAt: now.Add(-90 * time.Minute),
			Tags: map[string]string{ttltag.Key: "2h0m0s", ttltag.OwnerKey: "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com",
				ttltag.ReasonKey: "INC-4211: the orders replica lags; read it before the failover at 14:00 UTC"}},
		ecsapi.Task{ARN: task("1a2b3c4d5e6f70819a2b3c4d5e6f7081"), ClusterARN: cluster, StartedAt: now.Add(-10 * time.Minute),
			Tags: map[string]string{ttltag.Key: "30m", ttltag.ReasonKey: "réparer la base"}},
		ecsapi.Task{ARN: task("2b3c4d5e6f708192a3b4c5d6e7f80912"), ClusterARN: cluster, StartedAt: now.Add(-5 * time.Hour),
			Tags: map[string]string{ttltag.Key: "forever"}},
		ecsapi.Task{ARN: task("3c4d5e6f708192a3b4c5d6e7f8091223"), ClusterARN: cluster, StartedAt: now.Add(-time.Hour)}, // not a bastion
	)
	srv := httptest.NewServer(api)
	defer srv.Close()
	env := Env{Environ: map[string]string{}, Clock: clocktest.NewFake(now),
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

// stackWithCap is a stack whose outputs name the cluster and the cap.
type stackWithCap struct{ cluster, maxTTL string }

func (s stackWithCap) DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{{Outputs: []cftypes.Output{
		{OutputKey: aws.String("ClusterName"), OutputValue: aws.String(s.cluster)},
		{OutputKey: aws.String("MaxTTL"), OutputValue: aws.String(s.maxTTL)},
	}}}}, nil
}

// ls reads each tag by package ttltag's rule: with the stack's cap known,
// a TTL above it ends at the cap and a value that says no TTL ("0s",
// "forever") means the cap, as the sweeper reads them; without the cap
// (--cluster given) such a value gives no deadline, not one at the start.
func TestLsDeadlinesFollowTheTagRule(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	start := now.Add(-time.Hour)
	const cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	api := ecsapi.New()
	values := map[string]string{"a": "2h", "b": "13h", "c": "0s", "d": "forever", "e": "-5m"}
	for id, v := range values {
		api.Add(ecsapi.Task{ARN: "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + id, ClusterARN: cluster, StartedAt: start, Tags: map[string]string{ttltag.Key: v}})
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	env := Env{Environ: map[string]string{}, Clock: clocktest.NewFake(now), Stacks: stackWithCap{"bastions", "12h0m0s"},
		ECS: ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})}
	for _, tt := range []struct {
		args []string
		want map[string]string // task ID: TTL shown, deadline or "-"
	}{
		{[]string{"ls", "--json"}, map[string]string{"a": "2h0m0s 2026-11-28T13:00:00Z", "b": "12h0m0s 2026-11-28T23:00:00Z",
			"c": "12h0m0s 2026-11-28T23:00:00Z", "d": "12h0m0s 2026-11-28T23:00:00Z", "e": "12h0m0s 2026-11-28T23:00:00Z"}},
		{[]string{"ls", "--json", "--cluster", "bastions"}, map[string]string{"a": "2h0m0s 2026-11-28T13:00:00Z", "b": "13h0m0s 2026-11-29T00:00:00Z",
			"c": "0s -", "d": "forever -", "e": "-5m -"}},
	} {
		var out bytes.Buffer
		env.Stdout, env.Stderr = &out, &out
		if err := Run(context.Background(), tt.args, env); err != nil {
			t.Fatalf("%v: %v\n%s", tt.args, err, out.String())
		}
		var bastions []Bastion
		if err := json.Unmarshal(out.Bytes(), &bastions); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, b := range bastions {
			deadline := "-"
			if b.Deadline != nil {
				deadline = b.Deadline.UTC().Format(time.RFC3339)
			}
			got[b.TaskID] = b.TTL + " " + deadline
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("%v:\n got %v\nwant %v", tt.args, got, tt.want)
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
	env := Env{Stdout: &out, Clock: clock.System{}, Poll: 20 * time.Millisecond,
		ECS: ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond) // Ctrl-C
	defer cancel()
	err := waitRunning(ctx, env, "bastions", arn, 2*time.Hour, nil, nil)
	var errs bytes.Buffer
	if code := exitCode(err, &errs); code != 130 || !strings.Contains(errs.String(), "keeps running and stops at its TTL") {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "PROVISIONING") {
		t.Fatalf("progress: %s", out.String())
	}
	if task, _ := api.Task(arn); task.DesiredStatus == "STOPPED" {
		t.Fatal("an interrupted wait stopped the task")
	}
}

// Tags are printed safe for a terminal, in the table and in JSON, whose
// strings `jq -r` prints raw: an escape sequence or a bidi control in an
// owner or TTL tag shows as escapes, and reaches the terminal as nothing
// it acts on. (--cluster: without the stack's cap, a TTL tag that is not a
// duration is shown as it is.)
func TestLsShowsNoTerminalControl(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	f.bastion("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7", "AROAEXAMPLEDEVELOPER1:mallory"+evil, "2h0m0s")
	bobs := f.bastion("1a2b3c4d5e6f70819a2b3c4d5e6f7081", "AROAEXAMPLEDEVELOPER1:bob", "2h"+evil)
	if _, err := f.env.ECS.(runTaskECS).TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: aws.String(bobs),
		Tags: []types.Tag{{Key: aws.String(ttltag.ReasonKey), Value: aws.String("x" + evil)}}}); err != nil {
		t.Fatal(err)
	}
	out, errs, code := f.run(5*time.Second, "ls", "--cluster", "bastions")
	if code != 0 || !strings.Contains(out, `mallory\x1b]0;pwned\x07\x1b[2J \u009b31m \u009b \u202egnp.exe\u2066`) || !strings.Contains(out, `2h\x1b]0;pwned`) || !strings.Contains(out, `x\x1b]0;pwned\x07`) {
		t.Errorf("ls: exit %d, want the tags shown as escapes:\n%s%s", code, out, errs)
	}
	terminalSafe(t, "ls", out+errs)
	out, errs, code = f.run(5*time.Second, "ls", "--cluster", "bastions", "--json")
	var bastions []Bastion
	if err := json.Unmarshal([]byte(out), &bastions); code != 0 || err != nil || len(bastions) != 2 {
		t.Fatalf("ls --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	terminalSafe(t, "ls --json", out+errs)
	for _, b := range bastions {
		terminalSafe(t, "ls --json's owner, as jq -r prints it", b.Owner)
		terminalSafe(t, "ls --json's ttl, as jq -r prints it", b.TTL)
		terminalSafe(t, "ls --json's reason, as jq -r prints it", b.Reason)
	}
}

// A cluster ECS does not know is bad input, told by the SDK's typed
// ClusterNotFoundException (the fake answers ECS's code), not by its text.
func TestLsOfAMissingCluster(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	for _, args := range [][]string{{"ls", "--cluster", "nope"}, {"stop", "--cluster", "nope", "0123456789abcdef0123456789abcdef"}} {
		if _, errs, code := f.run(5*time.Second, args...); code != 2 || !strings.Contains(errs, `cluster "nope" does not exist in this account and region`) {
			t.Errorf("%q: exit %d, %s", args, code, errs)
		}
	}
}

// ls tells time left by package lifetime's rule (lifetime.LeftText), as
// connect does: to the nearest second, then cut to the minute from a
// minute on (30m45s is 30m, not 31m).
func TestLsTellsTimeLeftByTheLifetimeRule(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	const cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	api := ecsapi.New()
	want := map[string]string{}
	for id, tt := range map[string]struct {
		left time.Duration
		text string
	}{
		"a": {30*time.Minute + 45*time.Second, "30m"},
		"b": {time.Hour + 59*time.Second + 400*time.Millisecond, "1h"},
		"c": {40*time.Second + 400*time.Millisecond, "40s"},
		"d": {-time.Minute, "0s"},
	} {
		api.Add(ecsapi.Task{ARN: "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + id, ClusterARN: cluster,
			StartedAt: now.Add(tt.left - 2*time.Hour), Tags: map[string]string{ttltag.Key: "2h"}})
		want[id] = tt.text
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	env := Env{Environ: map[string]string{}, Clock: clocktest.NewFake(now),
		ECS: ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})}
	bastions, err := list(context.Background(), env, "bastions", 12*time.Hour)
	if err != nil || len(bastions) != len(want) {
		t.Fatalf("listed %+v, %v", bastions, err)
	}
	for _, b := range bastions {
		if b.Left != want[b.TaskID] || b.Left != lifetime.LeftText(*b.Deadline, now) {
			t.Errorf("%s: left %q, want %q (lifetime.LeftText)", b.TaskID, b.Left, want[b.TaskID])
		}
	}
}
