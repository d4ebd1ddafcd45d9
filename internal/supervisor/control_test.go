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

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
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
	w, err := newWatcher(env, clock.System{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w.procRoot = procWith(t, true) // one session open
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.run(ctx) }()

	s := awaitStatus(t, addr, func(s controlapi.Status) bool { return val(s.Connections) == 1 })
	if s.TaskARN != testTaskARN || !s.StartedAt.Equal(started) || val(s.TTL) != "1h0m0s" || val(s.Reason) != "ttl" ||
		!val(s.Deadline).Equal(started.Add(time.Hour)) || val(s.IdleTimeout) != "2h0m0s" || s.IdleDeadline == nil || s.ExtendedTo != nil {
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
	w, err := newWatcher(env, clock.System{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w.procRoot = procWith(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.run(ctx) }()
	s := awaitStatus(t, addr, func(controlapi.Status) bool { return true })
	if val(s.Connections) != 1 || s.IdleDeadline != nil || val(s.Reason) != "ttl" {
		t.Fatalf("status %+v", s)
	}
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
	w := inProcessWatcher(t, metadataServer(t, started, 0).URL, api.URL, "10s", clk, &logs)
	w.cfg.ControlAddr = squatter.Addr().String()
	_ = w.run(context.Background()) // nothing stops the task: ends in the fail-safe
	if got := hits(); len(got) != 1 || !got[0].Equal(started.Add(10*time.Second)) {
		t.Fatalf("stop requests at %v, want one at the deadline", got)
	}
	if !strings.Contains(logs.String(), "control endpoint not served") {
		t.Fatalf("the taken port was not logged:\n%s", logs.String())
	}
}

// Whatever a user on the box sends, a bad request changes nothing and the
// answer says what is wrong.
func TestExtendRefusesBadRequests(t *testing.T) {
	api := newAPIServer(t, 202)
	addr, _ := sidecar(t, api, time.Now().Add(-time.Minute), "1h", nil)
	awaitStatus(t, addr, func(s controlapi.Status) bool { return s.MaxTTL != "" })
	registered := len(api.Extends())
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"over 1 KiB", "application/json", `{"by":"30m","x":"` + strings.Repeat("x", 1100) + `"}`, 413},
		{"form post", "application/x-www-form-urlencoded", "by=30m", 415},
		{"no content type", "", `{"by":"30m"}`, 415},
		{"not JSON", "application/json", `30m`, 400},
		{"too short", "application/json", `{"by":"30s"}`, 400},
		{"negative", "application/json", `{"by":"-1h"}`, 400},
		{"not a duration", "application/json", `{"by":"forever"}`, 400},
		{"unknown field", "application/json", `{"by":"30m","ttl":"12h"}`, 400},
		{"two objects", "application/json", `{"by":"30m"}{"by":"30m"}`, 400},
		{"huge number", "application/json", `{"by":"` + strings.Repeat("9", 900) + `h"}`, 400},
		{"overflows", "application/json", `{"by":"2562047h"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/extend", strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb stopapi.ErrorBody
			raw, _ := io.ReadAll(resp.Body)
			want := stopapi.CodeBadRequest
			if tc.status == http.StatusRequestEntityTooLarge {
				want = stopapi.CodeTooLarge
			}
			if resp.StatusCode != tc.status || json.Unmarshal(raw, &eb) != nil || eb.Code != want || eb.Error == "" {
				t.Fatalf("status %d %s, want %d with a %s body", resp.StatusCode, raw, tc.status, want)
			}
		})
	}
	if s := awaitStatus(t, addr, func(controlapi.Status) bool { return true }); val(s.TTL) != "1h0m0s" || s.ExtendedTo != nil {
		t.Fatalf("status after bad requests: %+v", s)
	}
	if n := len(api.Extends()); n != registered {
		t.Fatalf("bad requests reached the API %d times", n-registered)
	}
	if _, err := extendCLI(addr, "10s"); err == nil || cli.ExitCode(err, io.Discard, "supervisor") != 2 {
		t.Fatalf("extend 10s: %v, want a usage error", err)
	}
}

// A web page that rebinds its name to 127.0.0.1 reaches a forwarded control
// port with its own name as Host, and its browser adds Origin: the sidecar
// answers 403 on every route, shows no status and asks the API nothing.
// The same requests addressed to loopback, with no Origin, are served.
func TestControlRefusesWebPages(t *testing.T) {
	api := newAPIServer(t, 202)
	addr, _ := sidecar(t, api, time.Now().Add(-time.Minute), "1h", nil)
	awaitStatus(t, addr, func(s controlapi.Status) bool { return s.MaxTTL != "" })
	registered := len(api.Extends())
	send := func(t *testing.T, method, path, host, origin string) (int, []byte) {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"by":"30m"}`)
		}
		req, _ := http.NewRequest(method, "http://"+addr+path, body)
		req.Header.Set("Content-Type", controlapi.ContentType)
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}

	for _, tc := range []struct{ name, method, path, host, origin string }{
		{"status, a rebound name", http.MethodGet, controlapi.StatusPath, "evil.example:8311", ""},
		{"status, a rebound name with the page's Origin", http.MethodGet, controlapi.StatusPath, "evil.example:8311", "http://evil.example:8311"},
		{"status, Origin null", http.MethodGet, controlapi.StatusPath, addr, "null"},
		{"extend, a rebound name", http.MethodPost, controlapi.ExtendPath, "evil.example:8311", ""},
		{"extend, Origin", http.MethodPost, controlapi.ExtendPath, addr, "http://evil.example:8311"},
		{"a route that does not exist", http.MethodGet, "/debug", "evil.example:8311", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := send(t, tc.method, tc.path, tc.host, tc.origin)
			var eb controlapi.ErrorBody
			if status != http.StatusForbidden || json.Unmarshal(raw, &eb) != nil || eb.Code != controlapi.CodeForbidden || !eb.Printable() {
				t.Fatalf("%d %s, want 403 with a Forbidden body", status, raw)
			}
			if bytes.Contains(raw, []byte(testTaskARN)) {
				t.Fatalf("the refusal shows the status: %s", raw)
			}
		})
	}
	if n := len(api.Extends()) - registered; n != 0 {
		t.Fatalf("refused requests asked the API for %d extensions", n)
	}
	if s := awaitStatus(t, addr, func(controlapi.Status) bool { return true }); val(s.TTL) != "1h0m0s" || s.ExtendedTo != nil {
		t.Fatalf("status after refused requests: %+v", s)
	}

	_, port, _ := net.SplitHostPort(addr)
	for _, host := range []string{addr, "localhost:" + port, "[::1]:" + port, "localhost:1234"} { // the last: a forward's local port
		status, raw := send(t, http.MethodGet, controlapi.StatusPath, host, "")
		if status != http.StatusOK || !bytes.Contains(raw, []byte(testTaskARN)) {
			t.Fatalf("GET /status, Host %s: %d %s", host, status, raw)
		}
	}
	status, raw := send(t, http.MethodPost, controlapi.ExtendPath, "localhost:1234", "")
	var ans controlapi.Extended
	if status != http.StatusOK || json.Unmarshal(raw, &ans) != nil || val(ans.TTL) != "1h30m0s" || len(api.Extends()) != registered+1 {
		t.Fatalf("POST /extend through a forward: %d %s; the API asked %d times", status, raw, len(api.Extends())-registered)
	}
}
