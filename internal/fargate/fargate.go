// Package fargate is Fargate's sizing and billing rules, for the ledger's
// readers (bastion-ttl history and rightsize): the task sizes Fargate
// accepts, its on-demand rates per region, what a task cost, and the
// cheapest size that holds a need.
//
// Sources, checked in this package's tests against stored excerpts
// (testdata/):
//   - sizes: the Amazon ECS Developer Guide, "Task CPU and memory"
//     (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html),
//     and the ECS API Reference's TaskDefinition memory;
//   - billing and rates: https://aws.amazon.com/fargate/pricing/, as of
//     RatesDate.
package fargate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"time"
)

// Size is a task's size: CPU units (1024 a vCPU) and memory in MiB, as a
// task definition and ECS's events give them.
type Size struct {
	CPU       int `json:"cpu"`
	MemoryMiB int `json:"memoryMiB"`
}

// VCPU is the size's vCPUs.
func (s Size) VCPU() float64 { return float64(s.CPU) / 1024 }

// GB is the size's memory in GB as Fargate bills it (1 GB = 1024 MiB).
func (s Size) GB() float64 { return float64(s.MemoryMiB) / 1024 }

func (s Size) String() string {
	return strconv.FormatFloat(s.VCPU(), 'f', -1, 64) + " vCPU, " + strconv.FormatFloat(s.GB(), 'f', -1, 64) + " GB"
}

// ParseSize is the size ECS reports as strings ("256", "512"); ok is false
// when either is not a number.
func ParseSize(cpu, memory string) (Size, bool) {
	c, err1 := strconv.Atoi(cpu)
	m, err2 := strconv.Atoi(memory)
	if err1 != nil || err2 != nil || c <= 0 || m <= 0 {
		return Size{}, false
	}
	return Size{c, m}, true
}

// MemoryRange is one CPU value's memory choices: the MiB of List, or From
// to To MiB by Step.
type MemoryRange struct {
	CPU            int
	List           []int
	From, To, Step int
}

// Memories is r's choices, smallest first.
func (r MemoryRange) Memories() []int {
	if r.List != nil {
		return r.List
	}
	var out []int
	for m := r.From; m <= r.To; m += r.Step {
		out = append(out, m)
	}
	return out
}

// Sizes is Fargate's valid Linux combinations (ECS Developer Guide, "Task
// CPU and memory"; 8 and 16 vCPU need platform 1.4.0).
var Sizes = []MemoryRange{
	{CPU: 256, List: []int{512, 1024, 2048}},
	{CPU: 512, From: 1024, To: 4096, Step: 1024},
	{CPU: 1024, From: 2048, To: 8192, Step: 1024},
	{CPU: 2048, From: 4096, To: 16384, Step: 1024},
	{CPU: 4096, From: 8192, To: 30720, Step: 1024},
	{CPU: 8192, From: 16384, To: 61440, Step: 4096},
	{CPU: 16384, From: 32768, To: 122880, Step: 8192},
}

// All is every valid size, smallest CPU first, then smallest memory.
func All() []Size {
	var out []Size
	for _, r := range Sizes {
		for _, m := range r.Memories() {
			out = append(out, Size{r.CPU, m})
		}
	}
	return out
}

// Valid says whether Fargate accepts s.
func Valid(s Size) bool { return slices.Contains(All(), s) }

// Architectures, as ECS's ecs.cpu-architecture attribute names them.
const (
	X86 = "x86_64"
	ARM = "arm64"
)

// Rate is an on-demand price in USD.
type Rate struct {
	VCPUHour float64 `json:"vcpuHour"`
	GBHour   float64 `json:"gbHour"`
}

// Rates is region -> architecture -> rate.
type Rates map[string]map[string]Rate

// RatesDate is when Public's rates were checked against their source.
const RatesDate = "2026-12-05"

// Public is Fargate's published on-demand Linux rates (https://aws.amazon.com/fargate/pricing/,
// as of RatesDate; testdata/fargate-pricing.txt quotes them). Only the
// regions whose rates could be checked are here: another needs --rates.
var Public = Rates{
	"us-east-1": {X86: {VCPUHour: 0.04048, GBHour: 0.004445}, ARM: {VCPUHour: 0.03238, GBHour: 0.00356}},
}

// Lookup is the rate of region and arch ("" is x86_64, Fargate's default);
// ok is false when the table has none.
func (r Rates) Lookup(region, arch string) (Rate, bool) {
	if arch == "" {
		arch = X86
	}
	rate, ok := r[region][arch]
	return rate, ok
}

// ReadRates reads a --rates file: {"<region>": {"x86_64": {"vcpuHour": n,
// "gbHour": n}, "arm64": {...}}}. Its regions replace Public's.
func ReadRates(path string) (Rates, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Rates
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("not JSON of {region: {x86_64|arm64: {vcpuHour, gbHour}}}: %w", err)
	}
	out := Rates{}
	for region, archs := range Public {
		out[region] = archs
	}
	for region, archs := range r {
		for arch, rate := range archs {
			if arch != X86 && arch != ARM {
				return nil, fmt.Errorf("region %s: architecture %q is not %s or %s", region, arch, X86, ARM)
			}
			if !(rate.VCPUHour > 0) || !(rate.GBHour > 0) || math.IsInf(rate.VCPUHour+rate.GBHour, 0) {
				return nil, fmt.Errorf("region %s %s: vcpuHour and gbHour must be positive", region, arch)
			}
		}
		out[region] = archs
	}
	return out, nil
}

// MinimumBilled is Fargate's one-minute minimum.
const MinimumBilled = time.Minute

// Billed is the time Fargate bills a task for: from the start of its image
// pull to its stop, rounded up to the second, at least a minute.
func Billed(pullStart, stop time.Time) time.Duration {
	d := stop.Sub(pullStart)
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return max(d, MinimumBilled)
}

// Hourly is an hour of s at rate.
func Hourly(s Size, rate Rate) float64 { return s.VCPU()*rate.VCPUHour + s.GB()*rate.GBHour }

// Cost is what a task of size s cost at rate, from pullStart to stop.
func Cost(s Size, pullStart, stop time.Time, rate Rate) float64 {
	return Hourly(s, rate) * Billed(pullStart, stop).Hours()
}

// ErrTooBig is Cheapest's answer when no size holds the need.
var ErrTooBig = errors.New("no Fargate size is that large")

// Cheapest is the size with at least vcpu vCPUs and memMiB MiB that costs
// least an hour at rate; of equal costs, the smaller CPU.
func Cheapest(vcpu float64, memMiB int, rate Rate) (Size, error) {
	var best Size
	found := false
	for _, s := range All() {
		if s.VCPU() < vcpu || s.MemoryMiB < memMiB {
			continue
		}
		if !found || Hourly(s, rate) < Hourly(best, rate) {
			best, found = s, true
		}
	}
	if !found {
		return Size{}, fmt.Errorf("%w: %.2f vCPU, %d MiB", ErrTooBig, vcpu, memMiB)
	}
	return best, nil
}
