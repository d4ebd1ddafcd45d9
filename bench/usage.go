package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
	"github.com/bastion-ttl/bastion-ttl/internal/usage"
)

// waitingBar is the waiting sidecar's CPU bar: about 0, at most 10 ms in
// 30 s of waiting.
const waitingBar = 10 * time.Millisecond

// statsServer is the local task metadata server (the task document and
// the real-shaped /task/stats) that counts the stats reads it serves.
type statsServer struct {
	*httptest.Server
	reads atomic.Int64
}

func newStatsServer(startedAt time.Time) *statsServer {
	doc := taskmetadata.Document(taskmetadata.SampleTaskARN, "arn:aws:ecs:us-west-2:111122223333:cluster/default", startedAt)
	h := taskmetadata.Handler(func() []byte { return doc })
	s := &statsServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/task/stats") {
			s.reads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	return s
}

// imageEnv is what the supervisor image (Dockerfile) sets: the waiting
// sidecars run as the image runs them, unless told otherwise.
const imageEnv = "GOMAXPROCS=1"

// waitingSidecar is one `supervisor watch` with no idle timeout, waiting for
// a deadline an hour away, its usage sampled every interval ("0": off).
type waitingSidecar struct {
	interval string
	cmd      *exec.Cmd
	meta     *statsServer
	api      *httptest.Server
	tmp      string
}

func startWaiting(supervisor, interval string, bare bool) (*waitingSidecar, error) {
	s := &waitingSidecar{interval: interval, meta: newStatsServer(time.Now()), api: grantingAPI()}
	control, err := testenv.FreePort()
	if err != nil {
		s.stop()
		return nil, err
	}
	if s.tmp, err = os.MkdirTemp("", "bench"); err != nil {
		s.stop()
		return nil, err
	}
	s.cmd = exec.Command(supervisor, "watch")
	s.cmd.Env = append(supervisorEnv(s.meta.URL, s.api.URL, "1h", s.tmp),
		"BASTION_CONTROL_ADDR="+control, "BASTION_USAGE_INTERVAL="+interval)
	if !bare {
		s.cmd.Env = append(s.cmd.Env, imageEnv)
	}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *waitingSidecar) stop() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.cmd.Wait()
	}
	s.meta.Close()
	s.api.Close()
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}

// point is a sidecar's counters at one moment.
type point struct {
	cpu      time.Duration // all its threads
	switches int
	reads    int64 // stats reads served to it
	rssKB    int64
	hwmKB    int64 // the peak resident memory so far
	anonKB   int64 // of rssKB, what is not the binary's pages: heap, stacks
}

func (s *waitingSidecar) read() (point, error) {
	pid := s.cmd.Process.Pid
	ns, err := schedstatNS(pid)
	if err != nil {
		return point{}, err
	}
	_, switches, err := cpuAndSwitches(pid)
	if err != nil {
		return point{}, err
	}
	rss, err := procStatusKB(pid, "VmRSS")
	if err != nil {
		return point{}, err
	}
	hwm, err := procStatusKB(pid, "VmHWM")
	if err != nil {
		return point{}, err
	}
	anon, err := procStatusKB(pid, "RssAnon")
	if err != nil {
		return point{}, err
	}
	return point{cpu: time.Duration(ns), switches: switches, reads: s.meta.reads.Load(), rssKB: rss, hwmKB: hwm, anonKB: anon}, nil
}

// benchWaiting measures four waiting sidecars side by side: usage
// sampling off, at the default 60 s, and every second (which magnifies a
// sample's cost), as the image runs them; and at 60 s without the image's
// environment. Each is read 3 s after its start (past start-up), at 30 s
// after that (the bars of the waiting sidecar, and 30 samples at 1 s), and
// at the end of window (10 times that at 1 s with a 5m window).
func benchWaiting(supervisor string, short, window time.Duration) ([]row, error) {
	intervals := []string{"0", "60s", "1s", "60s"}
	var cars []*waitingSidecar
	defer func() {
		for _, c := range cars {
			c.stop()
		}
	}()
	for i, iv := range intervals {
		c, err := startWaiting(supervisor, iv, i == 3)
		if err != nil {
			return nil, err
		}
		cars = append(cars, c)
	}
	began := time.Now()
	readAll := func(at time.Duration) ([]point, error) {
		time.Sleep(time.Until(began.Add(at)))
		var ps []point
		for _, c := range cars {
			p, err := c.read()
			if err != nil {
				return nil, fmt.Errorf("the sidecar with BASTION_USAGE_INTERVAL=%s: %w", c.interval, err)
			}
			ps = append(ps, p)
		}
		return ps, nil
	}
	const startUp = 3 * time.Second // metadata read, TTL registered, timer armed
	p0, err := readAll(startUp)
	if err != nil {
		return nil, err
	}
	p1, err := readAll(startUp + short)
	if err != nil {
		return nil, err
	}
	p2, err := readAll(startUp + window)
	if err != nil {
		return nil, err
	}
	off, min1, sec1, bare := 0, 1, 2, 3
	if n := p2[off].reads; n != 0 {
		return nil, fmt.Errorf("the sidecar with BASTION_USAGE_INTERVAL=0 read the stats %d times", n)
	}
	perHour := func(i int) time.Duration {
		return time.Duration(float64(p2[i].cpu-p0[i].cpu) * float64(time.Hour) / float64(window))
	}
	// A sample's cost: the CPU beyond the sidecar without sampling's, in
	// the same window, over the samples taken.
	perSample := func(i int) (time.Duration, int64) {
		n := p2[i].reads - p0[i].reads
		if n == 0 {
			return 0, 0
		}
		extra := (p2[i].cpu - p0[i].cpu) - (p2[off].cpu - p0[off].cpu)
		return extra / time.Duration(n), n
	}
	offCPU := p1[off].cpu - p0[off].cpu
	offSwitches := p1[off].switches - p0[off].switches
	// The bar is on the peak; the figures after short and after window
	// show any growth, and the anonymous part is what sampling can grow
	// (the rest is the binary's pages).
	rssRow := func(i int) (string, string) {
		return fmt.Sprintf("%s, %s (peak %s; anonymous %s, %s)", kib(p1[i].rssKB), kib(p2[i].rssKB), kib(p2[i].hwmKB), kib(p1[i].anonKB), kib(p2[i].anonKB)),
			verdict(p2[i].hwmKB <= 8*1024)
	}
	// At 1 s the heap fills to the collector's first target (4 MiB) in
	// minutes: a magnifier of the sample's cost, not held to the bar.
	secRSS, _ := rssRow(sec1)
	offRSS, offRSSMet := rssRow(off)
	minRSS, minRSSMet := rssRow(min1)
	bareRSS, bareRSSMet := rssRow(bare)
	minSample, minN := perSample(min1)
	secSample, secN := perSample(sec1)
	minBar := time.Duration(float64(waitingBar) * float64(time.Hour) / float64(30*time.Second))
	return []row{
		{fmt.Sprintf("`supervisor watch` waiting as the image runs it (`%s`), usage off (`BASTION_USAGE_INTERVAL=0`): resident memory after %s, after %s", imageEnv, short, window), offRSS, "<= 8 MiB", offRSSMet},
		{fmt.Sprintf("the same: CPU time over %s", short), fmt.Sprintf("%.1f ms", ms(offCPU)), "about 0", verdict(offCPU <= waitingBar)},
		{fmt.Sprintf("the same: context switches over %s", short), fmt.Sprint(offSwitches), "no wake-ups", verdict(offSwitches <= 2)},
		{fmt.Sprintf("the same: CPU per hour of waiting (over %s: the Go runtime's own wakes)", window), fmt.Sprintf("%.0f ms", ms(perHour(off))), "", ""},
		{fmt.Sprintf("`supervisor watch` waiting, usage every 60 s (the default): resident memory after %s, after %s", short, window), minRSS, "<= 8 MiB", minRSSMet},
		{fmt.Sprintf("the same: CPU per hour of waiting (over %s, %d samples)", window, minN), fmt.Sprintf("%.0f ms", ms(perHour(min1))),
			fmt.Sprintf("<= %.0f ms (%s per %s)", ms(minBar), waitingBar, 30*time.Second), verdict(perHour(min1) <= minBar)},
		{"the same: CPU per sample, beyond the sidecar with usage off", fmt.Sprintf("%.2f ms", ms(minSample)), "", ""},
		{fmt.Sprintf("`supervisor watch` waiting, usage every 1 s: resident memory after %d samples, after %d", p1[sec1].reads, p2[sec1].reads), secRSS, "", ""},
		{fmt.Sprintf("the same: CPU per hour of waiting (over %s, %d samples)", window, secN), fmt.Sprintf("%.0f ms", ms(perHour(sec1))), "", ""},
		{"the same: CPU per sample, beyond the sidecar with usage off", fmt.Sprintf("%.2f ms", ms(secSample)), "", ""},
		{fmt.Sprintf("`supervisor watch` waiting outside the image (no `%s`), usage every 60 s: resident memory after %s, after %s", imageEnv, short, window), bareRSS, "<= 8 MiB", bareRSSMet},
	}, nil
}

func kib(kb int64) string { return fmt.Sprintf("%.2f MiB", float64(kb)/1024) }

func kibB(b uint64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

// benchUsageInProcess times the sidecar's usage sample in process, the
// real usage.Sampler on a fake clock (a minute a sample) against the local
// task metadata server, and checks that samples retain nothing: the heap
// in use and the goroutines after samples, then after 10 times as many.
// It also times the sample's work without the GET (decode and summary).
func benchUsageInProcess(samples int) ([]row, error) {
	meta := newStatsServer(time.Now())
	defer meta.Close()
	clk := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := &usage.Sampler{StatsURL: meta.URL + "/v4/x/task/stats", TaskURL: meta.URL + "/v4/x/task", Clock: clk, Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	take := func(n int, times []time.Duration) error {
		for i := range n {
			began := time.Now()
			if err := s.SampleOnce(ctx); err != nil {
				return err
			}
			if times != nil {
				times[i] = time.Since(began)
			}
			clk.Advance(time.Minute)
		}
		return nil
	}
	var m runtime.MemStats
	settled := func() (heap uint64, goroutines int) {
		// The server's side of a closed connection ends a moment later:
		// count once the number holds for 50 ms.
		goroutines = runtime.NumGoroutine()
		for held, tries := 0, 0; held < 5 && tries < 300; held, tries = held+1, tries+1 {
			time.Sleep(10 * time.Millisecond)
			if n := runtime.NumGoroutine(); n != goroutines {
				goroutines, held = n, -1
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc, goroutines
	}
	// As many samples to warm up (the runtime's own structures grow at
	// first), then samples, then as many again: the heap after each.
	times := make([]time.Duration, samples)
	warm := samples
	if err := take(warm, nil); err != nil {
		return nil, err
	}
	heap0, g0 := settled()
	mallocs0, bytes0 := m.Mallocs, m.TotalAlloc
	if err := take(samples, times); err != nil {
		return nil, err
	}
	heap1, g1 := settled()
	allocs := float64(m.Mallocs-mallocs0) / float64(samples)
	allocBytes := float64(m.TotalAlloc-bytes0) / float64(samples)
	if err := take(samples, nil); err != nil {
		return nil, err
	}
	heap2, g2 := settled()
	total := warm + 2*samples
	if u := s.Usage(); u == nil || u.Samples != int64(total) {
		return nil, fmt.Errorf("the sampler's summary: %+v, want %d samples", u, total)
	}
	slices.Sort(times)
	grown := int64(heap2) - int64(heap1)

	// The same work without the GET: decode the document, add it up.
	var smp usage.Sample
	var sum usage.Summary
	pure := make([]time.Duration, samples)
	runtime.ReadMemStats(&m)
	mallocs0, bytes0 = m.Mallocs, m.TotalAlloc
	now := clk.Now()
	for i := range samples {
		began := time.Now()
		if err := usage.Decode(taskmetadata.Stats, &smp); err != nil {
			return nil, err
		}
		sum.Add(now, &smp)
		pure[i] = time.Since(began)
		now = now.Add(time.Minute)
	}
	runtime.ReadMemStats(&m)
	pureAllocs := float64(m.Mallocs-mallocs0) / float64(samples)
	pureBytes := float64(m.TotalAlloc-bytes0) / float64(samples)
	slices.Sort(pure)

	return []row{
		{fmt.Sprintf("one usage sample, in process (GET of the real-shaped /task/stats on loopback, decode, summary): median (p99) of %d", samples),
			fmt.Sprintf("%.0f µs (%.0f µs)", us(times[samples/2]), us(times[samples*99/100])), "", ""},
		{"the same: allocated per sample, all garbage", fmt.Sprintf("%.0f allocations, %.1f KiB", allocs, allocBytes/1024), "", ""},
		{fmt.Sprintf("... of which decode and summary (no GET): median (p99) of %d; allocated per sample", samples),
			fmt.Sprintf("%.0f µs (%.0f µs); %.0f allocations, %.1f KiB", us(pure[samples/2]), us(pure[samples*99/100]), pureAllocs, pureBytes/1024), "", ""},
		{fmt.Sprintf("heap in use after %d, %d and %d samples (a minute each on a fake clock: %.0f days in all); goroutines", warm, warm+samples, total, (time.Duration(total)*time.Minute).Hours()/24),
			fmt.Sprintf("%s, %s, %s (last %+.1f KiB); %d, %d, %d", kibB(heap0), kibB(heap1), kibB(heap2), float64(grown)/1024, g0, g1, g2), "no growth", verdict(grown <= 16<<10 && g2 <= g1)},
	}, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// usageRows is every usage-sampling row: the waiting sidecars, then the
// sample in process.
func usageRows(supervisor string, short, window time.Duration) ([]row, error) {
	rows, err := benchWaiting(supervisor, short, window)
	if err != nil {
		return nil, err
	}
	in, err := benchUsageInProcess(10_000)
	if err != nil {
		return nil, err
	}
	return append(rows, in...), nil
}
