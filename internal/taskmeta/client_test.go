package taskmeta

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

func serveFile(t *testing.T, name string) http.HandlerFunc {
	b, err := os.ReadFile("../localaws/taskmetadata/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(b) }
}

func TestFetch(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		srv := httptest.NewServer(serveFile(t, "v4-fargate-task.json"))
		defer srv.Close()
		task, err := (&Client{URL: srv.URL}).Fetch(context.Background())
		if err != nil || task.Family != "curltest" {
			t.Fatalf("Fetch = %+v, %v", task, err)
		}
	})
	t.Run("non-2xx", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", 500) }))
		defer srv.Close()
		if _, err := (&Client{URL: srv.URL}).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "status 500") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"TaskARN":"`+strings.Repeat("a", MaxBody)+`"}`)
		}))
		defer srv.Close()
		if _, err := (&Client{URL: srv.URL}).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("network error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		if _, err := (&Client{URL: srv.URL}).Fetch(context.Background()); err == nil {
			t.Fatal("no error from a closed server")
		}
	})
	t.Run("slow server times out", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		defer srv.Close()
		defer close(release)
		c := &Client{URL: srv.URL, HTTP: &http.Client{Timeout: 50 * time.Millisecond}}
		if _, err := c.Fetch(context.Background()); err == nil {
			t.Fatal("no timeout")
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		srv := httptest.NewServer(serveFile(t, "v4-fargate-task.json"))
		defer srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := (&Client{URL: srv.URL}).Fetch(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestWaiterRetriesUntilStarted(t *testing.T) {
	var calls atomic.Int32
	good := serveFile(t, "v2-task-seed.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			http.Error(w, "agent not ready", http.StatusInternalServerError)
		case 2:
			_, _ = io.WriteString(w, "garbage")
		case 3:
			_, _ = io.WriteString(w, `{"TaskARN":"arn:aws:ecs:ap-southeast-2:1234567890:task/7c1aa905","PullStartedAt":"2018-11-23T00:17:22Z","Containers":[{"Name":"bastion","Type":"NORMAL","KnownStatus":"PENDING"}]}`)
		default:
			good(w, r)
		}
	}))
	defer srv.Close()
	clk := clocktest.NewFake(time.Now())
	w := &Waiter{Client: &Client{URL: srv.URL}, Clock: clk, Backoff: backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}, Log: slog.New(slog.DiscardHandler)}
	s, err := w.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := mustTime(t, "2018-11-23T00:17:35.32407093Z"); !s.Time.Equal(want) {
		t.Fatalf("start = %v, want %v (never PullStartedAt)", s.Time, want)
	}
	if calls.Load() != 4 || len(clk.Sleeps()) != 3 {
		t.Fatalf("calls = %d, sleeps = %v", calls.Load(), clk.Sleeps())
	}
}

func TestWaiterGivesUpWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	w := &Waiter{Client: &Client{URL: srv.URL}, Clock: clock.System{}, Backoff: backoff.Policy{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}, Log: slog.New(slog.DiscardHandler)}
	if _, err := w.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestFetchDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		serveFile(t, "v4-fargate-task.json")(w, r)
	}))
	defer target.Close()
	redirector := httptest.NewServer(http.RedirectHandler(target.URL+"/task", http.StatusFound))
	defer redirector.Close()
	for name, hc := range map[string]*http.Client{
		"default client":       nil,
		"caller's client":      {Timeout: time.Second},
		"caller's follows all": {CheckRedirect: func(*http.Request, []*http.Request) error { return nil }},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := (&Client{URL: redirector.URL, HTTP: hc}).Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), "status 302") {
				t.Fatalf("err = %v, want status 302", err)
			}
			if n := followed.Load(); n != 0 {
				t.Fatalf("the redirect was followed (%d requests)", n)
			}
		})
	}
}

func TestHTTPClientKeepsItsTimeout(t *testing.T) {
	if got := (&Client{}).httpClient(); got.Timeout != DefaultTimeout || got.CheckRedirect == nil {
		t.Fatalf("default client: timeout %v, CheckRedirect set %v", got.Timeout, got.CheckRedirect != nil)
	}
	given := &http.Client{Timeout: 50 * time.Millisecond}
	if got := (&Client{HTTP: given}).httpClient(); got.Timeout != 50*time.Millisecond || got.CheckRedirect == nil || given.CheckRedirect != nil {
		t.Fatalf("caller's client: timeout %v, CheckRedirect set %v; caller's changed: %v", got.Timeout, got.CheckRedirect != nil, given.CheckRedirect != nil)
	}
	if got := (&Client{HTTP: &http.Client{}}).httpClient(); got.Timeout != DefaultTimeout {
		t.Fatalf("a client without a timeout got %v, want %v", got.Timeout, DefaultTimeout)
	}
	// Fetch uses it: TestFetchDoesNotFollowRedirects shows the redirect
	// rule applied to every client, and "slow server times out" the timeout.
}

func TestWaiterNoSuchContainerIsAConfigurationError(t *testing.T) {
	var calls atomic.Int32
	good := serveFile(t, "v4-fargate-task.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); good(w, r) }))
	defer srv.Close()
	clk := clocktest.NewFake(time.Now())
	w := &Waiter{Client: &Client{URL: srv.URL}, Container: "ssh", Clock: clk, Backoff: backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := w.Wait(ctx)
	var ve *envconfig.VarError
	if !errors.As(err, &ve) || !errors.Is(err, envconfig.ErrInvalid) {
		t.Fatalf("err = %v, want a *envconfig.VarError", err)
	}
	if ve.Name != "BASTION_CONTAINER" || ve.Value != "ssh" || ve.Reason != "the task has no such container; it has: curl" {
		t.Fatalf("err = %+v", ve)
	}
	if calls.Load() != 1 || len(clk.Sleeps()) != 0 {
		t.Fatalf("%d requests, sleeps %v: a configuration error must not be retried", calls.Load(), clk.Sleeps())
	}
}

func TestWaiterRetriesANamedContainerNotStarted(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			_, _ = io.WriteString(w, `{"TaskARN":"a","Containers":[{"Name":"ssh","Type":"NORMAL","KnownStatus":"PENDING"}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"TaskARN":"a","Containers":[{"Name":"ssh","Type":"NORMAL","StartedAt":"2026-01-01T00:00:05Z"}]}`)
	}))
	defer srv.Close()
	clk := clocktest.NewFake(mustTime(t, "2026-01-01T00:00:06Z"))
	w := &Waiter{Client: &Client{URL: srv.URL}, Container: "ssh", Clock: clk, Backoff: backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}, Log: slog.New(slog.DiscardHandler)}
	s, err := w.Wait(context.Background())
	if err != nil || !s.Time.Equal(mustTime(t, "2026-01-01T00:00:05Z")) || calls.Load() != 3 {
		t.Fatalf("Wait = %+v, %v after %d requests", s, err, calls.Load())
	}
}

func TestWaiterRetriesAStartInTheFuture(t *testing.T) {
	// The endpoint says the container started at 00:00:10; this clock reads
	// 00:00:05. The start is believed once the clock is within the bound.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"TaskARN":"a","Containers":[{"Name":"ssh","Type":"NORMAL","StartedAt":"2026-01-01T00:00:10Z"}]}`)
	}))
	defer srv.Close()
	clk := clocktest.NewFake(mustTime(t, "2026-01-01T00:00:05Z"))
	w := &Waiter{Client: &Client{URL: srv.URL}, Clock: clk, Backoff: backoff.Policy{Base: time.Second, Max: time.Second}, Log: slog.New(slog.DiscardHandler)}
	s, err := w.Wait(context.Background())
	if err != nil || !s.Time.Equal(mustTime(t, "2026-01-01T00:00:10Z")) {
		t.Fatalf("Wait = %+v, %v", s, err)
	}
	if now := clk.Now(); now.Add(ClockErrorBound).Before(s.Time) || len(clk.Sleeps()) < 4 {
		t.Fatalf("believed at %v after sleeps %v", now, clk.Sleeps())
	}
}

// TestWaiterWaitsAtMostASecondAndNeverPastLatest: 2 garbage and 3
// not-started answers, then "not started" until the endpoint becomes usable
// just before or after Latest (12 s). No wait exceeds MaxRetryDelay or
// crosses Latest: the start is read by Latest if usable by then, else within
// MaxRetryDelay of becoming usable.
func TestWaiterWaitsAtMostASecondAndNeverPastLatest(t *testing.T) {
	t0 := mustTime(t, "2026-01-01T00:00:00Z")
	for _, tc := range []struct {
		name            string
		usableFrom      time.Duration // since t0
		latest          time.Duration // since t0; 0: none
		readBy          time.Duration // since t0
		mustAskAtLatest bool
	}{
		{"usable just before Latest", 11900 * time.Millisecond, 12 * time.Second, 12 * time.Second, false},
		{"usable after Latest", 12200 * time.Millisecond, 12 * time.Second, 13200 * time.Millisecond, true},
		{"no Latest", 12200 * time.Millisecond, 0, 13200 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.NewFake(t0)
			var mu sync.Mutex
			var asked []time.Duration
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				at := clk.Now().Sub(t0)
				mu.Lock()
				asked = append(asked, at)
				mu.Unlock()
				switch n := calls.Add(1); {
				case n <= 2:
					_, _ = io.WriteString(w, "garbage")
				case n <= 5 || at < tc.usableFrom:
					_, _ = io.WriteString(w, `{"TaskARN":"a","Containers":[{"Name":"ssh","Type":"NORMAL","KnownStatus":"PENDING"}]}`)
				default:
					_, _ = io.WriteString(w, `{"TaskARN":"a","Containers":[{"Name":"ssh","Type":"NORMAL","StartedAt":"2026-01-01T00:00:00Z"}]}`)
				}
			}))
			defer srv.Close()
			w := &Waiter{Client: &Client{URL: srv.URL}, Clock: clk,
				// The sidecar's old policy: without the cap it waits up to 10 s.
				Backoff: backoff.Policy{Base: 250 * time.Millisecond, Max: 10 * time.Second},
				Log:     slog.New(slog.DiscardHandler)}
			latest := time.Time{}
			if tc.latest > 0 {
				latest = t0.Add(tc.latest)
				w.Latest = latest
			}
			if _, err := w.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, d := range clk.Sleeps() {
				if d > MaxRetryDelay {
					t.Fatalf("slept %v between attempts (sleeps %v), want at most %v", d, clk.Sleeps(), MaxRetryDelay)
				}
			}
			if read := clk.Now().Sub(t0); read > tc.readBy {
				t.Fatalf("start read at %v, want by %v (requests at %v)", read, tc.readBy, asked)
			}
			atLatest := false
			for i, a := range asked {
				if tc.latest > 0 && a == tc.latest {
					atLatest = true
				}
				if i > 0 && tc.latest > 0 && asked[i-1] < tc.latest && a > tc.latest {
					t.Fatalf("a wait crossed Latest: requests at %v", asked)
				}
			}
			if tc.mustAskAtLatest && !atLatest {
				t.Fatalf("no request at Latest (requests at %v)", asked)
			}
		})
	}
}
