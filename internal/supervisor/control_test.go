package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// The sidecar serves its status on the control endpoint, and `supervisor
// status`, run by a person with none of the sidecar's environment (no
// metadata endpoint, no TTL), prints it.
func TestControlEndpointAndStatus(t *testing.T) {
	addr := testenv.FreeAddr(t)
	started := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, started, 0), api, "1h")
	env["BASTION_CONTROL_ADDR"] = addr
	env["BASTION_IDLE_TIMEOUT"] = "2h" // longer than the TTL left: the TTL applies
	a, err := newApp(env, clock.System{}, io.Discard, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	a.procRoot = procWith(t, true) // one session open
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.watch(ctx) }()

	s := awaitStatus(t, addr, func(s Status) bool { return s.Connections == 1 })
	if s.TaskARN != testTaskARN || !s.StartedAt.Equal(started) || s.TTL != "1h0m0s" || s.Reason != "ttl" ||
		!s.Deadline.Equal(started.Add(time.Hour)) || s.IdleTimeout != "2h0m0s" || s.IdleDeadline == nil || s.ExtendedTo != nil {
		t.Fatalf("status %+v", s)
	}
	if resp, err := http.Post("http://"+addr+"/status", "application/json", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /status: %v %v", resp.Status, err)
	}

	var out bytes.Buffer
	person := map[string]string{"BASTION_CONTROL_ADDR": addr} // a login shell: no sidecar environment
	if err := Run(context.Background(), []string{"status"}, Env{Environ: person, Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Run(context.Background(), []string{"status", "--short"}, Env{Environ: person, Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if want := " left, stops at " + started.Add(time.Hour).UTC().Format("15:04:05Z") + " (ttl)\n"; !strings.HasSuffix(out.String(), want) || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("status --short = %q, want one line ending %q", out.String(), want)
	}
	out.Reset()
	if err := Run(context.Background(), []string{"status"}, Env{Environ: person, Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"task          " + testTaskARN, "stops at      " + started.Add(time.Hour).UTC().Format(time.RFC3339) + " (TTL 1h0m0s)", "sessions      1", "idle timeout  2h0m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

// Without an idle timeout nothing samples the sessions; the endpoint counts
// them when asked.
func TestControlCountsSessionsWithoutIdle(t *testing.T) {
	addr := testenv.FreeAddr(t)
	env := baseEnv(t, metadataServer(t, time.Now(), 0), newAPIServer(t, 202), "1h")
	env["BASTION_CONTROL_ADDR"] = addr
	a, err := newApp(env, clock.System{}, io.Discard, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	a.procRoot = procWith(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.watch(ctx) }()
	s := awaitStatus(t, addr, func(Status) bool { return true })
	if s.Connections != 1 || s.IdleDeadline != nil || s.Reason != "ttl" {
		t.Fatalf("status %+v", s)
	}
}

// awaitStatus polls GET /status on addr until an answer satisfies ok.
func awaitStatus(t *testing.T, addr string, ok func(Status) bool) Status {
	t.Helper()
	var s Status
	testenv.WaitFor(t, 5*time.Second, "the control endpoint", func() bool {
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		s = Status{}
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&s) == nil && ok(s)
	})
	return s
}

// Another process holding the control port changes nothing about the stop.
func TestControlPortTakenStillStopsOnTime(t *testing.T) {
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	clk := clocktest.NewFake(time.Now())
	started := clk.Now().Add(-time.Second)
	api, hits := fakeClockAPI(t, clk, 202)
	var logs bytes.Buffer
	a := watchApp(t, metadataServer(t, started, 0).URL, api.URL, "10s", clk, &logs)
	a.cfg.ControlAddr = squatter.Addr().String()
	_ = a.watch(context.Background()) // nothing stops the task: ends in the fail-safe
	if got := hits(); len(got) != 1 || !got[0].Equal(started.Add(10*time.Second)) {
		t.Fatalf("stop requests at %v, want one at the deadline", got)
	}
	if !strings.Contains(logs.String(), "control endpoint not served") {
		t.Fatalf("the taken port was not logged:\n%s", logs.String())
	}
}
