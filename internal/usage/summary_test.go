package usage

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// sample is a Sample of containers c, all read at read.
func sample(read time.Time, cs ...Container) *Sample {
	var s Sample
	for _, c := range cs {
		c.Read = read
		s.Containers[s.N] = c
		s.N++
	}
	return &s
}

const gib = 1 << 30

func TestSummaryMath(t *testing.T) {
	var s Summary
	s.SetMemoryLimit(2 * gib)
	// t0: ssh has used 2 s of CPU since its start, the sidecar 1 s.
	s.Add(t0, sample(t0,
		Container{ID: 1, CPUNanos: 2e9, MemoryInUse: 100 << 20, RxBytes: 1000, TxBytes: 500},
		Container{ID: 2, CPUNanos: 1e9, MemoryInUse: 10 << 20, RxBytes: 1000, TxBytes: 500}))
	// +60 s: ssh 30 s more (0.5 vCPU), the sidecar 0.6 s more.
	s.Add(t0.Add(time.Minute), sample(t0.Add(time.Minute),
		Container{ID: 1, CPUNanos: 32e9, MemoryInUse: 300 << 20, RxBytes: 9000, TxBytes: 7000},
		Container{ID: 2, CPUNanos: 1.6e9, MemoryInUse: 12 << 20, RxBytes: 9000, TxBytes: 7000}))
	// +120 s: ssh restarted (its count starts again: 3 s), the sidecar's
	// memory peaks while ssh's fell: the task's peak is the sum at one
	// sample, 312 MiB at +60 s, not 300 + 50.
	s.Add(t0.Add(2*time.Minute), sample(t0.Add(2*time.Minute),
		Container{ID: 1, CPUNanos: 3e9, MemoryInUse: 20 << 20, RxBytes: 9500, TxBytes: 7100},
		Container{ID: 2, CPUNanos: 1.9e9, MemoryInUse: 50 << 20, RxBytes: 9500, TxBytes: 7100}))
	u, ok := s.Usage()
	if !ok {
		t.Fatal("no usage after three samples")
	}
	want := stopapi.Usage{
		Samples: 3, From: t0, To: t0.Add(2 * time.Minute),
		MemoryPeakBytes: 312 << 20, MemoryLimitBytes: 2 * gib,
		// 2 + 1 at start, 30 + 0.6, then 3 (restart) + 0.3.
		CPUSeconds:  36.9,
		CPUPeakVCPU: 0.51, // 30.6 s over 60 s
		NetRxBytes:  9500, NetTxBytes: 7100,
	}
	if u != want {
		t.Fatalf("usage\n%+v\nwant\n%+v", u, want)
	}
	if err := stopapi.CheckUsage(u); err != nil {
		t.Fatal(err)
	}
}

// The rate is taken over the read stamps: two reads of the same figures
// (the agent's cache) make no interval, and the increase is carried.
func TestSummaryRateOverReadStamps(t *testing.T) {
	var s Summary
	s.Add(t0, sample(t0, Container{ID: 1, CPUNanos: 10e9, MemoryInUse: 1}))
	// The sampler's clock says 5 s later, the figures are the same read.
	s.Add(t0.Add(5*time.Second), sample(t0, Container{ID: 1, CPUNanos: 10e9, MemoryInUse: 1}))
	// 400 ms after: too short a window; carried.
	s.Add(t0.Add(6*time.Second), sample(t0.Add(400*time.Millisecond), Container{ID: 1, CPUNanos: 10.4e9, MemoryInUse: 1}))
	// 10 s after the first read: 2 s of CPU over 10 s.
	s.Add(t0.Add(15*time.Second), sample(t0.Add(10*time.Second), Container{ID: 1, CPUNanos: 12e9, MemoryInUse: 1}))
	u, _ := s.Usage()
	if u.CPUPeakVCPU != 0.2 || u.CPUSeconds != 12 || u.Samples != 4 {
		t.Fatalf("usage %+v, want a peak of 0.2 vCPU and 12 s", u)
	}
}

// A container seen for the first time after the start adds its whole count
// to the interval it appeared in: it was not running before.
func TestSummaryContainerStartingLater(t *testing.T) {
	var s Summary
	s.Add(t0, sample(t0, Container{ID: 1, CPUNanos: 1e9}))
	s.Add(t0.Add(10*time.Second), sample(t0.Add(10*time.Second), Container{ID: 1, CPUNanos: 1e9}, Container{ID: 2, CPUNanos: 5e9}))
	u, _ := s.Usage()
	if u.CPUSeconds != 6 || u.CPUPeakVCPU != 0.5 {
		t.Fatalf("usage %+v", u)
	}
}

func TestSummaryEmptyAndBounds(t *testing.T) {
	var s Summary
	if _, ok := s.Usage(); ok {
		t.Fatal("usage before any sample")
	}
	// Figures no task has are cut to the contract's bounds, never refused.
	s.Add(t0, sample(t0, Container{ID: 1, CPUNanos: 1 << 62, MemoryInUse: 1 << 62, RxBytes: 1 << 63}))
	s.Add(t0.Add(-time.Hour), sample(t0.Add(time.Second), Container{ID: 1, CPUNanos: 1<<62 + 1<<61}))
	u, _ := s.Usage()
	if err := stopapi.CheckUsage(u); err != nil {
		t.Fatalf("%+v: %v", u, err)
	}
	if u.MemoryPeakBytes != stopapi.MaxUsageBytes || u.CPUPeakVCPU != stopapi.MaxUsageVCPU || !u.To.Equal(u.From) {
		t.Fatalf("usage %+v", u)
	}
}

// The JSON is the contract's shape (docs/api.md).
func TestUsageJSON(t *testing.T) {
	var s Summary
	s.SetMemoryLimit(512 << 20)
	s.Add(t0.Add(123*time.Millisecond), sample(t0, Container{ID: 1, CPUNanos: 1137691504, MemoryInUse: 3416064, RxBytes: 2398415937, TxBytes: 1259037719}))
	u, _ := s.Usage()
	b, _ := json.Marshal(u)
	want := `{"samples":1,"from":"2026-05-04T10:00:00Z","to":"2026-05-04T10:00:00Z","memoryPeakBytes":3416064,"memoryLimitBytes":536870912,` +
		`"cpuSeconds":1.138,"cpuPeakVcpu":0,"netRxBytes":2398415937,"netTxBytes":1259037719}`
	if string(b) != want {
		t.Fatalf("JSON\n%s\nwant\n%s", b, want)
	}
}

// Adding a sample allocates nothing: the summary does not grow, however
// long the task runs.
func TestSummaryAddAllocatesNothing(t *testing.T) {
	var s Summary
	smp := sample(t0, Container{ID: 1, CPUNanos: 1}, Container{ID: 2, CPUNanos: 1})
	now := t0
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Minute)
		smp.Containers[0].CPUNanos += 1e9
		smp.Containers[0].Read = now
		s.Add(now, smp)
		_, _ = s.Usage()
	}); n != 0 {
		t.Fatalf("%v allocations per sample", n)
	}
}

func BenchmarkSummaryAdd(b *testing.B) {
	var s Summary
	var smp Sample
	if err := Decode(readFixture(b, "v4-ec2-awsvpc-task-stats.json"), &smp); err != nil {
		b.Fatal(err)
	}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Minute)
		s.Add(now, &smp)
	}
}

// BenchmarkDecodeAndAdd is a sample's work once the GET has the body: the
// real Fargate answer decoded and added to the summary. Its allocations
// are the decode's, garbage after each sample.
func BenchmarkDecodeAndAdd(b *testing.B) {
	doc := readFixture(b, "v4-fargate-task-stats.json")
	var s Summary
	var smp Sample
	now := t0
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := Decode(doc, &smp); err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Minute)
		s.Add(now, &smp)
	}
}
