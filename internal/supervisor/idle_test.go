package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/sessions"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/loopback"
)

// On a fake clock: with nobody on the bastion it stops at start + idle
// timeout (sampled every lifetime.SampleEvery), never before; with a session
// open all along, the TTL applies.
func TestWatchIdleOnAFakeClock(t *testing.T) {
	const ttl, idle = time.Hour, 10 * time.Minute
	for _, tt := range []struct {
		name    string
		session bool
		at      time.Duration // after the start
		reason  string
	}{
		{"nobody on the bastion: idle stop", false, idle, "idle 10m0s: no session since "},
		{"a session open all along: the TTL applies", true, ttl, "TTL 1h0m0s expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clocktest.NewFake(time.Now())
			started := clk.Now().Add(-time.Second)
			api, hits := fakeClockAPI(t, clk, 202)
			var reasons []string
			api.Config.Handler = recordReasons(api.Config.Handler, &reasons)
			w := inProcessWatcher(t, metadataServer(t, started, 0).URL, api.URL, ttl.String(), clk, io.Discard)
			w.cfg.IdleTimeout = idle
			w.procRoot = procWith(t, tt.session)
			if err := w.run(context.Background()); !errors.Is(err, errFailSafe) {
				t.Fatalf("watch = %v", err) // nothing stops the task: the fail-safe follows
			}
			got := hits()
			if len(got) != 1 {
				t.Fatalf("%d stop requests", len(got))
			}
			at := got[0].Sub(started)
			if at < tt.at || at > tt.at+lifetime.SampleEvery(idle) {
				t.Fatalf("stop request at start + %v, want within a sample of %v", at, tt.at)
			}
			if len(reasons) != 1 || len(reasons[0]) < len(tt.reason) || reasons[0][:len(tt.reason)] != tt.reason {
				t.Fatalf("reason %q, want %q...", reasons, tt.reason)
			}
		})
	}
}

// A real listener and a real client on loopback keep the bastion alive past
// its idle timeout; the client's leaving ends it one timeout later.
func TestWatchIdleWithARealSession(t *testing.T) {
	testenv.RealTime(t)
	t.Parallel()
	_, port := loopback.Listen(t, 0)
	client := loopback.Dial(t, port)
	const idle = 2 * time.Second
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, time.Now(), 0), api, "1m")
	env["BASTION_IDLE_TIMEOUT"] = idle.String()
	// Only this test's port: other tests' servers share the namespace.
	env["BASTION_IDLE_PORTS"] = strconv.Itoa(int(port))
	w, err := newWatcher(env, clock.System{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.run(ctx) }()

	time.Sleep(idle + time.Second)
	if n := len(api.Hits()); n != 0 {
		t.Fatalf("stopped with a session open (%d requests)", n)
	}
	client.Close()
	left := time.Now()
	testenv.WaitFor(t, 2*idle+2*time.Second, "the idle stop", func() bool { return len(api.Hits()) > 0 })
	after := api.Hits()[0].at.Sub(left)
	if after < idle-lifetime.SampleEvery(idle) || after > idle+lifetime.SampleEvery(idle)+500*time.Millisecond {
		t.Fatalf("idle stop %v after the client left, want about %v", after, idle)
	}
	if r := api.Hits()[0].req.Reason; len(r) < 5 || r[:5] != "idle " {
		t.Fatalf("reason %q", r)
	}
}

// scriptedClock is a fake clock that runs each event once a Sleep has
// taken the time to it or past it: the watch loop samples only after it
// sleeps, so each event happens between two samples, at the time it names.
type scriptedClock struct {
	*clocktest.Fake
	mu     sync.Mutex
	events []scriptedEvent
}

type scriptedEvent struct {
	at time.Time
	do func()
}

func (c *scriptedClock) at(t time.Time, do func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, scriptedEvent{t, do})
}

func (c *scriptedClock) Sleep(ctx context.Context, d time.Duration) error {
	err := c.Fake.Sleep(ctx, d)
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.events[:0]
	for _, e := range c.events {
		if c.Fake.Now().Before(e.at) {
			kept = append(kept, e)
		} else {
			e.do()
		}
	}
	c.events = kept
	return err
}

// dial connects a real client to port and waits until the kernel's table
// shows the session.
func dial(t *testing.T, port uint16) net.Conn {
	t.Helper()
	c := loopback.Dial(t, port)
	waitInbound(t, port, 1)
	return c
}

// waitInbound waits until /proc/net/tcp shows want sessions on port.
func waitInbound(t *testing.T, port uint16, want int) {
	t.Helper()
	s := &sessions.Sampler{ProcRoot: "/proc", Ports: map[uint16]bool{port: true}}
	for range 200 {
		got, err := s.Count()
		if err != nil {
			t.Skipf("no /proc/net/tcp here: %v", err)
		}
		if got.Sessions == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("port %d: never %d sessions", port, want)
}

// idleRun is one watch on a fake clock with a 1h TTL and a 10m idle
// timeout: when its one stop request left (after the start) and why, and
// its log lines.
type idleRun struct {
	at     time.Duration
	reason string
	logs   []map[string]any
}

const sightTTL, sightIdle = time.Hour, 10 * time.Minute

func runIdle(t *testing.T, clk *scriptedClock, setup func(w *watcher)) idleRun {
	t.Helper()
	started := clk.Now().Add(-time.Second)
	api, hits := fakeClockAPI(t, clk, 202)
	var reasons []string
	api.Config.Handler = recordReasons(api.Config.Handler, &reasons)
	var logs bytes.Buffer
	w := inProcessWatcher(t, metadataServer(t, started, 0).URL, api.URL, sightTTL.String(), clk, &logs)
	w.cfg.IdleTimeout = sightIdle
	w.execAgentDir = filepath.Join(t.TempDir(), "absent")
	setup(w)
	if err := w.run(context.Background()); !errors.Is(err, errFailSafe) {
		t.Fatalf("watch = %v", err) // nothing stops the task: the fail-safe follows
	}
	got := hits()
	if len(got) != 1 || len(reasons) != 1 {
		t.Fatalf("%d stop requests", len(got))
	}
	run := idleRun{at: got[0].Sub(started), reason: reasons[0]}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		run.logs = append(run.logs, rec)
	}
	return run
}

// lines is the log lines of level whose message contains msg.
func (r idleRun) lines(level, msg string) []map[string]any {
	var out []map[string]any
	for _, rec := range r.logs {
		if rec["level"] == level && strings.Contains(rec["msg"].(string), msg) {
			out = append(out, rec)
		}
	}
	return out
}

func (r idleRun) wantTTL(t *testing.T) {
	t.Helper()
	if r.at != sightTTL || !strings.HasPrefix(r.reason, "TTL 1h0m0s expired") {
		t.Fatalf("stop at start + %v (%q), want the TTL's at %v", r.at, r.reason, sightTTL)
	}
}

// BASTION_IDLE_PORTS names a port nothing listens on (a typo: sshd is on
// another port, with a user logged in through a real connection): the
// bastion is never idle, the TTL ends it, and the typo gives one ERROR
// naming the port and what does listen. Before, it stopped for idleness at
// start + the idle timeout with the user logged in.
func TestWatchIdlePortTypoKeepsABusyBastion(t *testing.T) {
	_, sshd := loopback.Listen(t, 0)
	dial(t, sshd) // the user, on the port the typo misses
	typo := loopback.FreePort(t)
	run := runIdle(t, &scriptedClock{Fake: clocktest.NewFake(time.Now())}, func(w *watcher) {
		w.cfg.idlePorts = map[uint16]bool{typo: true}
	})
	run.wantTTL(t)
	errs := run.lines("ERROR", "nothing listens on a BASTION_IDLE_PORTS port")
	if len(errs) != 1 || errs[0]["port"] != float64(typo) || !strings.Contains(errs[0]["listening"].(string), strconv.Itoa(int(sshd))) {
		t.Fatalf("ERROR lines %v, want one naming port %d and the listening %d", errs, typo, sshd)
	}
	if start := run.lines("INFO", "sessions counted"); len(start) != 1 || start[0]["tcp_ports"] != strconv.Itoa(int(typo)) ||
		start[0]["tcp_ports_from"] != "BASTION_IDLE_PORTS" || start[0]["ecs_exec"] != "not enabled for this task" {
		t.Fatalf("start line %v", start)
	}
}

// A server that starts late on a BASTION_IDLE_PORTS port (a real listener
// opened at start + 20m30s, nobody connecting): the port counts as in use
// until the first sample that sees it listen (+21m), idleness counts from
// there, so the idle stop comes at +31m. Before, it came at start + 10m
// while that server was not up yet.
func TestWatchIdleLateServerCountedFromTheSampleThatSeesIt(t *testing.T) {
	port := loopback.FreePort(t)
	clk := &scriptedClock{Fake: clocktest.NewFake(time.Now())}
	t0 := clk.Now()
	clk.at(t0.Add(20*time.Minute+30*time.Second), func() { loopback.Listen(t, port) })
	run := runIdle(t, clk, func(w *watcher) { w.cfg.idlePorts = map[uint16]bool{port: true} })
	// The first sample is at t0, one second after the container's start.
	if want := time.Second + 21*time.Minute + sightIdle; run.at != want || !strings.HasPrefix(run.reason, "idle 10m0s: no session since ") {
		t.Fatalf("stop at start + %v (%q), want %v: idle from the first sample that saw the port listen", run.at, run.reason, want)
	}
	if n := len(run.lines("ERROR", "nothing listens on a BASTION_IDLE_PORTS port")); n != 1 {
		t.Fatalf("%d ERROR lines for the late port, want 1", n)
	}
	if n := len(run.lines("INFO", "BASTION_IDLE_PORTS port now listens")); n != 1 {
		t.Fatalf("%d lines saying the port now listens, want 1", n)
	}
}

// Sampled every minute (a 10m timeout), a real session that closes 59 s
// after the last sample that saw it: the idle stop comes no earlier than
// the close + 10m, and at most one sample later. Before, it came 59 s
// early: 10m after the last sample that saw the session.
func TestWatchIdleNeverBeforeTheLastCloseAndTheTimeout(t *testing.T) {
	_, port := loopback.Listen(t, 0)
	user := dial(t, port)
	clk := &scriptedClock{Fake: clocktest.NewFake(time.Now())}
	t0 := clk.Now()
	closed := t0.Add(15*time.Minute + 59*time.Second)
	clk.at(closed, func() { user.Close(); waitInbound(t, port, 0) })
	run := runIdle(t, clk, func(w *watcher) { w.cfg.idlePorts = map[uint16]bool{port: true} })
	stop := t0.Add(-time.Second).Add(run.at)
	if after := stop.Sub(closed); after < sightIdle || after > sightIdle+lifetime.SampleEvery(sightIdle) {
		t.Fatalf("idle stop %v after the last close, want %v to %v", after, sightIdle, sightIdle+lifetime.SampleEvery(sightIdle))
	}
	if !strings.HasPrefix(run.reason, "idle 10m0s: no session since ") {
		t.Fatalf("reason %q", run.reason)
	}
}

// procs writes a /proc whose net is this process's real one and whose
// processes are pid -> {comm, cgroup}; "self" is the supervisor's.
func procs(t *testing.T, root string, ps map[string][2]string) string {
	t.Helper()
	if root == "" {
		root = t.TempDir()
		if err := os.Symlink("/proc/self/net", filepath.Join(root, "net")); err != nil {
			t.Fatal(err)
		}
	}
	for pid, p := range ps {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"comm": p[0] + "\n", "cgroup": p[1] + "\n"} {
			if err := os.WriteFile(filepath.Join(root, pid, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// ECS Exec sessions: a task with ECS Exec (the SSM agent's mount in the
// supervisor's container) whose /proc shows no other container's process
// (no pidMode task) is never idle, with one ERROR; with pidMode task (the
// bastion's processes visible, in cgroups of their own) it is idle until an
// ssm-session-worker shows, as the kernel names it. A real listener on the
// idle port, nobody on it. Before: an idle stop at start + 10m in every case.
func TestWatchIdleECSExecSessions(t *testing.T) {
	const sidecar, bastion = "0::/ecs/t/sidecar", "0::/ecs/t/bastion"
	_, port := loopback.Listen(t, 0)
	own := map[string][2]string{"self": {"supervisor", sidecar}, "1": {"supervisor", sidecar}}
	for _, tt := range []struct {
		name  string
		exec  bool
		procs map[string][2]string
		want  time.Duration // the stop, after the start
		said  string        // ecs_exec at start
	}{
		{"ECS Exec, no pidMode task: never idle", true, nil, sightTTL, "enabled, workers not visible (no pidMode task): counted as in use"},
		{"ECS Exec, pidMode task, nobody on: idle", true, map[string][2]string{"7": {"sshd", bastion}}, sightIdle, "enabled, workers visible (pidMode task)"},
		{"ECS Exec, pidMode task, one session: busy", true, map[string][2]string{"7": {"sshd", bastion}, "9": {"ssm-session-wor", bastion}}, sightTTL, "enabled, workers visible (pidMode task)"},
		{"no ECS Exec: idle", false, nil, sightIdle, "not enabled for this task"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := procs(t, procs(t, "", own), tt.procs)
			run := runIdle(t, &scriptedClock{Fake: clocktest.NewFake(time.Now())}, func(w *watcher) {
				w.cfg.idlePorts = map[uint16]bool{port: true}
				w.procRoot = root
				if tt.exec {
					w.execAgentDir = t.TempDir()
				}
			})
			if run.at != tt.want {
				t.Fatalf("stop at start + %v (%q), want %v", run.at, run.reason, tt.want)
			}
			errs := run.lines("ERROR", "ECS Exec is enabled but")
			if want := tt.said == "enabled, workers not visible (no pidMode task): counted as in use"; (len(errs) == 1) != want || len(errs) > 1 {
				t.Fatalf("%d ECS Exec ERROR lines", len(errs))
			}
			if start := run.lines("INFO", "sessions counted"); len(start) != 1 || start[0]["ecs_exec"] != tt.said {
				t.Fatalf("start line %v, want ecs_exec %q", start, tt.said)
			}
		})
	}
}
