package supervisor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// A task started ttl-lead ago: its deadline is lead from now.
func startedFor(ttl, lead time.Duration) time.Time { return time.Now().Add(-ttl + lead) }

func assertOnTime(t *testing.T, h hit, deadline time.Time) {
	t.Helper()
	if h.at.Before(deadline) {
		t.Fatalf("stop request %v BEFORE the deadline", deadline.Sub(h.at))
	}
	if lag := h.at.Sub(deadline); lag > time.Second {
		t.Fatalf("stop request %v after the deadline", lag)
	}
	if h.sigError != nil {
		t.Fatalf("signature: %v", h.sigError)
	}
	if h.req.TaskARN != testTaskARN || !strings.HasPrefix(h.req.Reason, "TTL 10s expired (started ") || h.req.Cluster != "" {
		t.Fatalf("request = %+v", h.req)
	}
}

// TestWatchOnAFakeClock runs watch in process on a fake clock: every wait
// is instant and every time exact. Nothing stops the task here, so each case
// ends in the fail-safe; the binary tests below keep the signals (SIGTERM
// after the stop: exit 0) and the exit codes.
func TestWatchOnAFakeClock(t *testing.T) {
	const ttl, grace = 10 * time.Second, 2 * time.Minute // inProcessWatcher's grace
	tests := []struct {
		name     string
		statuses []int
		hits     int           // exact number of stop requests; 0: at least 2
		exitAt   time.Duration // the fail-safe exit, after the deadline
	}{
		{"stops at the deadline once, fail-safe if still running at deadline + grace", []int{202}, 1, grace},
		{"retries until accepted", []int{503, 503, 202}, 3, grace},
		{"fail-safe when the API always fails", []int{503}, 0, grace},
		{"a final refusal exits at once", []int{403}, 1, 0},
		{"API Gateway's own 404 is a final refusal", []int{404}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clocktest.NewFake(time.Now())
			started := clk.Now().Add(-time.Second)
			deadline := started.Add(ttl)
			api, hits := fakeClockAPI(t, clk, tt.statuses...)
			w := inProcessWatcher(t, metadataServer(t, started, 0).URL, api.URL, ttl.String(), clk, io.Discard)

			done := make(chan error, 1)
			go func() { done <- w.run(context.Background()) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("watch did not return")
			}
			if !errors.Is(err, errFailSafe) {
				t.Fatalf("watch = %v, want the fail-safe", err)
			}
			got := hits()
			if len(got) == 0 || (tt.hits > 0 && len(got) != tt.hits) || (tt.hits == 0 && len(got) < 2) {
				t.Fatalf("%d stop requests, want %d", len(got), tt.hits)
			}
			if !got[0].Equal(deadline) {
				t.Fatalf("first stop request %v after the deadline, want exactly at it", got[0].Sub(deadline))
			}
			if at := clk.Now().Sub(deadline); at != tt.exitAt {
				t.Fatalf("exit %v after the deadline, want %v", at, tt.exitAt)
			}
		})
	}
}

func TestWatchStopsAtDeadlineThenWaitsForSIGTERM(t *testing.T) {
	t.Parallel()
	startedAt := startedFor(10*time.Second, 2*time.Second)
	api := newAPIServer(t, 202)
	p := start(t, baseEnv(t, metadataServer(t, startedAt, 0), api, "10s"), "watch")

	testenv.WaitFor(t, 5*time.Second, "the stop request", func() bool { return len(api.Hits()) > 0 })
	assertOnTime(t, api.Hits()[0], startedAt.Add(10*time.Second))
	time.Sleep(700 * time.Millisecond)
	if !p.Running() {
		t.Fatal("exited after a 202 instead of waiting for SIGTERM")
	}
	if n := len(api.Hits()); n != 1 {
		t.Fatalf("%d stop requests, want exactly 1", n)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 2*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	// The stop carried the usage sampled at start; SIGTERM sent it once
	// more, with a last sample.
	if u := api.Hits()[0].req.Usage; u == nil || u.Samples < 1 || u.MemoryLimitBytes != 512<<20 {
		t.Errorf("stop request's usage %+v", u)
	}
	if us := api.Usages(); len(us) != 1 || us[0].TaskARN != testTaskARN || us[0].Usage.Samples < 2 {
		t.Errorf("POST /usage at SIGTERM: %+v", us)
	}
	for _, key := range []string{`"task_arn":"` + testTaskARN, `"ttl":"10s"`, `"deadline":"`} {
		if !strings.Contains(p.Output(), key) {
			t.Errorf("log lacks %s", key)
		}
	}
}

func TestWatchMetadataFailingFirstKeepsExactDeadline(t *testing.T) {
	t.Parallel()
	startedAt := startedFor(10*time.Second, 3*time.Second)
	api := newAPIServer(t, 202)
	p := start(t, baseEnv(t, metadataServer(t, startedAt, 3), api, "10s"), "watch")

	testenv.WaitFor(t, 6*time.Second, "the stop request", func() bool { return len(api.Hits()) > 0 })
	assertOnTime(t, api.Hits()[0], startedAt.Add(10*time.Second))
	if !strings.Contains(p.Output(), "task metadata not usable yet") {
		t.Fatal("metadata failures were not logged")
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 2*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestWatchSIGTERMBeforeDeadline(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, 202)
	p := start(t, baseEnv(t, metadataServer(t, time.Now(), 0), api, "1h"))
	testenv.WaitFor(t, 5*time.Second, "the deadline log", func() bool { return strings.Contains(p.Output(), "deadline set") })
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 2*time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if len(api.Hits()) != 0 {
		t.Fatal("stop request sent before the deadline")
	}
	if us := api.Usages(); len(us) != 1 {
		t.Errorf("POST /usage at SIGTERM: %+v", us)
	}
}

func TestWatchDryRun(t *testing.T) {
	t.Parallel()
	startedAt := startedFor(10*time.Second, 500*time.Millisecond)
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, startedAt, 0), api, "10s")
	env["BASTION_DRY_RUN"] = "true"
	p := start(t, env, "watch")
	testenv.WaitFor(t, 5*time.Second, "the dry-run log", func() bool { return strings.Contains(p.Output(), "dry run, not stopping") })
	time.Sleep(300 * time.Millisecond)
	if !p.Running() || len(api.Hits()) != 0 {
		t.Fatalf("dry run: running=%v requests=%d", p.Running(), len(api.Hits()))
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 2*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestWatchLateMetadataDelaysTheStopByLessThanASecond: the endpoint answers
// garbage twice, "not started" three times, and is usable only from just
// before the sidecar's start + TTL (the latest the deadline can be). Waits
// between attempts stay within a second and none crosses that time, so the
// stop leaves at most 0.3 s after the deadline (before the cap: 2.5-3.3 s
// with a 12 s TTL).
func TestWatchLateMetadataDelaysTheStopByLessThanASecond(t *testing.T) {
	const ttl = 12 * time.Second
	clk := clocktest.NewFake(time.Now())
	began := clk.Now()
	started := began.Add(-300 * time.Millisecond) // the container starts before its process
	deadline, latest := started.Add(ttl), began.Add(ttl)
	usableFrom := latest.Add(-100 * time.Millisecond)

	var mu sync.Mutex
	var asked []time.Time
	var calls atomic.Int32
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := clk.Now()
		mu.Lock()
		asked = append(asked, now)
		mu.Unlock()
		switch n := calls.Add(1); {
		case n <= 2:
			_, _ = io.WriteString(w, "garbage")
		case n <= 5 || now.Before(usableFrom):
			_, _ = w.Write(taskmetadata.Document(testTaskARN, testClusterARN, time.Time{}))
		default:
			_, _ = w.Write(taskmetadata.Document(testTaskARN, testClusterARN, started))
		}
	}))
	defer meta.Close()
	api, hits := fakeClockAPI(t, clk, 202)
	w := inProcessWatcher(t, meta.URL, api.URL, ttl.String(), clk, io.Discard)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	testenv.WaitFor(t, 5*time.Second, "the stop request", func() bool { return len(hits()) > 0 })
	cancel()
	// Nothing stops the task here: on the fake clock the wait for ECS ends
	// at once in the fail-safe.
	if err := <-done; err != nil && !errors.Is(err, errFailSafe) {
		t.Fatalf("watch = %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	stopAt := hits()[0]
	// Only the requests up to the stop: after it, the sidecar waits on
	// ECS, and the fake clock may run on to the fail-safe before cancel.
	for len(asked) > 0 && asked[len(asked)-1].After(stopAt) {
		asked = asked[:len(asked)-1]
	}
	for i := 1; i < len(asked); i++ {
		if gap := asked[i].Sub(asked[i-1]); gap > taskmeta.MaxRetryDelay {
			t.Fatalf("%v between metadata requests %d and %d, want at most %v (requests at %v)", gap, i, i+1, taskmeta.MaxRetryDelay, sinceAll(began, asked))
		}
		if asked[i-1].Before(latest) && asked[i].After(latest) {
			t.Fatalf("a wait crossed start + TTL (%v): requests at %v", latest.Sub(began), sinceAll(began, asked))
		}
	}
	if stopAt.Before(deadline) {
		t.Fatalf("stop request %v BEFORE the deadline", deadline.Sub(stopAt))
	}
	if late := stopAt.Sub(deadline); late > latest.Sub(deadline) {
		t.Fatalf("stop request %v after the deadline, want at most %v (requests at %v)", late, latest.Sub(deadline), sinceAll(began, asked))
	}
}

func sinceAll(t0 time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(t0)
	}
	return out
}

// TestWatchFailSafeIsLoggedAtError: an operator reads the logs, not the
// sidecar's stderr.
func TestWatchFailSafeIsLoggedAtError(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	// Deadline a second ago: deadline + grace, a context deadline on the
	// real clock, is still ahead.
	meta := metadataServer(t, clk.Now().Add(-11*time.Second), 0)
	api, hits := fakeClockAPI(t, clk, 403)
	var logs bytes.Buffer
	w := inProcessWatcher(t, meta.URL, api.URL, "10s", clk, &logs)

	err := w.run(context.Background())
	if !errors.Is(err, errFailSafe) || len(hits()) != 1 {
		t.Fatalf("watch = %v after %d requests, want the fail-safe after 1", err, len(hits()))
	}
	var logged bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, "fail-safe") &&
			strings.Contains(line, `"err":"fail-safe exit: the task could not be stopped remotely`) && strings.Contains(line, "403") &&
			strings.Contains(line, `"task_arn":"`+testTaskARN) {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("no ERROR line with the cause:\n%s", logs.String())
	}
}

// A sidecar restarted by a container restart policy has lost what it knew,
// and the metadata shows the container's new start: it counts from the
// container's CreatedAt, a bound below the first start, never from the
// restart, and says so.
func TestWatchAfterARestartNeverStartsTheClockAgain(t *testing.T) {
	clk := clocktest.NewFake(time.Now().Truncate(time.Millisecond))
	created := clk.Now().Add(-5 * time.Second)
	doc := restartedDocument(t, created, clk.Now().Add(-time.Second), 1)
	meta := httptest.NewServer(taskmetadata.Handler(func() []byte { return doc }))
	t.Cleanup(meta.Close)
	api, hits := fakeClockAPI(t, clk, 202)
	var logs bytes.Buffer
	w := inProcessWatcher(t, meta.URL, api.URL, "10s", clk, &logs)
	_ = w.run(context.Background()) // nothing stops the task: ends in the fail-safe
	if got := hits(); len(got) != 1 || !got[0].Equal(created.Add(10*time.Second)) {
		t.Fatalf("stop requests at %v, want one at CreatedAt + TTL (%v), not at the restart + TTL", got, created.Add(10*time.Second))
	}
	if !strings.Contains(logs.String(), `"msg":"a container of the task has restarted: the clock counts from before its first start`) ||
		!strings.Contains(logs.String(), `counted from its CreatedAt`) {
		t.Fatalf("the restart was not logged:\n%s", logs.String())
	}
}
