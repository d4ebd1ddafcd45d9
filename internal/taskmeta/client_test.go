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
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
)

func serveFile(t *testing.T, name string) http.HandlerFunc {
	b, err := os.ReadFile("../../testdata/metadata/" + name)
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
	clk := clock.NewFake(time.Now())
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
