package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// sidecar runs watch in process with its control endpoint on a free port.
func sidecar(t *testing.T, api *apiServer, started time.Time, ttl string, set map[string]string) (addr string, logs *testenv.Buffer) {
	t.Helper()
	addr = testenv.FreeAddr(t)
	env := baseEnv(t, metadataServer(t, started, 0), api, ttl)
	env["BASTION_CONTROL_ADDR"] = addr
	for k, v := range set {
		env[k] = v
	}
	logs = &testenv.Buffer{}
	a, err := newApp(env, clock.System{}, io.Discard, logs, true)
	if err != nil {
		t.Fatal(err)
	}
	a.procRoot = procWith(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.watch(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return addr, logs
}

// extendCLI runs `supervisor extend` as a person on the bastion does.
func extendCLI(addr string, args ...string) (string, error) {
	var out bytes.Buffer
	err := Run(context.Background(), append([]string{"extend"}, args...), Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": addr}, Stdout: &out, Stderr: io.Discard})
	return out.String(), err
}

// A person extends twice, the second time past the cap; a third asks
// nothing of the API. Each request asks for the whole TTL wanted.
func TestExtendUpToTheCap(t *testing.T) {
	started := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	api := newAPIServer(t, 202)
	api.maxTTL = 2 * time.Hour
	addr, logs := sidecar(t, api, started, "1h", nil)
	// At start the sidecar registers its TTL, and so learns the cap.
	s := awaitStatus(t, addr, func(s Status) bool { return s.MaxTTL != "" })
	if s.TTL != "1h0m0s" || s.ExtendedTo != nil || s.MaxTTL != "2h0m0s" {
		t.Fatalf("status before extending: %+v", s)
	}

	out, err := extendCLI(addr, "30m")
	if err != nil || !strings.HasPrefix(out, "extended: TTL 1h30m0s, ") || !strings.HasSuffix(out, " (ttl)\n") || strings.Contains(out, "capped") {
		t.Fatalf("extend 30m: %q, %v", out, err)
	}
	s = awaitStatus(t, addr, func(Status) bool { return true })
	if s.TTL != "1h30m0s" || s.ExtendedTo == nil || !s.ExtendedTo.Equal(started.Add(90*time.Minute)) || !s.Deadline.Equal(started.Add(90*time.Minute)) {
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
	var ans ExtendAnswer
	if err != nil || json.Unmarshal([]byte(out), &ans) != nil || ans.TTL != "2h0m0s" || !ans.Capped || !ans.Deadline.Equal(started.Add(2*time.Hour)) {
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

// Whatever a user on the box sends, a bad request changes nothing and the
// answer says what is wrong.
func TestExtendRefusesBadRequests(t *testing.T) {
	api := newAPIServer(t, 202)
	addr, _ := sidecar(t, api, time.Now().Add(-time.Minute), "1h", nil)
	awaitStatus(t, addr, func(s Status) bool { return s.MaxTTL != "" })
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
	if s := awaitStatus(t, addr, func(Status) bool { return true }); s.TTL != "1h0m0s" || s.ExtendedTo != nil {
		t.Fatalf("status after bad requests: %+v", s)
	}
	if n := len(api.Extends()); n != registered {
		t.Fatalf("bad requests reached the API %d times", n-registered)
	}
	if _, err := extendCLI(addr, "10s"); err == nil || ExitCode(err, io.Discard) != 2 {
		t.Fatalf("extend 10s: %v, want a usage error", err)
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
	if s := awaitStatus(t, addr, func(Status) bool { return true }); s.TTL != "1h0m0s" || s.ExtendedTo != nil {
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
	s := awaitStatus(t, addr, func(s Status) bool { return s.TTL == "3h0m0s" })
	if !s.Deadline.Equal(started.Add(3*time.Hour)) || s.ExtendedTo == nil {
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
	a := watchApp(t, metadataServer(t, started, 0).URL, api.URL, "10s", clk, logs)
	a.cfg.ControlAddr = addr
	var extended, late string
	var lateErr error
	clk.hooks = map[int]func(){
		1: func() { extended, _ = extendCLI(addr, "1m") },   // asleep towards started + 10s
		3: func() { late, lateErr = extendCLI(addr, "1m") }, // the stop sent, waiting for ECS
	}
	_ = a.watch(context.Background()) // nothing stops the task: ends in the fail-safe
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

// status warns from the first of BASTION_WARN_BEFORE on, naming the limit.
func TestStatusWarns(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var l live
	l.set(taskmeta.Start{TaskARN: testTaskARN, Time: t0}, lifetime.Lifetime{Start: t0, TTL: time.Hour}, 12*time.Hour)
	warn := []time.Duration{time.Minute, 10 * time.Minute}
	for at, want := range map[time.Duration]string{
		49 * time.Minute: "",
		50 * time.Minute: "this bastion stops in 10m0s (ttl limit)",
		59 * time.Minute: "this bastion stops in 1m0s (ttl limit)",
		2 * time.Hour:    "this bastion stops in 0s (ttl limit)",
	} {
		if s, _ := l.status(t0.Add(at), warn); s.Warning != want {
			t.Errorf("at +%v: warning %q, want %q", at, s.Warning, want)
		}
	}
	if s, _ := l.status(t0.Add(59*time.Minute), nil); s.Warning != "" {
		t.Errorf("no BASTION_WARN_BEFORE, still a warning: %q", s.Warning)
	}
}

// Within the warning, status --short starts with WARNING for the prompt
// hook, and the human status says it.
func TestStatusShortWarns(t *testing.T) {
	api := newAPIServer(t, 202)
	addr, _ := sidecar(t, api, time.Now().Add(-time.Minute), "6m", nil)
	awaitStatus(t, addr, func(s Status) bool { return s.MaxTTL != "" })
	person := Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": addr}, Stderr: io.Discard}
	var short, long bytes.Buffer
	person.Stdout = &short
	if err := Run(context.Background(), []string{"status", "--short"}, person); err != nil || !strings.HasPrefix(short.String(), "WARNING: ") || !strings.Contains(short.String(), " left, stops at ") {
		t.Fatalf("status --short = %q, %v", short.String(), err)
	}
	person.Stdout = &long
	if err := Run(context.Background(), []string{"status"}, person); err != nil || !strings.Contains(strings.Join(strings.Fields(long.String()), " "), "warning this bastion stops in ") {
		t.Fatalf("status = %q, %v", long.String(), err)
	}
}

// After a call that may have left an invocation running (no answer), the
// token stays taken until that invocation has surely ended; after an
// answer, even a refusal, it is free at once.
func TestExtensionTokenAfterAFailedCall(t *testing.T) {
	a := &app{extending: make(chan struct{}, 1)}
	short := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return a.takeExtension(ctx)
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
		a.releaseExtension(tc.err)
		if got := short(); got != tc.free {
			t.Fatalf("%s: token free again at once = %v, want %v", tc.name, got, tc.free)
		}
		if got := short(); tc.free && got {
			t.Fatalf("%s: two takers", tc.name) // took it just above
		}
		if tc.free {
			a.releaseExtension(nil)
		}
	}
}

// Whatever holds the control port answers the login shell: an answer that
// is not a sidecar's, or that carries escape sequences, never reaches the
// terminal; status falls back to the task metadata.
func TestSquatterAnswersNeverReachTheTerminal(t *testing.T) {
	const escape = "\x1b]0;owned\x07"
	quoted, _ := json.Marshal(escape)
	jsonEscape := strings.Trim(string(quoted), `"`) // valid JSON: the check, not the decoder, refuses it
	squatter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"code":"CapReached","error":"`+jsonEscape+`"}`)
			return
		}
		_, _ = io.WriteString(w, `{"taskArn":"`+testTaskARN+`","startedAt":"2026-11-24T10:00:00Z","ttl":"1h0m0s","deadline":"2026-11-24T11:00:00Z",`+
			`"reason":"idle","remaining":"5m0s","idleTimeout":"15m0s","idleDeadline":"2026-11-24T11:00:00Z","connections":0,"warning":"this bastion stops in 5m `+jsonEscape+`"}`)
	}))
	defer squatter.Close()
	addr := strings.TrimPrefix(squatter.URL, "http://")
	meta := metadataServer(t, time.Now().Add(-time.Minute), 0)
	env := map[string]string{"BASTION_CONTROL_ADDR": addr, "ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603", "TMPDIR": t.TempDir()}
	var out, errs bytes.Buffer
	if err := Run(context.Background(), []string{"status"}, Env{Environ: env, Stdout: &out, Stderr: &errs}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "\x1b") || !strings.Contains(out.String(), "deadline  unknown: ") {
		t.Fatalf("status printed the squatter's answer, or not the metadata's:\n%q", out.String())
	}
	if !strings.Contains(errs.String(), "is not a sidecar's") {
		t.Fatalf("no warning about the answer:\n%s", errs.String())
	}
	_, err := extendCLI(addr, "30m")
	if err == nil || strings.Contains(err.Error(), "\x1b") || !strings.Contains(err.Error(), "answered 409") {
		t.Fatalf("extend: %q", err)
	}
}

// Outside a task, status says so in one line, at once.
func TestStatusOutsideATask(t *testing.T) {
	began := time.Now()
	err := Run(context.Background(), []string{"status"}, Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": testenv.FreeAddr(t)}, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "no task metadata endpoint") || ExitCode(err, io.Discard) != 1 || time.Since(began) > 2*time.Second {
		t.Fatalf("status outside a task: %v after %v", err, time.Since(began))
	}
}

// The image has no README: --help lists every variable with its default,
// and the docs document each of them too.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, Env{Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	docs, _ := os.ReadFile("../../README.md")
	more, _ := filepath.Glob("../../docs/*.md")
	for _, f := range more {
		b, _ := os.ReadFile(f)
		docs = append(docs, b...)
	}
	ty := reflect.TypeFor[config]()
	for i := range ty.NumField() {
		name := ty.Field(i).Tag.Get("env")
		if name == "" {
			continue
		}
		line := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, name+" ") {
				line = l
			}
		}
		if def := ty.Field(i).Tag.Get("envDefault"); line == "" || (def != "" && !strings.Contains(line, " "+def+" ")) {
			t.Errorf("--help: %s with default %q missing: %q", name, def, line)
		}
		if !bytes.Contains(docs, []byte("`"+name+"`")) {
			t.Errorf("the docs do not document %s", name)
		}
	}
}

// Where only the v2 address is left (an old EC2 agent) and it answers,
// status still reads the metadata.
func TestStatusThroughTheV2Address(t *testing.T) {
	meta := metadataServer(t, time.Now().Add(-time.Minute), 0)
	var out bytes.Buffer
	a, err := newApp(map[string]string{"BASTION_CONTROL_ADDR": "off", "BASTION_TTL": "1h", "TMPDIR": t.TempDir()}, clock.System{}, &out, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if a.endpoint.Version != 2 {
		t.Fatalf("endpoint %+v, want the v2 fallback", a.endpoint)
	}
	a.endpoint.TaskURL = meta.URL + "/v2/task" // the stand-in for 169.254.170.2
	if err := a.status(context.Background(), []string{"--short"}); err != nil || !strings.Contains(out.String(), " left, stops at ") {
		t.Fatalf("status: %v, %q", err, out.String())
	}
}

// BASTION_TTL above the stack's cap (3h against 2h): the registration's
// capped answer is adopted, the deadline moves earlier, the warnings are
// re-armed against it, an ERROR says why, and the stop comes at the cap,
// which is what the sweeper enforces.
func TestRegistrationCappedBelowBastionTTLMovesTheDeadline(t *testing.T) {
	started := time.Now().Add(-2*time.Hour + 3*time.Second).Truncate(time.Millisecond)
	api := newAPIServer(t, 202)
	api.maxTTL = 2 * time.Hour
	addr, logs := sidecar(t, api, started, "3h", nil)
	s := awaitStatus(t, addr, func(s Status) bool { return s.Registered })
	if s.TTL != "2h0m0s" || !s.Deadline.Equal(started.Add(2*time.Hour)) || s.MaxTTL != "2h0m0s" || s.ExtendedTo != nil {
		t.Fatalf("status %+v, want the capped TTL 2h and its deadline", s)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"BASTION_TTL is above the stack's cap`) {
		t.Fatalf("no ERROR about the cap:\n%s", logs.String())
	}
	testenv.WaitFor(t, 2*time.Second, "a warning re-armed against the capped deadline", func() bool {
		return strings.Contains(logs.String(), `"msg":"the bastion stops soon"`)
	})
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
	started := time.Now().Add(-time.Hour + 2*time.Second).Truncate(time.Millisecond)
	api := newAPIServer(t, 202)
	api.maxTTL, api.recorded = 876000*time.Hour, 876000*time.Hour
	addr, logs := sidecar(t, api, started, "1h", nil)
	testenv.WaitFor(t, 2*time.Second, "the refusal", func() bool { return strings.Contains(logs.String(), "registration answer refused") })
	if s := awaitStatus(t, addr, func(Status) bool { return true }); s.TTL != "1h0m0s" || !s.Deadline.Equal(started.Add(time.Hour)) || s.Registered {
		t.Fatalf("status %+v, want BASTION_TTL's deadline, not registered", s)
	}
	testenv.WaitFor(t, 4*time.Second, "the stop at BASTION_TTL's deadline", func() bool { return len(api.Hits()) > 0 })
	if h := api.Hits()[0]; h.at.Sub(started.Add(time.Hour)) > time.Second {
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
	awaitStatus(t, addr, func(s Status) bool { return s.Registered })
	if _, err := extendCLI(addr, "30m"); err == nil || !strings.Contains(err.Error(), "the deadline is unchanged") {
		t.Fatalf("extend answered 11h30m: %v", err)
	}
	if s := awaitStatus(t, addr, func(Status) bool { return true }); s.TTL != "1h0m0s" || s.ExtendedTo != nil {
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
	api := &apiServer{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 2 { // e.g. the task role's permission not propagated yet
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"Forbidden"}`)
			return
		}
		grantExtension(w, r, 12*time.Hour)
	}))}
	t.Cleanup(api.Close)
	addr, logs := sidecar(t, api, time.Now().Add(-time.Minute), "1h", nil)
	person := Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": addr}, Stderr: io.Discard}
	if s := awaitStatus(t, addr, func(Status) bool { return true }); s.Registered {
		t.Fatalf("registered before the API recorded anything: %+v", s)
	}
	var out bytes.Buffer
	person.Stdout = &out
	if err := Run(context.Background(), []string{"status"}, person); err != nil || !strings.Contains(strings.Join(strings.Fields(out.String()), " "), "registered no: ") {
		t.Fatalf("status before: %v\n%s", err, out.String())
	}
	s := awaitStatus(t, addr, func(s Status) bool { return s.Registered })
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
	api := &apiServer{Server: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req stopapi.ExtendRequest
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &req)
		if req.TTL != "1h0m0s" { // not the registration: a slow API
			time.Sleep(300 * time.Millisecond)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		grantExtension(w, r, 12*time.Hour)
		answered <- struct{}{}
	}))}
	t.Cleanup(api.Close)
	addr, logs := sidecar(t, api, time.Now().Add(-time.Minute), "1h", nil)
	awaitStatus(t, addr, func(s Status) bool { return s.Registered })
	<-answered // the registration

	impatient := &http.Client{Timeout: 50 * time.Millisecond}
	if resp, err := impatient.Post("http://"+addr+"/extend", "application/json", strings.NewReader(`{"by":"30m"}`)); err == nil {
		resp.Body.Close()
		t.Fatal("the impatient client got an answer in 50 ms")
	}
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

// Whatever the caller checked, no answer moves the TTL (and the fail-safe
// after the deadline) past the ceiling, BASTION_MAX_TTL; a shorter one
// wakes the watch loop.
func TestAdoptNeverPassesTheCeiling(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	l := newLive()
	l.set(taskmeta.Start{TaskARN: testTaskARN, Time: t0}, lifetime.Lifetime{Start: t0, TTL: time.Hour}, 12*time.Hour)
	if !l.adopt(876000*time.Hour, 876000*time.Hour) {
		t.Fatal("refused before stopping")
	}
	if s, _ := l.status(t0, nil); s.TTL != "12h0m0s" || s.MaxTTL != "12h0m0s" || !s.Deadline.Equal(t0.Add(12*time.Hour)) || !s.Registered {
		t.Fatalf("status after 100 years: %+v", s)
	}
	select {
	case <-l.moved:
		t.Fatal("a later deadline woke the loop")
	default:
	}
	l.adopt(2*time.Hour, 2*time.Hour)
	select {
	case <-l.moved:
	default:
		t.Fatal("an earlier deadline did not wake the loop")
	}
}
