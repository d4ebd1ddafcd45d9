package stopapi

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestCheckUsage(t *testing.T) {
	at := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	good := Usage{Samples: 1, From: at, To: at, MemoryPeakBytes: 1, MemoryLimitBytes: 512 << 20, CPUSeconds: 1.5, CPUPeakVCPU: 0.25, NetRxBytes: 84, NetTxBytes: 84}
	if err := CheckUsage(good); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		want string
		edit func(*Usage)
	}{
		{"usage.samples", func(u *Usage) { u.Samples = 0 }},
		{"usage.samples", func(u *Usage) { u.Samples = MaxUsageSamples + 1 }},
		{"usage.from and usage.to are required", func(u *Usage) { u.From = time.Time{} }},
		{"usage.from is after usage.to", func(u *Usage) { u.To = at.Add(-time.Second) }},
		{"spans more than", func(u *Usage) { u.To = at.Add(MaxUsageSpan + time.Second) }},
		{"usage.memoryPeakBytes", func(u *Usage) { u.MemoryPeakBytes = -1 }},
		{"usage.memoryLimitBytes", func(u *Usage) { u.MemoryLimitBytes = MaxUsageBytes + 1 }},
		{"usage.netRxBytes", func(u *Usage) { u.NetRxBytes = -1 }},
		{"usage.netTxBytes", func(u *Usage) { u.NetTxBytes = -1 }},
		{"usage.cpuSeconds", func(u *Usage) { u.CPUSeconds = -0.001 }},
		{"usage.cpuSeconds", func(u *Usage) { u.CPUSeconds = math.NaN() }},
		{"usage.cpuPeakVcpu", func(u *Usage) { u.CPUPeakVCPU = MaxUsageVCPU + 1 }},
	} {
		u := good
		tt.edit(&u)
		err := CheckUsage(u)
		if !errors.Is(err, ErrBadUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", u, err, tt.want)
		}
	}
}
