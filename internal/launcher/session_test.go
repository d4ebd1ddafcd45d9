package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmplugin"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// droppingPlugin is a session-manager-plugin that says it listens, then
// ends its session at once with exit status 1, as a dropped session does;
// a session whose number is in hold instead lasts until release (or the
// person leaves). It notes the clock's time at each session's start.
type droppingPlugin struct {
	clk     *clocktest.Manual
	hold    map[int]bool
	release chan struct{}

	mu     sync.Mutex
	starts []time.Time
}

func (p *droppingPlugin) Version(context.Context) (string, error) { return "1.2.707.0", nil }

func (p *droppingPlugin) Run(ctx context.Context, _, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	p.mu.Lock()
	n := len(p.starts)
	p.starts = append(p.starts, p.clk.Now())
	p.mu.Unlock()
	fmt.Fprintln(stdout, "Waiting for connections...")
	if p.hold[n] {
		select {
		case <-p.release:
		case <-ctx.Done():
			return nil
		}
	}
	return errors.New("exit status 1")
}

func (p *droppingPlugin) started() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.starts)
}

// reconnectRig is connect reusing a bastion of the caller's on a manual
// clock, through a droppingPlugin; polls are poll apart (the stop is
// looked for every 5 polls).
func reconnectRig(t *testing.T, poll time.Duration, policy backoff.Policy) (*fakeAWS, *droppingPlugin, *clocktest.Manual, string) {
	t.Helper()
	const me = "AROAEXAMPLEDEVELOPER1:alice"
	f := newFakeAWS(t, me)
	arn := f.bastion("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7", me, "4h0m0s")
	clk := clocktest.NewManual(time.Now())
	plugin := &droppingPlugin{clk: clk, hold: map[int]bool{}, release: make(chan struct{})}
	f.env.Clock, f.env.Poll = clk, poll
	f.env.Connect.Plugin, f.env.Connect.Reconnect = plugin, policy
	return f, plugin, clk, arn
}

// backoffSleep waits for the reconnect loop's sleep (the pending one below
// a minute, but the ready fallback's and others) once connect has said it
// reconnects the nth time, and returns its length.
func backoffSleep(t *testing.T, c *connecting, clk *clocktest.Manual, n int, others ...time.Duration) time.Duration {
	t.Helper()
	c.until(t, "reconnecting in ", n)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var short []time.Duration
		for _, d := range clk.Sleeping() {
			if d < time.Minute && d != readyAfter && !slices.Contains(others, d) {
				short = append(short, d)
			}
		}
		if len(short) == 1 {
			return short[0]
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no backoff sleep pending after reconnect %d: %v\n%s", n, clk.Sleeping(), c.out.String())
	return 0
}

// waitStarts waits for n sessions' plugin runs.
func waitStarts(t *testing.T, p *droppingPlugin, n int) []time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.started()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions, want %d", len(p.started()), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return p.started()
}

// A dropped session is opened again after the backoff and not before; the
// backoff is the documented one (1s doubling to 30s, drawn from its upper
// half); after five sessions in a row that end at once, connect gives up
// and leaves the bastion running.
func TestConnectReconnectsAfterTheBackoff(t *testing.T) {
	f, plugin, clk, arn := reconnectRig(t, time.Hour, backoff.Policy{})
	c := startConnect(t, f.env, "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)))
	for attempt := range reconnectsInARow {
		d := backoffSleep(t, c, clk, attempt+1)
		ceil := time.Second << attempt
		if d < ceil/2 || d > ceil {
			t.Fatalf("reconnect %d waits %v, want 1s doubling (%v) drawn from [%v, %v]", attempt+1, d, ceil, ceil/2, ceil)
		}
		if !strings.HasSuffix(strings.TrimSpace(c.out.String()), "reconnecting in "+d.Round(10*time.Millisecond).String()) {
			t.Fatalf("connect said a wait other than %v:\n%s", d, c.out.String())
		}
		clk.Advance(d - time.Millisecond)
		if got := len(plugin.started()); got != attempt+1 || !slices.Contains(clk.Sleeping(), d) {
			t.Fatalf("1ms before the backoff's end: %d sessions (want %d), sleeps %v", got, attempt+1, clk.Sleeping())
		}
		clk.Advance(time.Millisecond)
		starts := waitStarts(t, plugin, attempt+2)
		if gap := starts[attempt+1].Sub(starts[attempt]); gap != d {
			t.Fatalf("session %d opened %v after the drop, want the backoff %v", attempt+2, gap, d)
		}
	}
	if code := c.exit(t); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, c.out.String(), c.errs.String())
	}
	want := fmt.Sprintf("6 sessions in a row ended at once (last: the plugin: exit status 1); the bastion %s keeps running to its deadline", taskID(arn))
	if !strings.Contains(c.errs.String(), want) {
		t.Fatalf("want %q:\n%s", want, c.errs.String())
	}
	if n := len(plugin.started()); n != reconnectsInARow+1 || f.ssm.Calls()["StartSession"] != n {
		t.Fatalf("%d plugin runs, %d sessions: want %d", n, f.ssm.Calls()["StartSession"], reconnectsInARow+1)
	}
	if task, _ := f.api.Task(arn); task.DesiredStatus != "RUNNING" {
		t.Fatalf("giving up left the bastion %s", task.DesiredStatus)
	}
}

// A session that lasted longer than endedAtOnce did not end at once: the
// next backoff starts from 1s again.
func TestConnectBackoffStartsAnewAfterALongSession(t *testing.T) {
	f, plugin, clk, _ := reconnectRig(t, time.Hour, backoff.Policy{})
	plugin.hold[3] = true
	c := startConnect(t, f.env, "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)))
	for attempt := range 3 {
		d := backoffSleep(t, c, clk, attempt+1)
		clk.Advance(d)
	}
	waitStarts(t, plugin, 4)
	clk.Advance(endedAtOnce + time.Second)
	plugin.release <- struct{}{}
	if d := backoffSleep(t, c, clk, 4); d < time.Second/2 || d > time.Second {
		t.Fatalf("after a %v session the backoff is %v, want 1s's again", endedAtOnce+time.Second, d)
	}
	c.cancel()
	if code := c.exit(t); code != 0 || !strings.Contains(c.out.String(), "session ended; the bastion ") {
		t.Fatalf("Ctrl-C during the backoff: exit %d\n%s%s", code, c.out.String(), c.errs.String())
	}
}

// The bastion stops (its deadline, say) while connect waits to reconnect:
// the watch, every 5 polls, sees it, and connect ends at once with the
// stop's reason, without waiting out the backoff or opening a session.
func TestConnectReconnectLoopEndsWhenTheBastionStops(t *testing.T) {
	const poll = time.Second
	f, plugin, clk, arn := reconnectRig(t, poll, backoff.Policy{Base: 30 * time.Second, Max: 30 * time.Second})
	c := startConnect(t, f.env, "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)))
	d := backoffSleep(t, c, clk, 1, 5*poll)
	if d <= 5*poll {
		t.Fatalf("backoff %v: the test needs it longer than the watch's %v", d, 5*poll)
	}
	if _, err := f.env.ECS.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("bastions"), Task: aws.String(arn),
		Reason: aws.String("bastion-ttl: TTL 4h0m0s expired")}); err != nil {
		t.Fatal(err)
	}
	began := clk.Now()
	clk.Advance(5 * poll)
	code := c.exit(t)
	want := "the bastion " + taskID(arn) + " stopped (bastion-ttl: TTL 4h0m0s expired); the connection is closed"
	if code != 1 || !strings.Contains(c.errs.String(), want) {
		t.Fatalf("exit %d, want 1 and %q:\n%s%s", code, want, c.out.String(), c.errs.String())
	}
	if n := len(plugin.started()); n != 1 || clk.Now().Sub(began) != 5*poll {
		t.Fatalf("%d sessions, %v on the clock: want the one, and the watch's %v", n, clk.Now().Sub(began), 5*poll)
	}
}

// The stand-in plugin exits once mid-session (a session timeout): connect
// opens a new session with backoff, and bytes move again. The plugin here
// is 1.2.497.0, which takes the session as JSON in its first argument; the
// connection is a named one of the repository's config file, no flags.
func TestConnectReconnectsWhenThePluginExits(t *testing.T) {
	logPath := standInPlugin(t)
	t.Setenv(ssmplugin.EnvVersion, "1.2.497.0")
	t.Setenv(ssmplugin.EnvExitOnce, filepath.Join(t.TempDir(), "dropped"))
	r := newRig(t)
	host, dbPort := database(t)
	local := freePort(t)
	repo := r.env.Connect.WorkDir
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, ConfigName), fmt.Sprintf("connections:\n  db:\n    to: %s:%d\n    local-port: %d\n    ttl: 30m\n", host, dbPort, local))
	r.env.Connect.WorkDir = filepath.Join(repo, "services", "api")
	c := r.connect(t, "db")
	c.until(t, "through ", 1)
	exchange(t, local, "before the drop")
	c.until(t, "reconnecting in ", 1)
	c.until(t, "through ", 2)
	exchange(t, local, "after the drop")
	c.cancel()
	if code := c.exit(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, c.errs.String())
	}
	if !strings.Contains(c.out.String(), "the session ended (the plugin: exit status 1) while the bastion runs: reconnecting in ") || !strings.Contains(c.out.String(), "TTL 30m0s") {
		t.Errorf("the reconnect's line:\n%s", c.out.String())
	}
	sessions := r.ssm.Sessions()
	if r.ssm.Calls()["StartSession"] != 2 || len(sessions) != 2 || !sessions[0].Terminated || !sessions[1].Terminated {
		t.Fatalf("sessions %+v, calls %v: want two, both terminated", sessions, r.ssm.Calls())
	}
	for _, l := range pluginLog(t, logPath) {
		if l.Form != "json" {
			t.Errorf("plugin 1.2.497.0 was given the %s form: %+v", l.Form, l)
		}
	}
}

// A plugin that goes from PATH while connected (uninstalled, a PATH that
// changed) ends connect at the next session with the install line, saying
// the bastion it started keeps its TTL (exit 1: not bad input, something
// was started), not with reconnect after reconnect.
func TestConnectEndsWhenThePluginGoes(t *testing.T) {
	standInPlugin(t)
	t.Setenv(ssmplugin.EnvExitOnce, filepath.Join(t.TempDir(), "dropped"))
	r := newRig(t)
	host, dbPort := database(t)
	local := freePort(t)
	c := r.connect(t, "--to", fmt.Sprintf("%s:%d", host, dbPort), "--local-port", strconv.Itoa(local))
	c.until(t, "through ", 1)
	t.Setenv("PATH", t.TempDir())
	exchange(t, local, "the last one") // the stand-in exits once this connection closes
	code := c.exit(t)
	if code != 1 || !strings.Contains(c.errs.String(), "started (it keeps its TTL), then: session-manager-plugin is not on PATH: install AWS's Session Manager plugin") {
		t.Fatalf("exit %d, want 1 with the install line:\n%s\nstderr:\n%s", code, c.out.String(), c.errs.String())
	}
	if n := strings.Count(c.out.String(), "reconnecting in "); n != 1 {
		t.Errorf("%d reconnects, want the one that found no plugin:\n%s", n, c.out.String())
	}
	for _, s := range r.ssm.Sessions() {
		if !s.Terminated {
			t.Errorf("session %+v left open", s)
		}
	}
}

// connect's status lines and warnings tell time left by package lifetime's
// rule (lifetime.LeftText), as ls does: to the nearest second, cut to the
// minute from a minute on (45.7s is 46s, 1h5m59.4s is 1h5m).
func TestConnectTellsTimeLeftByTheLifetimeRule(t *testing.T) {
	now := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	for _, to := range []time.Duration{time.Hour + 5*time.Minute + 59*time.Second + 400*time.Millisecond, 45*time.Second + 700*time.Millisecond} {
		deadline := now.Add(to)
		text := lifetime.LeftText(deadline, now)
		var out bytes.Buffer
		c := &connection{env: Env{Stdout: &out, Clock: clocktest.NewFake(now)}, arn: "arn:aws:ecs:eu-west-1:1:task/bastions/0123", deadline: deadline}
		fw := newForward("", "", 5432, 5432)
		c.forwards = []*forward{fw}
		c.sayReady(fw, true)
		if want := "stops at " + when(deadline) + ", " + text + " left"; !strings.Contains(out.String(), want) {
			t.Errorf("%v to go: ready line %q, want %q", to, out.String(), want)
		}
		out.Reset()
		c.env.Clock = clocktest.NewFake(now.Add(-time.Hour))
		c.ce = ConnectEnv{WarnBefore: []time.Duration{to}}
		c.warnBefore(t.Context(), deadline)
		if want := "warning: the bastion 0123 stops in " + text + " (at " + when(deadline) + ")\n"; out.String() != want {
			t.Errorf("%v to go: warning %q, want %q", to, out.String(), want)
		}
	}
	if got := lifetime.LeftText(now.Add(45*time.Second+700*time.Millisecond), now); got != "46s" {
		t.Errorf("45.7s left is told as %q", got)
	}
}

// connect --stop's reason is cut by package lifetime's rule
// (lifetime.CutStopReason), as stop's is.
func TestConnectStopReasonIsCutByTheLifetimeRule(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	arn := f.bastion("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7", "AROAEXAMPLEDEVELOPER1:alice", "2h0m0s")
	c := &connection{env: f.env, cluster: "bastions", arn: arn, stop: true, who: caller{arn: longCaller.arn}}
	if err := c.leave(); err != nil {
		t.Fatal(err)
	}
	task, _ := f.api.Task(arn)
	want := lifetime.CutStopReason("bastion-ttl: stopped by " + longCaller.arn + " (connect --stop)")
	if task.StoppedReason != want || utf8.RuneCountInString(task.StoppedReason) != lifetime.MaxStopReason {
		t.Errorf("reason %q (%d characters), want %q", task.StoppedReason, utf8.RuneCountInString(task.StoppedReason), want)
	}
}
