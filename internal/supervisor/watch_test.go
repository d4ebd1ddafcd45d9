package supervisor

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
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
	for _, key := range []string{`"task_arn":"` + testTaskARN, `"ttl":"10s"`, `"deadline":"`} {
		if !strings.Contains(p.Output(), key) {
			t.Errorf("log lacks %s", key)
		}
	}
}

func TestWatchRetriesUntilAccepted(t *testing.T) {
	t.Parallel()
	startedAt := startedFor(10*time.Second, time.Second)
	api := newAPIServer(t, 503, 503, 202)
	p := start(t, baseEnv(t, metadataServer(t, startedAt, 0), api, "10s"), "watch")

	testenv.WaitFor(t, 8*time.Second, "three attempts", func() bool { return len(api.Hits()) >= 3 })
	hits := api.Hits()
	assertOnTime(t, hits[0], startedAt.Add(10*time.Second))
	for _, h := range hits {
		if h.sigError != nil || h.req.TaskARN != testTaskARN {
			t.Fatalf("retry %+v", h)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if !p.Running() || len(api.Hits()) != 3 {
		t.Fatalf("running=%v after %d attempts; want running after exactly 3", p.Running(), len(api.Hits()))
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 2*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestWatchFailSafeWhenAPIAlwaysFails(t *testing.T) {
	t.Parallel()
	startedAt := startedFor(10*time.Second, time.Second)
	api := newAPIServer(t, 503)
	env := baseEnv(t, metadataServer(t, startedAt, 0), api, "10s")
	env["BASTION_GRACE"] = "2s"
	p := start(t, env, "watch")

	code := p.Wait(t, 10*time.Second)
	giveUp := startedAt.Add(12 * time.Second)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (fail-safe)", code)
	}
	if p.ExitedAt().Before(giveUp) {
		t.Fatalf("fail-safe exit %v before deadline + grace", giveUp.Sub(p.ExitedAt()))
	}
	if late := p.ExitedAt().Sub(giveUp); late > 3*time.Second {
		t.Fatalf("fail-safe exit %v after deadline + grace", late)
	}
	if len(api.Hits()) < 2 {
		t.Fatalf("only %d attempts", len(api.Hits()))
	}
	if !strings.Contains(p.Output(), "fail-safe") {
		t.Fatal("exit does not say fail-safe")
	}
}

func TestWatchFinalRefusalExitsAtOnce(t *testing.T) {
	t.Parallel()
	startedAt := startedFor(10*time.Second, time.Second)
	api := newAPIServer(t, 403)
	env := baseEnv(t, metadataServer(t, startedAt, 0), api, "10s")
	env["BASTION_GRACE"] = "1m"
	p := start(t, env, "watch")

	if code := p.Wait(t, 5*time.Second); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if deadline := startedAt.Add(10 * time.Second); p.ExitedAt().Before(deadline) {
		t.Fatal("exited before the deadline")
	}
	if n := len(api.Hits()); n != 1 {
		t.Fatalf("%d attempts; a 403 is final", n)
	}
}

func TestWatchAcceptedButNeverStoppedFailsSafe(t *testing.T) {
	t.Parallel()
	startedAt := startedFor(10*time.Second, time.Second)
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, startedAt, 0), api, "10s")
	env["BASTION_GRACE"] = "2s"
	p := start(t, env, "watch")

	if code := p.Wait(t, 8*time.Second); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if giveUp := startedAt.Add(12 * time.Second); p.ExitedAt().Before(giveUp) {
		t.Fatalf("exited %v before deadline + grace", giveUp.Sub(p.ExitedAt()))
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

func TestSleepUntilReArmsWhenWallClockIsBehind(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &steppingClock{Fake: clock.NewFake(t0), stepBack: 2 * time.Second}
	if err := sleepUntil(context.Background(), clk, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if clk.Now().Before(t0.Add(10 * time.Second)) {
		t.Fatalf("returned at %v, before the deadline", clk.Now())
	}
	if n := len(clk.Sleeps()); n != 2 {
		t.Fatalf("%d timers armed, want 2 (one, then one more after the step back)", n)
	}
}

// steppingClock steps the wall clock back once, during the first sleep.
type steppingClock struct {
	*clock.Fake
	stepBack time.Duration
	stepped  bool
}

func (c *steppingClock) Sleep(ctx context.Context, d time.Duration) error {
	err := c.Fake.Sleep(ctx, d)
	if !c.stepped {
		c.stepped = true
		c.Fake.Advance(-c.stepBack)
	}
	return err
}
