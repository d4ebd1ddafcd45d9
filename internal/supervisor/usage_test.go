package supervisor

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

// BASTION_USAGE_INTERVAL: 60s by default, 0 off, and a bad value names
// itself (exit 2).
func TestUsageIntervalConfig(t *testing.T) {
	env := func(v string) map[string]string {
		e := map[string]string{"BASTION_TERMINATE_URL": "https://abc.execute-api.eu-west-1.amazonaws.com/terminate"}
		if v != "" {
			e["BASTION_USAGE_INTERVAL"] = v
		}
		return e
	}
	if c, err := loadConfig(env(""), true); err != nil || c.UsageInterval != time.Minute {
		t.Fatalf("default: %v, %v", c.UsageInterval, err)
	}
	if c, err := loadConfig(env("0"), true); err != nil || c.UsageInterval != 0 {
		t.Fatalf("0: %v, %v", c.UsageInterval, err)
	}
	for _, bad := range []string{"-1m", "500ms", "soon", "60"} {
		_, err := loadConfig(env(bad), true)
		if !errors.Is(err, envconfig.ErrInvalid) || !strings.Contains(err.Error(), "BASTION_USAGE_INTERVAL") {
			t.Errorf("%q: %v, want an error naming BASTION_USAGE_INTERVAL", bad, err)
		}
		var out strings.Builder
		runErr := Run(context.Background(), []string{"watch"}, Env{Environ: env(bad), Stdout: io.Discard, Stderr: io.Discard})
		if code := cli.ExitCode(runErr, &out, "supervisor"); code != 2 || !strings.Contains(out.String(), "BASTION_USAGE_INTERVAL") {
			t.Errorf("%q: exit %d, want 2 naming the variable: %s", bad, code, out.String())
		}
	}
}

// settledClock is a fake clock whose sleeps first wait for the sidecar's
// usage sample in flight, so that what a request carries is exact.
type settledClock struct {
	*clocktest.Fake
	w *watcher
}

func (c *settledClock) Sleep(ctx context.Context, d time.Duration) error {
	c.w.samples.Wait()
	return c.Fake.Sleep(ctx, d)
}

// The sidecar samples every BASTION_USAGE_INTERVAL on its clock, one GET
// each, and its stop request carries the summary.
func TestWatchSendsUsageWithTheStop(t *testing.T) {
	fake := clocktest.NewFake(time.Now())
	started := fake.Now().Add(-time.Second)
	api := newAPIServer(t, 202)
	api.clock = fake
	var statsGETs atomic.Int32
	meta := metadataServer(t, started, 0)
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/task/stats") {
			statsGETs.Add(1)
		}
		r.URL.Host, r.URL.Scheme, r.RequestURI = strings.TrimPrefix(meta.URL, "http://"), "http", ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer counting.Close()
	clk := &settledClock{Fake: fake}
	w := inProcessWatcher(t, counting.URL, api.URL, "3m", clk, io.Discard)
	clk.w = w
	_ = w.run(context.Background()) // nothing stops the task: ends in the fail-safe
	hits := api.Hits()
	if len(hits) != 1 {
		t.Fatalf("%d stop requests", len(hits))
	}
	u := hits[0].req.Usage
	// Samples at the start, +1m and +2m; the deadline is at +2m59s.
	if u == nil || u.Samples != 3 || u.MemoryPeakBytes != 3416064 || u.MemoryLimitBytes != 512<<20 ||
		u.CPUSeconds != 1.138 || u.NetRxBytes != 2398415937 || !u.To.Equal(u.From.Add(2*time.Minute)) {
		t.Fatalf("stop request's usage %+v", u)
	}
	if n := statsGETs.Load(); n != 3 {
		t.Fatalf("%d stats GETs, want one per sample", n)
	}
	if hits[0].sigError != nil {
		t.Fatal(hits[0].sigError)
	}
}

// BASTION_USAGE_INTERVAL=0: no GET, no usage.
func TestWatchUsageOff(t *testing.T) {
	fake := clocktest.NewFake(time.Now())
	started := fake.Now().Add(-time.Second)
	api := newAPIServer(t, 202)
	api.clock = fake
	w := inProcessWatcher(t, metadataServer(t, started, 0).URL, api.URL, "3m", fake, io.Discard)
	w.cfg.UsageInterval = 0
	w.usage = nil
	_ = w.run(context.Background())
	if hits := api.Hits(); len(hits) != 1 || hits[0].req.Usage != nil {
		t.Fatalf("hits %+v", hits)
	}
}

// cancelOnSleep is a fake clock that ends the sidecar's context (a
// SIGTERM) at its first sleep, the sidecar's first sample done.
type cancelOnSleep struct {
	*clocktest.Fake
	w      *watcher
	cancel context.CancelFunc
}

func (c *cancelOnSleep) Sleep(ctx context.Context, d time.Duration) error {
	c.w.samples.Wait()
	c.cancel()
	return c.Fake.Sleep(ctx, d)
}

// At SIGTERM the sidecar reports its usage once (POST /usage), within 2 s
// whatever the API does; a refusal or a hang changes nothing else.
func TestWatchReportsUsageAtSIGTERM(t *testing.T) {
	for _, tt := range []struct {
		name string
		api  func(t *testing.T, a *apiServer) string // the API's URL
	}{
		{"reported", func(_ *testing.T, a *apiServer) string { return a.URL }},
		{"the API hangs", func(t *testing.T, a *apiServer) string {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/usage" {
					select {
					case <-r.Context().Done():
					case <-release:
					}
					return
				}
				a.Config.Handler.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) }) // first: the hung requests end
			return srv.URL
		}},
		{"the API fails", func(t *testing.T, a *apiServer) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/usage" {
					http.Error(w, `{"code":"Unavailable","error":"busy"}`, http.StatusServiceUnavailable)
					return
				}
				a.Config.Handler.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := clocktest.NewFake(time.Now())
			api := newAPIServer(t, 202)
			api.clock = fake
			logs := &testenv.Buffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clk := &cancelOnSleep{Fake: fake, cancel: cancel}
			w := inProcessWatcher(t, metadataServer(t, fake.Now(), 0).URL, tt.api(t, api), "1h", clk, logs)
			clk.w = w
			began := time.Now()
			if err := w.run(ctx); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(began); took > usageExitBudget+time.Second {
				t.Fatalf("the exit took %v", took)
			}
			if len(api.Hits()) != 0 {
				t.Fatal("a stop request at SIGTERM")
			}
			us := api.Usages()
			switch tt.name {
			case "reported":
				if len(us) != 1 || us[0].TaskARN != testTaskARN || us[0].Usage.Samples != 2 || !strings.Contains(logs.String(), "usage reported at exit") {
					t.Fatalf("usages %+v\n%s", us, logs.String())
				}
			default:
				if len(us) != 0 || !strings.Contains(logs.String(), "usage not reported at exit") {
					t.Fatalf("usages %+v\n%s", us, logs.String())
				}
			}
		})
	}
}

// statsCounter serves meta, counting its stats GETs.
func statsCounter(t *testing.T, meta *httptest.Server, n *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/task/stats") {
			n.Add(1)
		}
		meta.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The health check samples nothing while healthy, and once when it stops
// the task: its stop request carries that one sample.
func TestCheckSendsItsSampleWhenItStops(t *testing.T) {
	for _, tt := range []struct {
		name     string
		started  time.Duration // ago
		ttl      string
		interval string
		gets     int32
		usage    bool
	}{
		{"healthy: no sample", time.Minute, "1h", "", 0, false},
		{"stopping: one sample, sent", 11 * time.Second, "10s", "", 1, true},
		{"stopping, usage off", 11 * time.Second, "10s", "0", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var gets atomic.Int32
			clk := clocktest.NewFake(time.Now())
			api := newAPIServer(t, 202)
			api.clock = clk
			env := baseEnv(t, statsCounter(t, metadataServer(t, clk.Now().Add(-tt.started), 0), &gets), api, tt.ttl)
			if tt.interval != "" {
				env["BASTION_USAGE_INTERVAL"] = tt.interval
			}
			_, _, _ = checkOnce(t, env, clk)
			if n := gets.Load(); n != tt.gets {
				t.Fatalf("%d stats GETs, want %d", n, tt.gets)
			}
			hits := api.Hits()
			if !tt.usage {
				for _, h := range hits {
					if h.req.Usage != nil {
						t.Fatalf("usage sent: %+v", h.req.Usage)
					}
				}
				return
			}
			if len(hits) != 1 || hits[0].sigError != nil {
				t.Fatalf("hits %+v", hits)
			}
			u := hits[0].req.Usage
			if u == nil || u.Samples != 1 || u.MemoryPeakBytes != 3416064 || u.MemoryLimitBytes != 512<<20 || u.CPUSeconds != 1.138 || u.CPUPeakVCPU != 0 {
				t.Fatalf("usage %+v", u)
			}
		})
	}
}
