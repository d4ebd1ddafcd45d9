package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/sweep"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// A scheduled event from EventBridge, as Lambda delivers it.
const scheduledEvent = `{
  "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type": "Scheduled Event", "source": "aws.events",
  "account": "123456789012", "time": "2026-11-24T12:00:00Z", "region": "eu-west-1",
  "resources": ["arn:aws:events:eu-west-1:123456789012:rule/bastion-ttl-sweep"],
  "detail": {}
}`

// The real bootstrap under the Runtime Interface Emulator, invoked with a
// scheduled event, against moto_server. moto reports no startedAt, so the
// sweeper must list, describe with tags, stop nothing, and say why.
func TestLambdaAgainstMoto(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	tag := types.Tag{Key: aws.String(ttltag.Key), Value: aws.String("1s")}
	marked := testenv.RunTasks(t, client, "bastions", 3, tag)
	plain := testenv.RunTasks(t, client, "bastions", 2)
	elsewhere := testenv.RunTasks(t, client, "other", 2, tag)

	fn := testenv.StartLambda(t, testenv.BuildLambda(t, "../..", "lambda/sweep"), map[string]string{
		"AWS_ENDPOINT_URL_ECS":        endpoint,
		"AWS_REGION":                  testenv.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"BASTION_ALLOWED_CLUSTERS":    "bastions",
		"BASTION_MAX_TTL":             "1s",
		"BASTION_GRACE":               "0s",
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
	})
	var rep sweep.Report
	out := fn.Invoke(t, []byte(scheduledEvent))
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	want := sweep.Report{Clusters: 1, Scanned: 5, Marked: 3, NotStarted: 3}
	if rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	// It says why it stopped nothing: one line per marked task, and the
	// summary, its last line.
	fn.WaitOutput(t, 5*time.Second, `"msg":"sweep done"`)
	logs := fn.Output()
	if n := strings.Count(logs, `"msg":"marked task has no startedAt: not stopped"`); n != 3 {
		t.Errorf("%d 'no startedAt' lines, want 3:\n%s", n, logs)
	}
	if !strings.Contains(logs, `"msg":"sweep done"`) || !strings.Contains(logs, `"not_started":3`) {
		t.Errorf("no summary line with not_started 3:\n%s", logs)
	}
	for cluster, arns := range map[string][]string{"bastions": append(marked, plain...), "other": elsewhere} {
		for arn, task := range testenv.Describe(t, client, cluster, arns) {
			if aws.ToString(task.DesiredStatus) != "RUNNING" {
				t.Errorf("%s is %s, want RUNNING", arn, aws.ToString(task.DesiredStatus))
			}
		}
	}
}

// RunTask has no condition key on containerOverrides: whoever may launch a
// bastion may override its supervisor away. The launcher policy requires
// the bastion-ttl tag at RunTask, and that tag keeps the sweeper's bound:
// start + min(tag, BASTION_MAX_TTL) + grace + one sweep period. Here tasks
// are started by RunTask (the real SDK) in moto, behind ExecLayer for the
// startedAt ECS reports, each with an override that leaves no supervisor to
// stop it; the real bootstrap under the emulator sweeps every 200ms. Each
// tagged task is stopped once, never before its bound, and no later than
// the first sweep that begins after it; the untagged one (the launcher
// policy refuses it) is never stopped.
func TestLambdaBoundsOverriddenSupervisors(t *testing.T) {
	const (
		cluster = "overridden" // in no other test's cluster name: moto's ListTasks matches substrings
		maxTTL  = 3 * time.Second
		grace   = time.Second
		period  = 200 * time.Millisecond
		owner   = "AROAEXAMPLEDEVELOPER1:alice"
	)
	motoURL, _ := testenv.MotoECS(t)
	next, err := url.Parse(motoURL)
	if err != nil {
		t.Fatal(err)
	}
	layer := &ecsapi.ExecLayer{Next: httputil.NewSingleHostReverseProxy(next), Now: time.Now}
	// When ECS first hears each task's StopTask, and how often: the
	// stop's own time, not the sweep's, is held against the deadline.
	var (
		mu    sync.Mutex
		stops = map[string][]time.Time{}
	)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == ecsapi.TargetPrefix+"StopTask" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req struct{ Task string }
			_ = json.Unmarshal(body, &req)
			mu.Lock()
			stops[req.Task] = append(stops[req.Task], time.Now())
			mu.Unlock()
		}
		layer.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	client := testenv.ECSClient(front.URL)
	ctx := context.Background()
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	// The two shapes of bastion (examples/): the sidecar, and the health
	// check in the bastion container. Bridge mode: moto runs no awsvpc task.
	env := func(kv ...string) []types.KeyValuePair {
		var out []types.KeyValuePair
		for i := 0; i < len(kv); i += 2 {
			out = append(out, types.KeyValuePair{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return out
	}
	terminate := env("BASTION_TERMINATE_URL", "https://abcdef1234.execute-api.eu-west-1.amazonaws.com/terminate")
	for family, defs := range map[string][]types.ContainerDefinition{
		"bastion-sidecar": {
			{Name: aws.String("bastion"), Image: aws.String("openssh-server"), Memory: aws.Int32(256), Essential: aws.Bool(true)},
			{Name: aws.String("supervisor"), Image: aws.String("ghcr.io/bastion-ttl/supervisor:v0.1.0"), Memory: aws.Int32(64), Essential: aws.Bool(true),
				Command: []string{"watch"}, Environment: terminate},
		},
		"bastion-check": {
			{Name: aws.String("bastion"), Image: aws.String("openssh-server"), Memory: aws.Int32(256), Essential: aws.Bool(true), Environment: terminate,
				HealthCheck: &types.HealthCheck{Command: []string{"CMD", "/usr/local/bin/supervisor", "check"}, Interval: aws.Int32(30)}},
		},
	} {
		if _, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family),
			NetworkMode: types.NetworkModeBridge, ContainerDefinitions: defs}); err != nil {
			t.Fatal(err)
		}
	}

	fn := testenv.StartLambda(t, testenv.BuildLambda(t, "../..", "lambda/sweep"), map[string]string{
		"AWS_ENDPOINT_URL_ECS":        front.URL,
		"AWS_REGION":                  testenv.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"BASTION_ALLOWED_CLUSTERS":    cluster,
		"BASTION_MAX_TTL":             maxTTL.String(),
		"BASTION_GRACE":               grace.String(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
	})
	var runs []sweepRun
	sweepOnce := func() {
		begin := time.Now()
		out := fn.Invoke(t, []byte(scheduledEvent))
		run := sweepRun{begin: begin, end: time.Now()}
		if err := json.Unmarshal(out, &run.rep); err != nil {
			t.Fatalf("answer %s: %v", out, err)
		}
		runs = append(runs, run)
	}
	sweepOnce() // the function's cold start, before any deadline runs

	sleepForever := types.ContainerOverride{Name: aws.String("supervisor"), Command: []string{"sleep", "infinity"}}
	cases := []struct {
		name     string
		family   string
		override types.ContainerOverride
		ttl      string        // the bastion-ttl tag; "-": untagged
		bound    time.Duration // the TTL the sweeper must apply; 0: never stops it
	}{
		{"sidecar's command replaced", "bastion-sidecar", sleepForever, "2s", 2 * time.Second},
		{"sidecar in dry run", "bastion-sidecar", types.ContainerOverride{Name: aws.String("supervisor"),
			Environment: env("BASTION_TTL", "2s", "BASTION_MAX_TTL", "3s", "BASTION_DRY_RUN", "true")}, "2s", 2 * time.Second},
		{"health check without fail-safe, API unreachable", "bastion-check", types.ContainerOverride{Name: aws.String("bastion"),
			Environment: env("BASTION_TTL", "2s", "BASTION_FAILSAFE", "none", "BASTION_TERMINATE_URL", "https://127.0.0.1:1/terminate")}, "2s", 2 * time.Second},
		{"tag above BASTION_MAX_TTL", "bastion-sidecar", sleepForever, "1000h", maxTTL},
		{"tag not a duration", "bastion-sidecar", sleepForever, "forever", maxTTL},
		{"untagged (the launcher policy refuses it)", "bastion-sidecar", sleepForever, "-", 0},
	}
	type bastion struct {
		arn      string
		started  time.Time
		deadline time.Time // started + bound + grace
		reason   string
	}
	bastions := make([]bastion, len(cases))
	var last time.Time // the latest deadline
	for i, c := range cases {
		tags := []types.Tag{{Key: aws.String(ttltag.OwnerKey), Value: aws.String(owner)}}
		if c.ttl != "-" {
			tags = append(tags, types.Tag{Key: aws.String(ttltag.Key), Value: aws.String(c.ttl)})
		}
		out, err := client.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(c.family),
			LaunchType: types.LaunchTypeFargate, StartedBy: aws.String("bastion-ttl"), Tags: tags,
			Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{c.override}}})
		if err != nil || len(out.Tasks) != 1 {
			t.Fatalf("%s: run-task: %v", c.name, err)
		}
		arn := aws.ToString(out.Tasks[0].TaskArn)
		// The override reached ECS, as ECS describes the task.
		task := testenv.Describe(t, client, cluster, []string{arn})[arn]
		if got, want := testenv.Overrides(task.Overrides), testenv.Overrides(&types.TaskOverride{ContainerOverrides: []types.ContainerOverride{c.override}}); got != want {
			t.Fatalf("%s: described overrides %q, want %q", c.name, got, want)
		}
		if task.StartedAt == nil {
			t.Fatalf("%s: no startedAt", c.name)
		}
		started := *task.StartedAt
		bastions[i].arn, bastions[i].started = arn, started
		if c.bound > 0 {
			bastions[i].deadline = started.Add(c.bound + grace)
			bastions[i].reason = fmt.Sprintf("bastion-ttl sweeper: TTL %s expired (started %s)", c.bound, started.UTC().Format(time.RFC3339))
			if bastions[i].deadline.After(last) {
				last = bastions[i].deadline
			}
		}
	}

	// The schedule: sweep until one has begun after the latest deadline.
	for !runs[len(runs)-1].begin.After(last) {
		if time.Now().After(last.Add(20 * time.Second)) {
			t.Fatalf("sweeps still running 20s after the latest deadline (%d sweeps)", len(runs))
		}
		time.Sleep(period)
		sweepOnce()
	}

	arns := make([]string, len(bastions))
	for i, b := range bastions {
		arns[i] = b.arn
	}
	described := testenv.Describe(t, client, cluster, arns)
	mu.Lock()
	defer mu.Unlock()
	for i, c := range cases {
		b, task := bastions[i], described[bastions[i].arn]
		if c.bound == 0 {
			if len(stops[b.arn]) != 0 || aws.ToString(task.DesiredStatus) != "RUNNING" {
				t.Errorf("%s: %d stops, %s: the sweeper stops only tagged tasks", c.name, len(stops[b.arn]), aws.ToString(task.DesiredStatus))
			}
			continue
		}
		if len(stops[b.arn]) != 1 {
			t.Errorf("%s: %d StopTask calls, want 1", c.name, len(stops[b.arn]))
			continue
		}
		stopped := stops[b.arn][0]
		if stopped.Before(b.deadline) {
			t.Errorf("%s: stopped %v BEFORE start + %v + grace", c.name, b.deadline.Sub(stopped), c.bound)
			continue
		}
		// The first sweep that began at or after the deadline must have
		// stopped it by its end.
		for _, r := range runs {
			if !r.begin.Before(b.deadline) {
				if stopped.After(r.end) {
					t.Errorf("%s: stopped %v after the end of the first sweep past its deadline", c.name, stopped.Sub(r.end))
				}
				break
			}
		}
		if aws.ToString(task.DesiredStatus) != "STOPPED" || aws.ToString(task.StoppedReason) != b.reason {
			t.Errorf("%s: %s, reason %q, want STOPPED, %q", c.name, aws.ToString(task.DesiredStatus), aws.ToString(task.StoppedReason), b.reason)
		}
		before := 0 // sweeps of the running task that ended before its deadline
		for _, r := range runs {
			if r.begin.After(b.started) && r.end.Before(b.deadline) {
				before++
			}
		}
		t.Logf("%s: stopped %v after start + %v + grace; %d sweeps ran between its start and then",
			c.name, stopped.Sub(b.deadline).Round(time.Millisecond), c.bound, before)
	}
	var total sweep.Report
	for _, r := range runs {
		total.Expired += r.rep.Expired
		total.Stopped += r.rep.Stopped
		total.Failed += r.rep.Failed
	}
	if total.Expired != 5 || total.Stopped != 5 || total.Failed != 0 {
		t.Errorf("over %d sweeps: expired %d, stopped %d, failed %d; want 5, 5, 0", len(runs), total.Expired, total.Stopped, total.Failed)
	}
	if !strings.Contains(fn.Output(), `"msg":"bastion-ttl tag is not a positive duration: the maximum applies"`) {
		t.Errorf("no warning for the tag forever:\n%s", fn.Output())
	}
}

// sweepRun is one invocation of the sweeper, and when it ran.
type sweepRun struct {
	begin, end time.Time
	rep        sweep.Report
}
