package usage

import (
	"math"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// MinRateWindow is the shortest time between two samples' read stamps
// over which a vCPU rate is taken: the endpoint serves figures its agent
// read a few seconds before, so two reads close together may show the
// same stamp. The increase is carried to the next window, never lost.
const MinRateWindow = time.Second

// Summary is the running summary of a task's samples. Its size is fixed:
// adding a sample allocates nothing. The zero value is empty.
type Summary struct {
	samples  int64
	from, to time.Time // the sampler's clock at the first and the last sample
	memPeak  uint64
	memLimit uint64
	cpuNanos uint64 // the containers' CPU time, from their start
	peakVCPU float64
	rx, tx   uint64

	last    time.Time // the read stamp the pending increase counts from
	pending uint64    // CPU ns since last
	seen    [MaxContainers]counter
	nSeen   int
}

// counter is the last CPU count seen of one container.
type counter struct {
	id  uint64
	cpu uint64
}

// SetMemoryLimit sets the task's memory size in bytes (its Limits).
func (s *Summary) SetMemoryLimit(bytes uint64) { s.memLimit = bytes }

// MemoryLimitKnown reports whether SetMemoryLimit has set a size.
func (s *Summary) MemoryLimitKnown() bool { return s.memLimit > 0 }

// Add counts smp, taken at now by the sampler's clock.
func (s *Summary) Add(now time.Time, smp *Sample) {
	var mem, rx, tx, grew uint64
	var read time.Time
	for _, c := range smp.Running() {
		mem += c.MemoryInUse
		rx, tx = max(rx, c.RxBytes), max(tx, c.TxBytes)
		if c.Read.After(read) {
			read = c.Read
		}
		grew += s.count(c)
	}
	if read.IsZero() {
		read = now
	}
	s.cpuNanos += grew
	if s.samples == 0 {
		// The first increase is each container's whole count, which
		// spans its life, not an interval.
		s.from, s.last = now, read
	} else {
		s.pending += grew
		if dt := read.Sub(s.last); dt >= MinRateWindow {
			s.peakVCPU = max(s.peakVCPU, float64(s.pending)/float64(dt.Nanoseconds()))
			s.pending, s.last = 0, read
		}
	}
	s.samples++
	s.to = now
	s.memPeak = max(s.memPeak, mem)
	// The counters only grow; a lower figure (a namespace made again) never
	// takes back what was counted.
	s.rx, s.tx = max(s.rx, rx), max(s.tx, tx)
}

// count records c's CPU count and returns its increase since the last
// sample that showed c: all of it when c is new or restarted (a count
// lower than before).
func (s *Summary) count(c Container) uint64 {
	for i := range s.seen[:s.nSeen] {
		k := &s.seen[i]
		if k.id != c.ID {
			continue
		}
		grew := c.CPUNanos
		if c.CPUNanos >= k.cpu {
			grew = c.CPUNanos - k.cpu
		}
		k.cpu = c.CPUNanos
		return grew
	}
	if s.nSeen == MaxContainers {
		return 0
	}
	s.seen[s.nSeen] = counter{id: c.ID, cpu: c.CPUNanos}
	s.nSeen++
	return c.CPUNanos
}

// Samples is how many samples were added.
func (s *Summary) Samples() int64 { return s.samples }

// Usage is the summary as the stop API takes it, and false before any
// sample. Figures beyond the contract's bounds are cut to them: a usage is
// a report, and must never get a request refused.
func (s *Summary) Usage() (stopapi.Usage, bool) {
	if s.samples == 0 {
		return stopapi.Usage{}, false
	}
	bytes := func(v uint64) int64 { return int64(min(v, stopapi.MaxUsageBytes)) }
	u := stopapi.Usage{
		Samples:          min(s.samples, stopapi.MaxUsageSamples),
		From:             s.from.UTC().Truncate(time.Second),
		To:               s.to.UTC().Truncate(time.Second),
		MemoryPeakBytes:  bytes(s.memPeak),
		MemoryLimitBytes: bytes(s.memLimit),
		CPUSeconds:       min(round3(float64(s.cpuNanos)/1e9), stopapi.MaxUsageCPUSeconds),
		CPUPeakVCPU:      min(round3(s.peakVCPU), stopapi.MaxUsageVCPU),
		NetRxBytes:       bytes(s.rx),
		NetTxBytes:       bytes(s.tx),
	}
	if u.To.Before(u.From) { // the wall clock was stepped back
		u.To = u.From
	}
	if span := u.To.Sub(u.From); span > stopapi.MaxUsageSpan {
		u.From = u.To.Add(-stopapi.MaxUsageSpan)
	}
	return u, true
}

// round3 rounds to thousandths: milliseconds of CPU, thousandths of a vCPU.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
