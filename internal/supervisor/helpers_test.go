package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sigv4"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
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
	extendStatus int // != 0: answer POST /extend with it, an error
}

func newAPIServer(t *testing.T, statuses ...int) *apiServer {
	t.Helper()
	s := &apiServer{statuses: statuses, maxTTL: 12 * time.Hour}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/extend" {
			s.extend(t, w, r)
			return
		}
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		signed, err := sigv4.Verify(r, body, func(id string) (aws.Credentials, bool) {
			return aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, id == testKeyID
		}, at, 5*time.Minute)
		if err == nil && (signed.Service != "execute-api" || signed.Region != "eu-west-1" || r.URL.Path != "/terminate" || r.Method != http.MethodPost) {
			err = fmt.Errorf("signed for %s/%s, %s %s", signed.Service, signed.Region, r.Method, r.URL.Path)
		}
		if err == nil {
			err = checkProof(r, body)
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
	}, time.Now(), 5*time.Minute); err != nil || checkProof(r, body) != nil {
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

// checkProof verifies r's proof of identity as STS would: presigned with the
// test credentials for STS in the API's region (no AWS_ENDPOINT_URL_STS in
// the tests' environment), bound to r's route and body.
func checkProof(r *http.Request, body []byte) error {
	return sts.CheckProof(r, body, &url.URL{Scheme: "https", Host: "sts.eu-west-1.amazonaws.com"},
		aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, time.Now())
}
