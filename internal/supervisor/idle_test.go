package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// procWith is a /proc holding one net/tcp table: a listener on 2222 and,
// with session, one client connected to it.
func procWith(t *testing.T, session bool) string {
	t.Helper()
	root := t.TempDir()
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 268641 2 0 100 0 0 10 0\n"
	if session {
		table += "   1: 0100007F:08AE 0100007F:99B6 01 00000000:00000000 02:000005C7 00000000     0        0 269814 2 0 20 0 0 10 -1\n"
	}
	if err := os.MkdirAll(filepath.Join(root, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

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
			a := watchApp(t, metadataServer(t, started, 0).URL, api.URL, ttl.String(), clk, io.Discard)
			a.cfg.IdleTimeout = idle
			a.procRoot = procWith(t, tt.session)
			if err := a.watch(context.Background()); !errors.Is(err, errFailSafe) {
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const idle = 2 * time.Second
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, time.Now(), 0), api, "1m")
	env["BASTION_IDLE_TIMEOUT"] = idle.String()
	// Only this test's port: other tests' servers share the namespace.
	env["BASTION_IDLE_PORTS"] = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	a, err := newApp(env, clock.System{}, io.Discard, io.Discard, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.watch(ctx) }()

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

// recordReasons wraps a stop API handler to keep each request's reason.
func recordReasons(next http.Handler, reasons *[]string) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/terminate" {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req stopapi.Request
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		*reasons = append(*reasons, req.Reason)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// Each mark of BASTION_WARN_BEFORE gives one WARN line as the deadline
// nears; marks already passed at the start give one line together.
func TestWatchWarnings(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	api, _ := fakeClockAPI(t, clk, 202)
	var logs bytes.Buffer
	started := clk.Now().Add(-55 * time.Minute) // 5m left of 1h: the 10m mark has passed
	a := watchApp(t, metadataServer(t, started, 0).URL, api.URL, "1h", clk, &logs)
	a.cfg.WarnBefore = []time.Duration{10 * time.Minute, time.Minute}
	_ = a.watch(context.Background())
	var lefts []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"the bastion stops soon"`) {
			var rec struct{ Level, Left, Limit string }
			_ = json.Unmarshal([]byte(line), &rec)
			if rec.Level != "WARN" || rec.Limit != "ttl" {
				t.Fatalf("warning %s", line)
			}
			lefts = append(lefts, rec.Left)
		}
	}
	if len(lefts) != 2 || lefts[0] != "5m0s" || lefts[1] != "1m0s" {
		t.Fatalf("warnings with %v left, want 5m0s then 1m0s", lefts)
	}
}
