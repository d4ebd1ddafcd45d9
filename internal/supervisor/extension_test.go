package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// A person extends twice, the second time past the cap; a third asks
// nothing of the API. Each request asks for the whole TTL wanted.
func TestExtendUpToTheCap(t *testing.T) {
	started := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	api := newAPIServer(t, 202)
	api.maxTTL = 2 * time.Hour
	addr, logs := sidecar(t, api, started, "1h", nil)
	// At start the sidecar registers its TTL, and so learns the cap.
	s := awaitStatus(t, addr, func(s controlapi.Status) bool { return s.MaxTTL != "" })
	if val(s.TTL) != "1h0m0s" || s.ExtendedTo != nil || s.MaxTTL != "2h0m0s" {
		t.Fatalf("status before extending: %+v", s)
	}

	out, err := extendCLI(addr, "30m")
	if err != nil || !strings.HasPrefix(out, "extended: TTL 1h30m0s, ") || !strings.HasSuffix(out, " (ttl)\n") || strings.Contains(out, "capped") {
		t.Fatalf("extend 30m: %q, %v", out, err)
	}
	s = awaitStatus(t, addr, func(controlapi.Status) bool { return true })
	if val(s.TTL) != "1h30m0s" || s.ExtendedTo == nil || !s.ExtendedTo.Equal(started.Add(90*time.Minute)) || !val(s.Deadline).Equal(started.Add(90*time.Minute)) {
		t.Fatalf("status after extending: %+v", s)
	}

	var human bytes.Buffer
	if err := Run(context.Background(), []string{"status"}, Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": addr}, Stdout: &human, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	words := strings.Join(strings.Fields(human.String()), " ")
	for _, want := range []string{"ttl 1h30m0s (extended) max ttl 2h0m0s (supervisor extend 30m asks for more, up to it)", "(TTL 1h30m0s)"} {
		if !strings.Contains(words, want) {
			t.Errorf("status lacks %q:\n%s", want, human.String())
		}
	}

	out, err = extendCLI(addr, "--json", "1h")
	var ans controlapi.Extended
	if err != nil || json.Unmarshal([]byte(out), &ans) != nil || val(ans.TTL) != "2h0m0s" || !ans.Capped || !val(ans.Deadline).Equal(started.Add(2*time.Hour)) {
		t.Fatalf("extend past the cap: %q, %v", out, err)
	}

	_, err = extendCLI(addr, "30m")
	if err == nil || !strings.Contains(err.Error(), "already at its cap of 2h0m0s") {
		t.Fatalf("extend at the cap: %v", err)
	}
	got := api.Extends()
	var asked []string
	for _, r := range got {
		if r.TaskARN != testTaskARN {
			t.Fatalf("asked for %s", r.TaskARN)
		}
		asked = append(asked, r.TTL)
	}
	if strings.Join(asked, " ") != "1h0m0s 1h30m0s 2h30m0s" {
		t.Fatalf("the API was asked for %v; want the registration, then each whole TTL, and nothing at the cap", asked)
	}
	if n := len(api.Hits()); n != 0 {
		t.Fatalf("%d stop requests", n)
	}
	if !strings.Contains(logs.String(), `"msg":"TTL extended"`) {
		t.Fatalf("no log line for the extension:\n%s", logs.String())
	}
}

// The API failing leaves the deadline as it was and says so.
func TestExtendWhenTheAPIFails(t *testing.T) {
	api := newAPIServer(t, 202)
	api.extendStatus = http.StatusForbidden
	addr, logs := sidecar(t, api, time.Now().Add(-time.Minute), "1h", nil)
	testenv.WaitFor(t, 5*time.Second, "the registration's failure", func() bool {
		return strings.Contains(logs.String(), "could not register the TTL")
	})
	_, err := extendCLI(addr, "30m")
	if err == nil || !strings.Contains(err.Error(), "the API did not extend the TTL") || strings.Contains(err.Error(), "403") {
		t.Fatalf("extend: %v", err)
	}
	if s := awaitStatus(t, addr, func(controlapi.Status) bool { return true }); val(s.TTL) != "1h0m0s" || s.ExtendedTo != nil {
		t.Fatalf("status: %+v", s)
	}
	if _, err := extendCLI(testenv.FreeAddr(t), "30m"); err == nil || !strings.Contains(err.Error(), "no sidecar answers") {
		t.Fatalf("no sidecar: %v", err)
	}
}

// A restarted sidecar keeps the extension its predecessor got: the API
// answers the TTL recorded in the task's tag.
func TestRestartedSidecarKeepsTheExtension(t *testing.T) {
	started := time.Now().Add(-90 * time.Minute).Truncate(time.Second)
	api := newAPIServer(t, 202)
	api.recorded = 3 * time.Hour
	addr, logs := sidecar(t, api, started, "2h", nil)
	s := awaitStatus(t, addr, func(s controlapi.Status) bool { return val(s.TTL) == "3h0m0s" })
	if !val(s.Deadline).Equal(started.Add(3*time.Hour)) || s.ExtendedTo == nil {
		t.Fatalf("status %+v", s)
	}
	if !strings.Contains(logs.String(), "TTL taken from the task's bastion-ttl tag, longer than BASTION_TTL") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// hookClock is a fake clock that runs hook before its nth Sleep.
type hookClock struct {
	*clocktest.Fake
	mu    sync.Mutex
	n     int
	hooks map[int]func()
}

func (h *hookClock) Sleep(ctx context.Context, d time.Duration) error {
	h.mu.Lock()
	h.n++
	hook := h.hooks[h.n]
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return h.Fake.Sleep(ctx, d)
}

// An extension made while the sidecar sleeps towards its deadline moves
// the stop to the new deadline, with the new TTL in the reason; once the
// deadline has passed, an extension is refused.
func TestExtensionMovesTheStop(t *testing.T) {
	addr := testenv.FreeAddr(t)
	fake := clocktest.NewFake(time.Now())
	clk := &hookClock{Fake: fake}
	started := fake.Now().Add(-time.Second)
	api, hits := fakeClockAPI(t, fake, 202)
	logs := &testenv.Buffer{}
	w := inProcessWatcher(t, metadataServer(t, started, 0).URL, api.URL, "10s", clk, logs)
	w.cfg.ControlAddr = addr
	w.usage = nil // the hooks count the loop's sleeps: no usage sample's wake-up among them
	var extended, late string
	var lateErr error
	clk.hooks = map[int]func(){
		1: func() { extended, _ = extendCLI(addr, "1m") },   // asleep towards started + 10s
		3: func() { late, lateErr = extendCLI(addr, "1m") }, // the stop sent, waiting for ECS
	}
	_ = w.run(context.Background()) // nothing stops the task: ends in the fail-safe
	if !strings.HasPrefix(extended, "extended: TTL 1m10s") {
		t.Fatalf("extension: %q\n%s", extended, logs.String())
	}
	if got := hits(); len(got) != 1 || !got[0].Equal(started.Add(70*time.Second)) {
		t.Fatalf("stop requests at %v, want one at started + 1m10s (%v)", got, started.Add(70*time.Second))
	}
	if !strings.Contains(logs.String(), `"reason":"TTL 1m10s expired`) {
		t.Fatalf("the stop reason lacks the extended TTL:\n%s", logs.String())
	}
	if lateErr == nil || !strings.Contains(lateErr.Error(), "being stopped") {
		t.Fatalf("extension after the deadline: %q, %v", late, lateErr)
	}
	if !strings.Contains(logs.String(), `"msg":"the bastion stops soon"`) {
		t.Fatalf("no warning logged:\n%s", logs.String())
	}
	checkUniqueKeys(t, logs.String())
}

// checkUniqueKeys fails on a JSON log line that repeats a key: a reader
// (jq, CloudWatch Logs Insights) keeps only one of them.
func checkUniqueKeys(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		seen := map[string]bool{}
		depth := 0
		isKey := false
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch v := tok.(type) {
			case json.Delim:
				switch v {
				case '{', '[':
					depth++
					isKey = v == '{' && depth == 1
				default:
					depth--
					isKey = depth == 1 // a nested value ended: a key follows
				}
				continue
			case string:
				if depth == 1 && isKey {
					if seen[v] {
						t.Errorf("key %q twice in %s", v, line)
					}
					seen[v] = true
					isKey = false
					continue
				}
			}
			isKey = depth == 1
		}
	}
}

// After a call that may have left an invocation running (no answer), the
// token stays taken until that invocation has surely ended; after an
// answer, even a refusal, it is free at once.
func TestExtensionTokenAfterAFailedCall(t *testing.T) {
	w := &watcher{extending: make(chan struct{}, 1)}
	short := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return w.takeExtension(ctx)
	}
	for _, tc := range []struct {
		name string
		err  error
		free bool
	}{
		{"answered", nil, true},
		{"refused by the API", &stopclient.RejectedError{Op: "extend", Status: 403}, true},
		{"no answer in time", context.DeadlineExceeded, false},
	} {
		if !short() {
			t.Fatalf("%s: the token is not free to start with", tc.name)
		}
		w.releaseExtension(tc.err)
		if got := short(); got != tc.free {
			t.Fatalf("%s: token free again at once = %v, want %v", tc.name, got, tc.free)
		}
		if got := short(); tc.free && got {
			t.Fatalf("%s: two takers", tc.name) // took it just above
		}
		if tc.free {
			w.releaseExtension(nil)
		}
	}
}

// BASTION_TTL above the stack's cap (3h against 2h): the registration's
// capped answer is adopted, the deadline moves earlier, the warnings are
// re-armed against it, an ERROR says why, and the stop comes at the cap,
// which is what the sweeper enforces.
func TestRegistrationCappedBelowBastionTTLMovesTheDeadline(t *testing.T) {
	clk := newGatedClock(time.Now())
	started := clk.Now().Add(-2*time.Hour + 3*time.Second).Truncate(time.Millisecond)
	api := newAPIServer(t, 202)
	api.maxTTL, api.clock = 2*time.Hour, clk
	addr, logs := sidecarOn(t, clk, api, started, "3h", nil)
	s := awaitStatus(t, addr, func(s controlapi.Status) bool { return s.Registered })
	if val(s.TTL) != "2h0m0s" || !val(s.Deadline).Equal(started.Add(2*time.Hour)) || s.MaxTTL != "2h0m0s" || s.ExtendedTo != nil {
		t.Fatalf("status %+v, want the capped TTL 2h and its deadline", s)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"BASTION_TTL is above the stack's cap`) {
		t.Fatalf("no ERROR about the cap:\n%s", logs.String())
	}
	testenv.WaitFor(t, 2*time.Second, "a warning re-armed against the capped deadline", func() bool {
		return strings.Contains(logs.String(), `"msg":"the bastion stops soon"`)
	})
	if n := len(api.Hits()); n != 0 {
		t.Fatalf("%d stop requests before the clock reached the deadline", n)
	}
	clk.open() // on to the deadline
	testenv.WaitFor(t, 6*time.Second, "the stop at the cap", func() bool { return len(api.Hits()) > 0 })
	h := api.Hits()[0]
	if deadline := started.Add(2 * time.Hour); h.at.Before(deadline) || h.at.Sub(deadline) > time.Second || !strings.HasPrefix(h.req.Reason, "TTL 2h0m0s expired") {
		t.Fatalf("stop at %v after the capped deadline, reason %q", h.at.Sub(deadline), h.req.Reason)
	}
}

// An answer longer than what was asked is refused, whoever sent it: at
// registration above BASTION_MAX_TTL (a hostile or wrong API said 100
// years), and at an extension above the TTL asked. The deadline, and the
// fail-safe after it, stay where they were.
func TestAnswersAboveWhatWasAskedAreRefused(t *testing.T) {
	clk := newGatedClock(time.Now())
	started := clk.Now().Add(-time.Hour + 2*time.Second).Truncate(time.Millisecond)
	api := newAPIServer(t, 202)
	api.maxTTL, api.recorded, api.clock = 876000*time.Hour, 876000*time.Hour, clk
	addr, logs := sidecarOn(t, clk, api, started, "1h", nil)
	testenv.WaitFor(t, 2*time.Second, "the refusal", func() bool { return strings.Contains(logs.String(), "registration answer refused") })
	if s := awaitStatus(t, addr, func(controlapi.Status) bool { return true }); val(s.TTL) != "1h0m0s" || !val(s.Deadline).Equal(started.Add(time.Hour)) || s.Registered {
		t.Fatalf("status %+v, want BASTION_TTL's deadline, not registered", s)
	}
	clk.open() // on to the deadline
	testenv.WaitFor(t, 4*time.Second, "the stop at BASTION_TTL's deadline", func() bool { return len(api.Hits()) > 0 })
	if h := api.Hits()[0]; h.at.Before(started.Add(time.Hour)) || h.at.Sub(started.Add(time.Hour)) > time.Second {
		t.Fatalf("stop %v after the deadline", h.at.Sub(started.Add(time.Hour)))
	}

	// An extension answered with more than it asked.
	generous := &apiServer{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req stopapi.ExtendRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		asked, _ := time.ParseDuration(req.TTL)
		ttl := asked
		if asked > time.Hour { // the registration is answered as asked
			ttl = asked + 10*time.Hour
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(stopapi.Extended{TaskARN: req.TaskARN, TTL: ttl.String(), MaxTTL: "12h"})
	}))}
	t.Cleanup(generous.Close)
	addr, logs = sidecar(t, generous, time.Now().Add(-time.Minute), "1h", nil)
	awaitStatus(t, addr, func(s controlapi.Status) bool { return s.Registered })
	if _, err := extendCLI(addr, "30m"); err == nil || !strings.Contains(err.Error(), "the deadline is unchanged") {
		t.Fatalf("extend answered 11h30m: %v", err)
	}
	if s := awaitStatus(t, addr, func(controlapi.Status) bool { return true }); val(s.TTL) != "1h0m0s" || s.ExtendedTo != nil {
		t.Fatalf("status %+v after a refused answer", s)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"extension answer refused`) {
		t.Fatalf("no ERROR for the refused answer:\n%s", logs.String())
	}
}

// A registration that fails at start is asked again in the background
// until the API records it (the sweeper reads that tag); status says
// whether it is registered.
func TestRegistrationIsRetriedUntilRecorded(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	granting := make(chan struct{}) // closed once the test has seen "not registered"
	api := &apiServer{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		select {
		case <-granting:
		default:
			n = 0
		}
		if n <= 2 { // e.g. the task role's permission not propagated yet
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"Forbidden"}`)
			return
		}
		grantExtension(w, r, 12*time.Hour)
	}))}
	t.Cleanup(api.Close)
	// Attempts a few milliseconds apart: the API, not the backoff, says
	// when the registration can succeed.
	addr, logs := sidecar(t, api, time.Now().Add(-time.Minute), "1h", func(w *watcher) {
		w.registerBackoff = backoff.Policy{Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	})
	person := Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": addr}, Stderr: io.Discard}
	if s := awaitStatus(t, addr, func(controlapi.Status) bool { return true }); s.Registered {
		t.Fatalf("registered before the API recorded anything: %+v", s)
	}
	var out bytes.Buffer
	person.Stdout = &out
	if err := Run(context.Background(), []string{"status"}, person); err != nil || !strings.Contains(strings.Join(strings.Fields(out.String()), " "), "registered no: ") {
		t.Fatalf("status before: %v\n%s", err, out.String())
	}
	close(granting)
	s := awaitStatus(t, addr, func(s controlapi.Status) bool { return s.Registered })
	if s.MaxTTL != "12h0m0s" || !strings.Contains(logs.String(), "could not register the TTL with the API, retrying") {
		t.Fatalf("status %+v\n%s", s, logs.String())
	}
	out.Reset()
	if err := Run(context.Background(), []string{"status"}, person); err != nil || !strings.Contains(strings.Join(strings.Fields(out.String()), " "), "registered yes: ") {
		t.Fatalf("status after: %v\n%s", err, out.String())
	}
	var asJSON bytes.Buffer
	person.Stdout = &asJSON
	if err := Run(context.Background(), []string{"status", "--json"}, person); err != nil || !strings.Contains(asJSON.String(), `"registered": true`) {
		t.Fatalf("status --json: %v\n%s", err, asJSON.String())
	}
}

// A user on the box who sends POST /extend and hangs up after 50 ms
// blocks no one: the API call runs on the sidecar's own context, its answer
// is adopted, and the token is free again as soon as the API has answered.
func TestExtensionClientHangingUpBlocksNoOne(t *testing.T) {
	answered := make(chan struct{}, 4)
	asked := make(chan struct{})   // the API holds the first extension...
	release := make(chan struct{}) // ...until its client has hung up
	api := &apiServer{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req stopapi.ExtendRequest
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		if req.TTL == "1h30m0s" { // the impatient client's: a slow API
			close(asked)
			<-release
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		grantExtension(w, r, 12*time.Hour)
		answered <- struct{}{}
	}))}
	t.Cleanup(api.Close)
	addr, logs := sidecar(t, api, time.Now().Add(-time.Minute), "1h", nil)
	awaitStatus(t, addr, func(s controlapi.Status) bool { return s.Registered })
	<-answered // the registration

	ctx, hangUp := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/extend", strings.NewReader(`{"by":"30m"}`))
	req.Header.Set("Content-Type", "application/json")
	go func() { <-asked; hangUp() }()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the client that hung up got an answer")
	}
	testenv.WaitFor(t, 3*time.Second, "the sidecar to see the client hang up", func() bool {
		return strings.Contains(logs.String(), "the client of an extension hung up; the extension is still asked")
	})
	close(release)
	select {
	case <-answered:
	case <-time.After(3 * time.Second):
		t.Fatal("the API was never asked, or never answered")
	}
	began := time.Now()
	out, err := extendCLI(addr, "30m")
	if err != nil || !strings.HasPrefix(out, "extended: TTL 2h0m0s") {
		t.Fatalf("the next extension, right after the API answered: %q, %v (after %v)\n%s", out, err, time.Since(began), logs.String())
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("the next extension waited %v", d)
	}
}
