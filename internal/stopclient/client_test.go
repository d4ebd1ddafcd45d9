package stopclient

import (
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"

	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sigv4"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

var testCreds = aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret"}

// recorder answers with statuses in turn (the last one repeats) and checks
// every request's signature.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	bodies   []stopapi.Request
	badSigs  int
	proofs   []string // each attempt's proof, once verified as STS would
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	_, err := sigv4.Verify(r, body, func(id string) (aws.Credentials, bool) { return testCreds, id == testCreds.AccessKeyID }, time.Now(), 5*time.Minute)
	var req stopapi.Request
	_ = json.Unmarshal(body, &req)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.badSigs++
	}
	if err := verifyProof(r, body); err != nil {
		rec.badSigs++
	} else {
		rec.proofs = append(rec.proofs, r.Header.Get(identityproof.Header))
	}
	rec.bodies = append(rec.bodies, req)
	status := rec.statuses[min(len(rec.bodies)-1, len(rec.statuses)-1)]
	body = []byte(`{"code":"` + string(codeOf[status]) + `","error":"x"}`)
	if status == notFoundByGateway {
		status, body = http.StatusNotFound, []byte(`{"message":"Not Found"}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// notFoundByGateway stands for API Gateway's own 404 (a wrong path or stage).
const notFoundByGateway = 4040

var codeOf = map[int]stopapi.Code{400: stopapi.CodeBadRequest, 403: stopapi.CodeForbidden, 404: stopapi.CodeTaskNotFound, 500: stopapi.CodeInternal, 503: stopapi.CodeUnavailable}

// verifyProof checks r's identity proof as the function and STS would, and
// that it was made with the attempt's own signature (afresh each attempt).
func verifyProof(r *http.Request, body []byte) error {
	if err := sts.CheckProof(r, body, testSTS, testCreds, time.Now()); err != nil {
		return err
	}
	raw, _ := identityproof.Decode(r.Header.Get(identityproof.Header))
	u, _ := url.Parse(raw)
	if at := u.Query().Get("X-Amz-Date"); at != r.Header.Get("X-Amz-Date") {
		return errors.New("proof made at " + at + ", the request signed at " + r.Header.Get("X-Amz-Date"))
	}
	return nil
}

var testSTS = &url.URL{Scheme: "https", Host: "sts.eu-west-1.amazonaws.com"}

func newClient(url string, clk clock.Clock) *Client {
	return &Client{
		URL: url, Region: "eu-west-1", STS: testSTS,
		Credentials: credentials.NewStaticCredentialsProvider(testCreds.AccessKeyID, testCreds.SecretAccessKey, ""),
		Clock:       clk, Backoff: backoff.Policy{Base: time.Second, Max: 8 * time.Second},
		Log: slog.New(slog.DiscardHandler),
	}
}

func TestStop(t *testing.T) {
	req := stopapi.Request{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/c/0123456789abcdef0123456789abcdef", Reason: "TTL 1s expired"}
	tests := []struct {
		name     string
		statuses []int
		wantErr  error
		attempts int
	}{
		{"accepted", []int{202}, nil, 1},
		{"gone counts as done", []int{404}, nil, 1},
		{"API Gateway's own 404 is final, not done", []int{notFoundByGateway}, ErrRejected, 1},
		{"retries 5xx and 429", []int{503, 429, 500, 202}, nil, 4},
		{"forbidden is final", []int{403}, ErrRejected, 1},
		{"bad request is final", []int{503, 400}, ErrRejected, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{statuses: tt.statuses}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			clk := clocktest.NewFake(time.Now())
			err := newClient(srv.URL+"/terminate", clk).Stop(context.Background(), req)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Stop = %v, want %v", err, tt.wantErr)
			}
			if len(rec.bodies) != tt.attempts || rec.badSigs != 0 || len(rec.proofs) != tt.attempts {
				t.Fatalf("attempts = %d (want %d), bad signatures or proofs = %d", len(rec.bodies), tt.attempts, rec.badSigs)
			}

			for _, b := range rec.bodies {
				if b != req {
					t.Fatalf("body = %+v, want %+v", b, req)
				}
			}
			if len(clk.Sleeps()) != tt.attempts-1 {
				t.Fatalf("sleeps = %v", clk.Sleeps())
			}
		})
	}
}

func TestStopGivesUpWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	c := newClient(srv.URL, clock.System{})
	c.Backoff = backoff.Policy{Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}
	if err := c.Stop(ctx, stopapi.Request{TaskARN: "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestStopRetriesNetworkErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	clk := clocktest.NewFake(time.Now())
	c := newClient(url, clk)
	// The fake clock never waits, so stop after a few attempts through the context.
	go func() {
		for len(clk.Sleeps()) < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if err := c.Stop(ctx, stopapi.Request{TaskARN: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := len(clk.Sleeps()); n < 3 {
		t.Fatalf("only %d retries", n)
	}
}

// A redirect is not followed: the signed request would go where the URL
// check never looked, and the stop would look done when it was not.
func TestStopFollowsNoRedirect(t *testing.T) {
	var elsewhere int
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere++
		w.WriteHeader(202)
	}))
	defer target.Close()
	for _, status := range []int{301, 302, 307, 308} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/terminate", status)
		}))
		err := newClient(srv.URL+"/terminate", clocktest.NewFake(time.Now())).Stop(context.Background(), stopapi.Request{TaskARN: "x"})
		srv.Close()
		var rej *RejectedError
		if !errors.As(err, &rej) || rej.Status != status {
			t.Errorf("%d: Stop = %v, want a final refusal", status, err)
		}
	}
	if elsewhere != 0 {
		t.Fatalf("the redirect target got %d requests", elsewhere)
	}
}

func TestExtend(t *testing.T) {
	req := stopapi.ExtendRequest{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/c/0123456789abcdef0123456789abcdef", TTL: "2h30m0s"}
	granted := `{"taskArn":"` + req.TaskARN + `","ttl":"2h0m0s","capped":true}`
	tests := []struct {
		name     string
		answers  []string // "status body"; the last repeats
		want     stopapi.Extended
		wantCode stopapi.Code // of a *RejectedError; "" for success or another error
		wantErr  bool
		attempts int
	}{
		{"granted", []string{"200 " + granted}, stopapi.Extended{TaskARN: req.TaskARN, TTL: "2h0m0s", Capped: true}, "", false, 1},
		{"retries 5xx and 429 with the same body", []string{`503 {"code":"Unavailable","error":"x"}`, `429 {"message":"Too Many Requests"}`, "200 " + granted}, stopapi.Extended{TaskARN: req.TaskARN, TTL: "2h0m0s", Capped: true}, "", false, 3},
		{"the task is gone", []string{`404 {"code":"TaskNotFound","error":"task not found"}`}, stopapi.Extended{}, stopapi.CodeTaskNotFound, true, 1},
		{"forbidden is final", []string{`403 {"code":"Forbidden","error":"x"}`}, stopapi.Extended{}, stopapi.CodeForbidden, true, 1},
		{"a 200 that is not an extension", []string{`200 {"hello":"world"}`}, stopapi.Extended{}, "", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var bodies []stopapi.ExtendRequest
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if _, err := sigv4.Verify(r, body, func(id string) (aws.Credentials, bool) { return testCreds, id == testCreds.AccessKeyID }, time.Now(), 5*time.Minute); err != nil || r.URL.Path != "/extend" {
					t.Errorf("request to %s, signature: %v", r.URL.Path, err)
				}
				var got stopapi.ExtendRequest
				_ = json.Unmarshal(body, &got)
				mu.Lock()
				bodies = append(bodies, got)
				answer := tt.answers[min(len(bodies)-1, len(tt.answers)-1)]
				mu.Unlock()
				status, b, _ := strings.Cut(answer, " ")
				code, _ := strconv.Atoi(status)
				w.WriteHeader(code)
				_, _ = io.WriteString(w, b)
			}))
			defer srv.Close()
			c := newClient(srv.URL+"/terminate", clocktest.NewFake(time.Now()))
			c.ExtendURL = srv.URL + "/extend"
			got, err := c.Extend(context.Background(), req)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("Extend = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
			var rej *RejectedError
			if tt.wantCode != "" && (!errors.As(err, &rej) || rej.Code != tt.wantCode || rej.Op != "extend") {
				t.Fatalf("error %v, want a rejection with code %s", err, tt.wantCode)
			}
			if len(bodies) != tt.attempts {
				t.Fatalf("attempts = %d, want %d", len(bodies), tt.attempts)
			}
			for _, b := range bodies {
				if b != req {
					t.Fatalf("body %+v, want %+v", b, req)
				}
			}
		})
	}
}

func TestExtendGivesUpWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer srv.Close()
	c := newClient(srv.URL+"/terminate", clock.System{})
	c.Backoff = backoff.Policy{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	c.ExtendURL = srv.URL + "/extend"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Extend(ctx, stopapi.ExtendRequest{TaskARN: "x", TTL: "1h"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Extend = %v, want the context's deadline", err)
	}
	c.ExtendURL = ""
	if _, err := c.Extend(context.Background(), stopapi.ExtendRequest{TaskARN: "x", TTL: "1h"}); err == nil {
		t.Fatal("Extend without a URL succeeded")
	}
}
