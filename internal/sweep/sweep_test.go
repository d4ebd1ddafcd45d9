package sweep_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/sweep"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/emfcheck"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

const (
	region  = "eu-west-1"
	account = "123456789012"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func clusterARN(name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", region, account, name)
}

func taskARN(cluster string, n int) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%032x", region, account, cluster, n)
}

// bastion is a task in cluster started age ago, tagged with ttl unless
// ttl is "-" (untagged).
func bastion(cluster string, n int, age time.Duration, ttl string) ecsapi.Task {
	t := ecsapi.Task{ARN: taskARN(cluster, n), ClusterARN: clusterARN(cluster), StartedAt: now.Add(-age)}
	if ttl != "-" {
		t.Tags = map[string]string{ttltag.Key: ttl, "team": "ops"}
	}
	return t
}

// logLines are the JSON log records written to b.
func logLines(t *testing.T, b *testenv.Buffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

type fixture struct {
	ecs  *ecsapi.Server
	logs *testenv.Buffer
	sw   *sweep.Sweeper
}

// newFixture is a sweeper with the real SDK client (and its retryer, with
// short backoffs) against a local ECS endpoint.
func newFixture(t *testing.T, clusters ...string) *fixture {
	t.Helper()
	fake := ecsapi.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := ecs.New(ecs.Options{
		Region:       region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "test", ""),
		Retryer:      sweep.NewRetryer(6, 20*time.Millisecond),
	})
	logs := &testenv.Buffer{}
	return &fixture{ecs: fake, logs: logs, sw: &sweep.Sweeper{
		ECS:      client,
		Clusters: clusters,
		MaxTTL:   12 * time.Hour,
		Grace:    2 * time.Minute,
		Clock:    clocktest.NewFake(now),
		Log:      slog.New(slog.NewJSONHandler(logs, nil)),
	}}
}

func (f *fixture) status(t *testing.T, arn string) ecsapi.Task {
	t.Helper()
	task, ok := f.ecs.Task(arn)
	if !ok {
		t.Fatalf("no task %s", arn)
	}
	return task
}

func TestSweepDecidesEachTask(t *testing.T) {
	f := newFixture(t, "bastions")
	type expect struct {
		stopped bool
		ttl     string // in the reason, when stopped
	}
	cases := []struct {
		name string
		task ecsapi.Task
		want expect
	}{
		{"expired", bastion("bastions", 1, 2*time.Hour, "1h"), expect{true, "1h0m0s"}},
		{"not yet expired", bastion("bastions", 2, 30*time.Minute, "1h"), expect{false, ""}},
		{"past TTL, within grace", bastion("bastions", 3, time.Hour+time.Minute, "1h"), expect{false, ""}},
		{"exactly at TTL + grace", bastion("bastions", 4, time.Hour+2*time.Minute, "1h"), expect{true, "1h0m0s"}},
		{"tag above the maximum, capped", bastion("bastions", 5, 13*time.Hour, "48h"), expect{true, "12h0m0s"}},
		{"tag above the maximum, not yet at it", bastion("bastions", 6, 11*time.Hour, "48h"), expect{false, ""}},
		{"bad tag abc means the maximum", bastion("bastions", 7, 13*time.Hour, "abc"), expect{true, "12h0m0s"}},
		{"bad tag -5m means the maximum", bastion("bastions", 8, 13*time.Hour, "-5m"), expect{true, "12h0m0s"}},
		{"bad tag 0 means the maximum", bastion("bastions", 9, 13*time.Hour, "0"), expect{true, "12h0m0s"}},
		{"empty tag means the maximum", bastion("bastions", 10, 13*time.Hour, ""), expect{true, "12h0m0s"}},
		{"bad tag 1y before the maximum", bastion("bastions", 11, 11*time.Hour, "1y"), expect{false, ""}},
		{"untagged, however old", bastion("bastions", 12, 1000*time.Hour, "-"), expect{false, ""}},
		{"marked, no startedAt", func() ecsapi.Task {
			t := bastion("bastions", 13, 0, "1m")
			t.StartedAt = time.Time{}
			return t
		}(), expect{false, ""}},
		{"expired, in a cluster not swept", bastion("other", 14, 2*time.Hour, "1h"), expect{false, ""}},
	}
	for _, c := range cases {
		f.ecs.Add(c.task)
	}
	rep, err := f.sw.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		got := f.status(t, c.task.ARN)
		if stopped := got.DesiredStatus == "STOPPED"; stopped != c.want.stopped {
			t.Errorf("%s: stopped = %v, want %v", c.name, stopped, c.want.stopped)
			continue
		}
		if c.want.stopped {
			reason := fmt.Sprintf("bastion-ttl sweeper: TTL %s expired (started %s)", c.want.ttl, c.task.StartedAt.Format(time.RFC3339))
			if got.StoppedReason != reason {
				t.Errorf("%s: reason %q, want %q", c.name, got.StoppedReason, reason)
			}
		}
	}
	want := sweep.Report{Clusters: 1, Scanned: 13, Marked: 12, NotStarted: 1, Expired: 7, Stopped: 7}
	if rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}

	logs := logLines(t, f.logs)
	summary := logs[len(logs)-1]
	for k, v := range map[string]float64{"clusters": 1, "scanned": 13, "marked": 12, "expired": 7, "stopped": 7, "failed": 0} {
		if summary[k] != v {
			t.Errorf("summary %s = %v, want %v (line %v)", k, summary[k], v, summary)
		}
	}
	if _, ok := summary["duration_ms"]; !ok {
		t.Error("summary has no duration_ms")
	}
	// The summary is also an embedded-metric document: Stopped is the
	// alarm's metric.
	raw := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if err := emfcheck.Check([]byte(raw[len(raw)-1])); err != nil {
		t.Errorf("the summary is not an EMF document: %v", err)
	}
	for k, v := range map[string]float64{"Scanned": 13, "Marked": 12, "Expired": 7, "Stopped": 7, "Failed": 0} {
		if summary[k] != v {
			t.Errorf("metric %s = %v, want %v", k, summary[k], v)
		}
	}
	perTask := 0
	for _, l := range logs {
		if l["msg"] == "stopped expired bastion" {
			perTask++
			for _, k := range []string{"task_arn", "ttl", "started_at", "deadline", "reason"} {
				if l[k] == nil {
					t.Errorf("stop line has no %s: %v", k, l)
				}
			}
		}
	}
	if perTask != 7 {
		t.Errorf("%d lines for stopped tasks, want 7", perTask)
	}
}

func TestSweepPaginates(t *testing.T) {
	f := newFixture(t, "bastions")
	for i := range 250 {
		f.ecs.Add(bastion("bastions", i, 2*time.Hour, "1h"))
	}
	rep, err := f.sw.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 250 || rep.Stopped != 250 {
		t.Errorf("report %+v, want 250 scanned and stopped", rep)
	}
	calls := f.ecs.Calls()
	if calls["ListTasks"] != 3 || calls["DescribeTasks"] != 3 || calls["StopTask"] != 250 {
		t.Errorf("calls %v, want 3 ListTasks, 3 DescribeTasks, 250 StopTask", calls)
	}
}

// The endpoint's page tokens are positions in the running list, as real ones
// may be: stopping while paging would shift the pages and skip tasks.
func TestSweepStopsEveryExpiredTaskWhenPagesShift(t *testing.T) {
	f := newFixture(t, "bastions")
	expired, young := 3500, 1500
	if testing.Short() { // 5 pages still shift under the run
		expired, young = 350, 150
	}
	for i := range expired + young {
		age := 2 * time.Hour
		if i%((expired+young)/young) == 0 {
			age = time.Minute
		}
		f.ecs.Add(bastion("bastions", i, age, "1h"))
	}
	f.sw.Parallel = 20
	rep, err := f.sw.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var running, stopped int
	for _, task := range f.ecs.Tasks() {
		if task.DesiredStatus == "STOPPED" {
			stopped++
			if task.StartedAt.After(now.Add(-time.Hour)) {
				t.Fatalf("stopped a young task %s", task.ARN)
			}
		} else if task.StartedAt.Before(now.Add(-time.Hour - f.sw.Grace)) {
			running++
		}
	}
	if running != 0 || rep.Stopped != stopped || rep.Scanned != expired+young {
		t.Fatalf("%d expired tasks still running; report %+v (%d stopped)", running, rep, stopped)
	}
}

func TestSweepDescribeFailuresAreReported(t *testing.T) {
	t.Run("the call fails", func(t *testing.T) {
		f := newFixture(t, "bastions")
		for i := range 150 {
			f.ecs.Add(bastion("bastions", i, 2*time.Hour, "1h"))
		}
		first := true
		f.ecs.Inject(func(action string, _ map[string]any) *ecsapi.Fault {
			if action == "DescribeTasks" && first {
				first = false
				return &ecsapi.Fault{Status: 400, Code: "AccessDeniedException"}
			}
			return nil
		})
		rep, err := f.sw.Run(context.Background())
		if !errors.Is(err, sweep.ErrIncomplete) || rep.Failed != 1 || rep.Stopped != 50 {
			t.Fatalf("report %+v, err %v: want the failed batch reported and the other swept", rep, err)
		}
		assertLogged(t, f.logs, "ERROR", "sweep: describe tasks failed")
	})
	t.Run("a task fails", func(t *testing.T) {
		f := newFixture(t, "bastions")
		hidden := bastion("bastions", 1, 2*time.Hour, "1h")
		hidden.DescribeFailure = "ACCESS_DENIED"
		f.ecs.Add(hidden, bastion("bastions", 2, 2*time.Hour, "1h"))
		rep, err := f.sw.Run(context.Background())
		if !errors.Is(err, sweep.ErrIncomplete) || rep.Failed != 1 || rep.Stopped != 1 {
			t.Fatalf("report %+v, err %v: want the undescribed task reported", rep, err)
		}
		assertLogged(t, f.logs, "ERROR", "sweep: describe tasks failed for a task")
	})
}

func TestSweepWarnsOfABadTag(t *testing.T) {
	f := newFixture(t, "bastions")
	f.ecs.Add(bastion("bastions", 1, 13*time.Hour, "forever"), bastion("bastions", 2, time.Hour, "forever"))
	rep, err := f.sw.Run(context.Background())
	if err != nil || rep.Stopped != 1 {
		t.Fatalf("report %+v, %v: want the one past the maximum stopped", rep, err)
	}
	assertLogged(t, f.logs, "WARN", "bastion-ttl tag is not a positive duration")
}

func assertLogged(t *testing.T, logs *testenv.Buffer, level, msg string) {
	t.Helper()
	for _, l := range logLines(t, logs) {
		if l["level"] == level && strings.HasPrefix(l["msg"].(string), msg) {
			return
		}
	}
	t.Fatalf("no %s line %q in:\n%s", level, msg, logs.String())
}

func TestSweepRetriesThrottling(t *testing.T) {
	f := newFixture(t, "bastions")
	for i := range 20 {
		f.ecs.Add(bastion("bastions", i, 2*time.Hour, "1h"))
	}
	throttled := map[string]int{"ListTasks": 2, "DescribeTasks": 1, "StopTask": 5}
	f.ecs.Inject(func(action string, _ map[string]any) *ecsapi.Fault {
		if throttled[action] > 0 {
			throttled[action]--
			return &ecsapi.Throttled
		}
		return nil
	})
	rep, err := f.sw.Run(context.Background())
	if err != nil {
		t.Fatalf("%v (report %+v)", err, rep)
	}
	if rep.Stopped != 20 || rep.Failed != 0 {
		t.Errorf("report %+v, want all 20 stopped despite throttling", rep)
	}
	calls := f.ecs.Calls()
	if calls["ListTasks"] != 3 || calls["DescribeTasks"] != 2 || calls["StopTask"] != 25 {
		t.Errorf("calls %v, want the throttled ones retried (3, 2, 25)", calls)
	}
}

func TestSweepPartialFailures(t *testing.T) {
	f := newFixture(t, "bastions")
	for i := range 10 {
		f.ecs.Add(bastion("bastions", i, 2*time.Hour, "1h"))
	}
	denied, broken := taskARN("bastions", 3), taskARN("bastions", 7)
	f.ecs.Inject(func(action string, body map[string]any) *ecsapi.Fault {
		switch {
		case action == "StopTask" && body["task"] == denied:
			return &ecsapi.Fault{Status: 400, Code: "AccessDeniedException"}
		case action == "StopTask" && body["task"] == broken:
			return &ecsapi.Fault{Status: 500, Code: "ServerException"}
		}
		return nil
	})
	rep, err := f.sw.Run(context.Background())
	if !errors.Is(err, sweep.ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if rep.Stopped != 8 || rep.Failed != 2 {
		t.Errorf("report %+v, want 8 stopped, 2 failed", rep)
	}
	for i := range 10 {
		arn := taskARN("bastions", i)
		wantStopped := arn != denied && arn != broken
		if got := f.status(t, arn).DesiredStatus == "STOPPED"; got != wantStopped {
			t.Errorf("task %d stopped = %v, want %v", i, got, wantStopped)
		}
	}
	// Access denied is final; a server error is retried up to the attempt limit.
	if calls := f.ecs.Calls()["StopTask"]; calls != 8+1+6 {
		t.Errorf("StopTask calls = %d, want 15 (8 ok, 1 denied, 6 attempts on the server error)", calls)
	}
}

func TestSweepListFailureIsReported(t *testing.T) {
	f := newFixture(t, "broken", "bastions")
	f.ecs.Add(bastion("bastions", 1, 2*time.Hour, "1h"))
	f.ecs.Inject(func(action string, body map[string]any) *ecsapi.Fault {
		if action == "ListTasks" && body["cluster"] == "broken" {
			return &ecsapi.Fault{Status: 400, Code: "ClusterNotFoundException"}
		}
		return nil
	})
	rep, err := f.sw.Run(context.Background())
	if !errors.Is(err, sweep.ErrIncomplete) || rep.Failed != 1 || rep.Stopped != 1 {
		t.Errorf("report %+v, err %v: want the broken cluster failed and the other swept", rep, err)
	}
}

func TestSweepDryRunStopsNothing(t *testing.T) {
	f := newFixture(t, "bastions")
	f.sw.DryRun = true
	f.ecs.Add(bastion("bastions", 1, 2*time.Hour, "1h"), bastion("bastions", 2, time.Minute, "1h"))
	rep, err := f.sw.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (sweep.Report{Clusters: 1, Scanned: 2, Marked: 2, Expired: 1, Stopped: 1, DryRun: true}); rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	if calls := f.ecs.Calls()["StopTask"]; calls != 0 {
		t.Errorf("dry run made %d StopTask calls", calls)
	}
	if f.status(t, taskARN("bastions", 1)).DesiredStatus != "RUNNING" {
		t.Error("dry run stopped a task")
	}
	found := false
	for _, l := range logLines(t, f.logs) {
		if l["msg"] == "would stop expired bastion (dry run)" && l["task_arn"] == taskARN("bastions", 1) {
			found = true
		}
	}
	if !found {
		t.Error("dry run did not report the task it would stop")
	}
}

func TestSweepStopsBeforeItsDeadline(t *testing.T) {
	testenv.RealTime(t) // the run's deadline and the slow StopTask are on the wall clock
	f := newFixture(t, "bastions", "later")
	for i := range 40 {
		f.ecs.Add(bastion("bastions", i, 2*time.Hour, "1h"))
	}
	f.ecs.Add(bastion("later", 100, 2*time.Hour, "1h"))
	f.ecs.Inject(func(action string, _ map[string]any) *ecsapi.Fault {
		if action == "StopTask" {
			return &ecsapi.Fault{Delay: 100 * time.Millisecond}
		}
		return nil
	})
	f.sw.Parallel = 2
	f.sw.Reserve = 200 * time.Millisecond
	deadline := time.Now().Add(900 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	rep, err := f.sw.Run(ctx)
	if end := time.Now(); end.After(deadline) {
		t.Errorf("Run returned %v after its deadline", end.Sub(deadline))
	}
	if !errors.Is(err, sweep.ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", err)
	}
	if rep.Stopped == 0 || rep.Stopped >= 40 {
		t.Errorf("stopped %d, want some but not all of 40 in the time given", rep.Stopped)
	}
	// Every expired task of the first cluster is stopped or reported, and
	// the second cluster is reported as not reached.
	if rep.Stopped+rep.NotReached != 40+1 || rep.Failed != 0 {
		t.Errorf("report %+v: want stopped + not reached = 41 and nothing failed", rep)
	}
	if f.status(t, taskARN("later", 100)).DesiredStatus != "RUNNING" {
		t.Error("the second cluster was swept after the deadline")
	}
}

var _ http.Handler = (*ecsapi.Server)(nil)

// TestSweepAtScale: 10,000 running tasks in one cluster, a fifth of them
// expired bastions. Every expired bastion is stopped, nothing else, with
// the fewest calls: one ListTasks per page of 100, one DescribeTasks per
// page, one StopTask per expired bastion. (make bench times this run.)
// Under -short, 1,000 tasks: 10 pages count the calls as well.
func TestSweepAtScale(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	f := newFixture(t, "bastions")
	tasks, expired := ecsapi.Fleet(region, account, "bastions", n, now)
	f.ecs.Add(tasks...)
	f.sw.Parallel = 20

	rep, err := f.sw.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != n || rep.Stopped != len(expired) || rep.Expired != len(expired) {
		t.Errorf("report %+v, want %d scanned and %d stopped", rep, n, len(expired))
	}
	want := map[string]bool{}
	for _, arn := range expired {
		want[arn] = true
	}
	for _, task := range f.ecs.Tasks() {
		if stopped := task.DesiredStatus == "STOPPED"; stopped != want[task.ARN] {
			t.Fatalf("task %s: stopped = %v, want %v", task.ARN, stopped, want[task.ARN])
		}
	}
	// The fewest calls, give or take the SDK's retry of a request whose
	// connection a loaded machine dropped (seen once in CI: 101 ListTasks).
	pages := (n + 99) / 100
	calls := f.ecs.Calls()
	within := func(got, want int) bool { return got >= want && got <= want+3 }
	if !within(calls["ListTasks"], pages) || !within(calls["DescribeTasks"], pages) || !within(calls["StopTask"], len(expired)) {
		t.Errorf("calls %v, want %d ListTasks, %d DescribeTasks, %d StopTask (+3 retries at most)", calls, pages, pages, len(expired))
	}
}
