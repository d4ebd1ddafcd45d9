package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sigv4"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// binary is the supervisor built once for the tests that run it as ECS would.
var binary string

func TestMain(m *testing.M) { os.Exit(testenv.MainWithCommand(m, "../../supervisor", &binary)) }

const (
	testTaskARN    = "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3"
	testKeyID      = "AKIDSUPERVISORTEST"
	testSecret     = "supervisor-test-secret"
	testClusterARN = "arn:aws:ecs:us-west-2:111122223333:cluster/default"
)

// metadataServer serves the real v4 Fargate task sample with its container's
// StartedAt set to startedAt, failing the first failFirst requests with a 500.
func metadataServer(t *testing.T, startedAt time.Time, failFirst int32) *httptest.Server {
	t.Helper()
	doc := taskmetadata.Document(testTaskARN, testClusterARN, startedAt)
	serve := taskmetadata.Handler(func() []byte { return doc })
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= failFirst {
			http.Error(w, "agent not ready", http.StatusInternalServerError)
			return
		}
		serve.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// hit is one request received by the terminate stand-in.
type hit struct {
	at       time.Time
	req      stopapi.Request
	sigError error
}

// apiServer stands in for the API: POST /terminate verifies each SigV4
// signature with the test credentials and answers statuses in turn (the last
// repeats); POST /extend grants what is asked up to a cap.
type apiServer struct {
	*httptest.Server
	mu           sync.Mutex
	hits         []hit
	statuses     []int
	extends      []stopapi.ExtendRequest
	recorded     time.Duration // the task's tag
	maxTTL       time.Duration
	extendStatus int         // != 0: answer POST /extend with it, an error
	clock        clock.Clock // the time of a request and of its signature check; nil: the system's
	usages       []stopapi.UsageRequest
}

func (s *apiServer) now() time.Time {
	if s.clock == nil {
		return time.Now()
	}
	return s.clock.Now()
}

func newAPIServer(t *testing.T, statuses ...int) *apiServer {
	t.Helper()
	s := &apiServer{statuses: statuses, maxTTL: 12 * time.Hour}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/extend" {
			s.extend(t, w, r)
			return
		}
		if r.URL.Path == "/usage" {
			s.usage(t, w, r)
			return
		}
		at := s.now()
		body, _ := io.ReadAll(r.Body)
		signed, err := sigv4.Verify(r, body, func(id string) (aws.Credentials, bool) {
			return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, id == testKeyID
		}, at, 5*time.Minute)
		if err == nil && (signed.Service != "execute-api" || signed.Region != "eu-west-1" || r.URL.Path != "/terminate" || r.Method != http.MethodPost) {
			err = fmt.Errorf("signed for %s/%s, %s %s", signed.Service, signed.Region, r.Method, r.URL.Path)
		}
		if err == nil {
			err = checkProof(r, body, at)
		}
		var req stopapi.Request
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if derr := dec.Decode(&req); derr != nil && err == nil {
			err = derr
		}
		s.mu.Lock()
		s.hits = append(s.hits, hit{at: at, req: req, sigError: err})
		status := s.statuses[min(len(s.hits), len(s.statuses))-1]
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"taskArn":%q,"lastStatus":"RUNNING","desiredStatus":"STOPPED"}`, req.TaskARN)
	}))
	t.Cleanup(s.Close)
	return s
}

// extend is the API's POST /extend: the larger of the TTL asked and the
// one recorded, capped, as the terminate function computes it.
func (s *apiServer) extend(t *testing.T, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if _, err := sigv4.Verify(r, body, func(id string) (aws.Credentials, bool) {
		return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, id == testKeyID
	}, s.now(), 5*time.Minute); err != nil || checkProof(r, body, s.now()) != nil {
		t.Errorf("POST /extend: %v", err)
	}
	var req stopapi.ExtendRequest
	_ = json.Unmarshal(body, &req)
	wanted, _ := time.ParseDuration(req.TTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extends = append(s.extends, req)
	w.Header().Set("Content-Type", "application/json")
	if s.extendStatus != 0 {
		w.WriteHeader(s.extendStatus)
		_, _ = io.WriteString(w, `{"code":"Internal","error":"internal error"}`)
		return
	}
	s.recorded = min(max(wanted, s.recorded), s.maxTTL)
	_ = json.NewEncoder(w).Encode(stopapi.Extended{TaskARN: req.TaskARN, TTL: s.recorded.String(), Capped: s.recorded < wanted, MaxTTL: s.maxTTL.String()})
}

// usage is the API's POST /usage: signed and proven, recorded, 202.
func (s *apiServer) usage(t *testing.T, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if _, err := sigv4.Verify(r, body, func(id string) (aws.Credentials, bool) {
		return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, id == testKeyID
	}, s.now(), 5*time.Minute); err != nil || checkProof(r, body, s.now()) != nil {
		t.Errorf("POST /usage: %v", err)
	}
	var req stopapi.UsageRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || stopapi.CheckUsage(req.Usage) != nil {
		t.Errorf("POST /usage %s: %v", body, err)
	}
	s.mu.Lock()
	s.usages = append(s.usages, req)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(stopapi.UsageAccepted{TaskARN: req.TaskARN, Samples: req.Usage.Samples})
}

// Usages is what POST /usage was sent, in order.
func (s *apiServer) Usages() []stopapi.UsageRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stopapi.UsageRequest(nil), s.usages...)
}

// Extends is what POST /extend was asked, in order.
func (s *apiServer) Extends() []stopapi.ExtendRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stopapi.ExtendRequest(nil), s.extends...)
}

// grantExtension answers POST /extend with the TTL asked, up to maxTTL.
func grantExtension(w http.ResponseWriter, r *http.Request, maxTTL time.Duration) {
	var req stopapi.ExtendRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	wanted, _ := time.ParseDuration(req.TTL)
	ttl := min(wanted, maxTTL)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(stopapi.Extended{TaskARN: req.TaskARN, TTL: ttl.String(), Capped: ttl < wanted, MaxTTL: maxTTL.String()})
}

func (s *apiServer) Hits() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.hits...)
}

// baseEnv is a container's environment pointing at the local servers.
func baseEnv(t *testing.T, meta *httptest.Server, api *apiServer, ttl string) map[string]string {
	return map[string]string{
		"ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603",
		"BASTION_TERMINATE_URL":         api.URL + "/terminate",
		"BASTION_TTL":                   ttl,
		"AWS_ACCESS_KEY_ID":             testKeyID,
		"AWS_SECRET_ACCESS_KEY":         testSecret,
		"AWS_REGION":                    "eu-west-1",
		"TMPDIR":                        t.TempDir(),
		"BASTION_CONTROL_ADDR":          "off", // tests in parallel: see control_test.go
	}
}

// start runs the supervisor binary with exactly env.
func start(t *testing.T, env map[string]string, args ...string) *testenv.Process {
	t.Helper()
	testenv.RealTime(t)
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return testenv.Start(t, binary, environ, args...)
}

// runOnce runs a command to its end.
func runOnce(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	p := start(t, env, args...)
	code := p.Wait(t, 20*time.Second)
	return code, p.Output()
}

// checkProof verifies r's proof of identity as STS would at now: presigned with the
// test credentials for STS in the API's region (no AWS_ENDPOINT_URL_STS in
// the tests' environment), bound to r's route and body.
func checkProof(r *http.Request, body []byte, now time.Time) error {
	return sts.CheckProof(r, body, &url.URL{Scheme: "https", Host: "sts.eu-west-1.amazonaws.com"},
		aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, now)
}

// restartedDocument is the real v4 sample for the test task, as the
// metadata shows it: the container created at created; with restarts > 0,
// restarted by a container restart policy at startedAt (RestartCount set,
// CreatedAt kept).
func restartedDocument(t *testing.T, created, startedAt time.Time, restarts int) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(taskmetadata.Document(testTaskARN, testClusterARN, startedAt), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc["Containers"].([]any)[0].(map[string]any)
	c["CreatedAt"] = created.UTC().Format(time.RFC3339Nano)
	if restarts > 0 {
		c["RestartCount"] = restarts
	}
	b, _ := json.Marshal(doc)
	return b
}

// fakeClockAPI stands in for POST /terminate, answering statuses in turn (the
// last repeats) and recording the fake clock's time of each request.
func fakeClockAPI(t *testing.T, clk clock.Clock, statuses ...int) (*httptest.Server, func() []time.Time) {
	t.Helper()
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/extend" { // the sidecar registering its TTL
			grantExtension(w, r, 12*time.Hour)
			return
		}
		if r.URL.Path == "/usage" { // the sidecar's report at exit
			w.WriteHeader(http.StatusAccepted)
			return
		}
		mu.Lock()
		at = append(at, clk.Now())
		status := statuses[min(len(at), len(statuses))-1]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"taskArn":%q,"lastStatus":"RUNNING","desiredStatus":"STOPPED"}`, testTaskARN)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), at...)
	}
}

// inProcessWatcher is the sidecar in process, on clk, with the stop API at apiURL.
func inProcessWatcher(t *testing.T, metaURL, apiURL, ttl string, clk clock.Clock, logs io.Writer) *watcher {
	t.Helper()
	env := map[string]string{
		"ECS_CONTAINER_METADATA_URI_V4": metaURL + "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603",
		"BASTION_TERMINATE_URL":         apiURL + "/terminate",
		"BASTION_TTL":                   ttl,
		"BASTION_GRACE":                 "2m",
		"BASTION_CONTROL_ADDR":          "off",
		"AWS_ACCESS_KEY_ID":             testKeyID,
		"AWS_SECRET_ACCESS_KEY":         testSecret,
		"AWS_REGION":                    "eu-west-1",
	}
	w, err := newWatcher(env, clk, logs)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// sidecar runs watch in process with its control endpoint on a free port;
// setup, if not nil, adjusts the watcher before it runs.
func sidecar(t *testing.T, api *apiServer, started time.Time, ttl string, setup func(w *watcher)) (addr string, logs *testenv.Buffer) {
	t.Helper()
	return sidecarOn(t, clock.System{}, api, started, ttl, setup)
}

// sidecarOn is sidecar on clk.
func sidecarOn(t *testing.T, clk clock.Clock, api *apiServer, started time.Time, ttl string, setup func(w *watcher)) (addr string, logs *testenv.Buffer) {
	t.Helper()
	addr = testenv.FreeAddr(t)
	env := baseEnv(t, metadataServer(t, started, 0), api, ttl)
	env["BASTION_CONTROL_ADDR"] = addr
	logs = &testenv.Buffer{}
	w, err := newWatcher(env, clk, logs)
	if err != nil {
		t.Fatal(err)
	}
	w.procRoot = procWith(t, false)
	if setup != nil {
		setup(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return addr, logs
}

// gatedClock is a fake clock whose sleeps wait, in real time, until open
// is called or their context ends (a deadline that moved earlier ends the
// watch loop's): the sidecar holds before its deadline until the test has
// seen what it did at start.
type gatedClock struct {
	*clocktest.Fake
	gate chan struct{}
	once sync.Once
}

func newGatedClock(now time.Time) *gatedClock {
	return &gatedClock{Fake: clocktest.NewFake(now), gate: make(chan struct{})}
}

func (c *gatedClock) open() { c.once.Do(func() { close(c.gate) }) }

func (c *gatedClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-c.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Fake.Sleep(ctx, d)
}

// awaitStatus polls GET /status on addr until an answer, one the contract
// accepts, satisfies ok.
func awaitStatus(t *testing.T, addr string, ok func(controlapi.Status) bool) controlapi.Status {
	t.Helper()
	var s controlapi.Status
	testenv.WaitFor(t, 5*time.Second, "the control endpoint", func() bool {
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		s = controlapi.Status{}
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&s) == nil && s.Validate() == nil && ok(s)
	})
	return s
}

// extendCLI runs `supervisor extend` as a person on the bastion does.
func extendCLI(addr string, args ...string) (string, error) {
	var out bytes.Buffer
	err := Run(context.Background(), append([]string{"extend"}, args...), Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": addr}, Stdout: &out, Stderr: io.Discard})
	return out.String(), err
}

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

// val is *p, or the zero value for nil: a field of controlapi.Status that
// is not known.
func val[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// squatter is something else holding the control port: it answers GET
// /status with all a sidecar sends but a warning carrying an escape
// sequence, and POST /extend with a 409 whose error is one. It returns its
// address.
func squatter(t *testing.T) string {
	t.Helper()
	const escape = "\x1b]0;owned\x07"
	quoted, _ := json.Marshal(escape)
	jsonEscape := strings.Trim(string(quoted), `"`) // valid JSON: the check, not the decoder, refuses it
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"code":"CapReached","error":"`+jsonEscape+`"}`)
			return
		}
		_, _ = io.WriteString(w, `{"schemaVersion":1,"source":"sidecar","taskArn":"`+testTaskARN+`","startedAt":"2026-11-24T10:00:00Z","ttl":"1h0m0s","deadline":"2026-11-24T11:00:00Z",`+
			`"reason":"idle","remaining":"5m0s","remainingSeconds":300,"idleTimeout":"15m0s","idleDeadline":"2026-11-24T11:00:00Z","connections":0,"warning":"this bastion stops in 5m `+jsonEscape+`"}`)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
