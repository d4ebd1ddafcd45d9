package usage

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// statsServer serves the Fargate example's task document at /task and, at
// /task/stats, the Fargate example's stats, its CPU count and read stamp
// moved on by 30 s of CPU (0.5 vCPU) and a minute per request. Once limit
// requests are served it calls stop at the next.
type statsServer struct {
	stats, tasks atomic.Int32
	limit        int32
	stop         func()
}

func (s *statsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v4/abc/task":
		s.tasks.Add(1)
		b, _ := os.ReadFile("testdata/v4-fargate-task.json")
		_, _ = w.Write(b)
	case "/v4/abc/task/stats":
		n := s.stats.Add(1) - 1
		if n >= s.limit && s.stop != nil {
			s.stop()
			return
		}
		b, _ := os.ReadFile("testdata/v4-fargate-task-stats.json")
		doc := strings.NewReplacer(
			`"total_usage": 1137691504`, fmt.Sprintf(`"total_usage": %d`, 1137691504+int64(n)*30e9),
			`"read": "2020-10-08T21:24:44.938937019Z"`, fmt.Sprintf(`"read": %q`, time.Date(2020, 10, 8, 21, 24, 44, 0, time.UTC).Add(time.Duration(n)*time.Minute).Format(time.RFC3339Nano)),
		).Replace(string(b))
		_, _ = w.Write([]byte(doc))
	default:
		http.NotFound(w, r)
	}
}

func newSampler(url string, clk *clocktest.Fake, log *bytes.Buffer) *Sampler {
	return &Sampler{StatsURL: url + "/v4/abc/task/stats", TaskURL: url + "/v4/abc/task", Clock: clk, Log: slog.New(slog.NewJSONHandler(log, nil))}
}

// Run samples at once and then every interval, one GET each (the task
// document once, for its memory size), on the clock it is given.
func TestSamplerOnTheClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &statsServer{limit: 4, stop: cancel}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	clk := clocktest.NewFake(t0)
	var log bytes.Buffer
	s := newSampler(ts.URL, clk, &log)
	if s.Usage() != nil {
		t.Fatal("a usage before any sample")
	}
	s.Run(ctx, time.Minute)
	if got := srv.stats.Load(); got != 5 {
		t.Fatalf("%d stats GETs, want 4 and the one the end cut", got)
	}
	if got := srv.tasks.Load(); got != 1 {
		t.Fatalf("%d task GETs, want 1", got)
	}
	for _, d := range clk.Sleeps() {
		if d != time.Minute {
			t.Fatalf("slept %v, want the interval: %v", d, clk.Sleeps())
		}
	}
	u := s.Usage()
	if u == nil || u.Samples != 4 || !u.From.Equal(t0) || !u.To.Equal(t0.Add(3*time.Minute)) ||
		u.CPUPeakVCPU != 0.5 || u.CPUSeconds != 91.138 || u.MemoryLimitBytes != 512<<20 ||
		u.MemoryPeakBytes != 3416064 || u.NetRxBytes != 2398415937 {
		t.Fatalf("usage %+v", u)
	}
	if log.Len() != 0 {
		t.Fatalf("log: %s", log.String())
	}
}

// Samples share one connection: a new one each sample was garbage that grew
// the waiting sidecar's memory. One the endpoint closes is made again.
func TestSamplerReusesItsConnection(t *testing.T) {
	srv := &statsServer{limit: 1 << 30}
	ts := httptest.NewUnstartedServer(srv)
	var conns atomic.Int32
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	defer ts.Close()
	var log bytes.Buffer
	s := newSampler(ts.URL, clocktest.NewFake(t0), &log)
	ctx := context.Background()
	for i := range 5 {
		if err := s.SampleOnce(ctx); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("6 GETs (5 of the stats, 1 of the task) over %d connections, want 1", n)
	}
	ts.CloseClientConnections() // the endpoint closes the idle connection
	if err := s.SampleOnce(ctx); err != nil {
		t.Fatalf("the sample after the endpoint closed the connection: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after the endpoint closed one, want 2", n)
	}
	if u := s.Usage(); u == nil || u.Samples != 6 || log.Len() != 0 {
		t.Fatalf("usage %+v, log %s", u, log.String())
	}
}

// A read that fails is logged and skipped; the summary keeps what it had.
func TestSamplerFailures(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"non-2xx", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", 500) }, "status 500"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, "decode stats"},
		{"too large", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(bytes.Repeat([]byte(" "), MaxBody+1)) }, "larger than"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.170.2/", http.StatusFound)
		}, "status 302"},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(tt.handler)
			defer ts.Close()
			var log bytes.Buffer
			s := newSampler(ts.URL, clocktest.NewFake(t0), &log)
			if tt.name == "slow" {
				s.HTTP = &http.Client{Timeout: 200 * time.Millisecond}
			}
			if err := s.SampleOnce(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("SampleOnce = %v, want %q", err, tt.want)
			}
			if s.Usage() != nil || !strings.Contains(log.String(), "cannot read the task's stats") {
				t.Fatalf("usage %+v log %s", s.Usage(), log.String())
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		var log bytes.Buffer
		s := newSampler("http://127.0.0.1:1", clocktest.NewFake(t0), &log)
		if err := s.SampleOnce(context.Background()); err == nil {
			t.Fatal("no error")
		}
	})
}

// Many failures in a row are logged at WARN only at first, then one in sixty.
func TestSamplerLogsFailuresSparingly(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	var log bytes.Buffer
	s := newSampler(ts.URL, clocktest.NewFake(t0), &log)
	for range 120 {
		_ = s.SampleOnce(context.Background())
	}
	if n := strings.Count(log.String(), `"level":"WARN"`); n != 4 {
		t.Fatalf("%d WARN lines for 120 failures, want 4 (1st to 3rd, 61st)", n)
	}
}

// BenchmarkSample is one sample's whole cost against a local endpoint: the
// GET, the decode and the summary.
func BenchmarkSample(b *testing.B) {
	body, _ := os.ReadFile("testdata/v4-fargate-task-stats.json")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	defer ts.Close()
	s := &Sampler{StatsURL: ts.URL, Clock: clocktest.NewFake(t0), Log: slog.New(slog.DiscardHandler)}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.SampleOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
