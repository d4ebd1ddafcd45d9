package fargate

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// excerpt is a stored source's lines, its comments dropped.
func excerpt(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no lines", name)
	}
	return out
}

var (
	// "Between 4096 (4 GB) and 16384 (16 GB) in increments of 1024 (1 GB)",
	// "Between 16 GB and 60 GB in 4 GB increments", "Between 32GB and ...".
	betweenMiB = regexp.MustCompile(`^Between (\d+) \(\d+ GB\) and (\d+) \(\d+ GB\) in increments of (\d+) \(\d+ GB\)$`)
	betweenGB  = regexp.MustCompile(`^Between (\d+) ?GB and (\d+) ?GB in (\d+) ?GB increments$`)
	// "512 (0.5 GB)" (the API's MiB) or "512 MiB", "1 GB" (the guide's).
	choice = regexp.MustCompile(`^(\d+)(?: \([\d.]+ GB\)| (MiB|GB))$`)
)

// memories reads one row's memory text as MiB.
func memories(t *testing.T, text string) []int {
	t.Helper()
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	if m := betweenMiB.FindStringSubmatch(text); m != nil {
		return MemoryRange{From: atoi(m[1]), To: atoi(m[2]), Step: atoi(m[3])}.Memories()
	}
	if m := betweenGB.FindStringSubmatch(text); m != nil {
		return MemoryRange{From: atoi(m[1]) * 1024, To: atoi(m[2]) * 1024, Step: atoi(m[3]) * 1024}.Memories()
	}
	var out []int
	for _, c := range strings.Split(text, ", ") {
		m := choice.FindStringSubmatch(c)
		if m == nil {
			t.Fatalf("memory %q of %q: not a form the sources use", c, text)
		}
		n := atoi(m[1])
		if m[2] == "GB" {
			n *= 1024
		}
		out = append(out, n)
	}
	return out
}

func tableOf(t *testing.T, cpu int) []int {
	t.Helper()
	for _, r := range Sizes {
		if r.CPU == cpu {
			return r.Memories()
		}
	}
	t.Fatalf("no row for cpu %d", cpu)
	return nil
}

// The API reference gives every row: the table is exactly it.
func TestSizesAreTheAPIReferences(t *testing.T) {
	row := regexp.MustCompile(`^(.+) - Available cpu values: (\d+) \(`)
	var cpus []int
	for _, l := range excerpt(t, "ecs-api-taskdefinition-memory.txt") {
		m := row.FindStringSubmatch(l)
		if m == nil {
			continue // a note ("This option requires Linux platform 1.4.0")
		}
		cpu, _ := strconv.Atoi(m[2])
		cpus = append(cpus, cpu)
		if got, want := tableOf(t, cpu), memories(t, m[1]); !slices.Equal(got, want) {
			t.Errorf("cpu %d: the table has %v, the API reference %v", cpu, got, want)
		}
	}
	var ours []int
	for _, r := range Sizes {
		ours = append(ours, r.CPU)
	}
	if !slices.Equal(cpus, ours) {
		t.Errorf("CPU values: the API reference has %v, the table %v", cpus, ours)
	}
}

// The developer guide's rows agree with the table.
func TestSizesAreTheDeveloperGuides(t *testing.T) {
	row := regexp.MustCompile(`^(\d+) \([.\d]+ vCPU\)\t([^\t]+)\t`)
	n := 0
	for _, l := range excerpt(t, "ecs-task-cpu-memory.txt") {
		m := row.FindStringSubmatch(l)
		if m == nil {
			continue // the header
		}
		n++
		cpu, _ := strconv.Atoi(m[1])
		if got, want := tableOf(t, cpu), memories(t, m[2]); !slices.Equal(got, want) {
			t.Errorf("cpu %d: the table has %v, the developer guide %v", cpu, got, want)
		}
	}
	if n != 5 {
		t.Errorf("%d rows read from the developer guide's excerpt, want 5", n)
	}
}

// The public rates are the stored excerpt's, region by region, and AWS's
// own per-second example agrees with the hourly rate.
func TestPublicRatesAreTheSources(t *testing.T) {
	rate := regexp.MustCompile(`^([a-z0-9-]+)\tLinux/(x86|ARM)\t\$([\d.]+)\t\$([\d.]+)$`)
	example := regexp.MustCompile(`^example: ([a-z0-9-]+)\tLinux/x86\tCPU cost: \$([\d.]+) per vCPU second$`)
	arch := map[string]string{"x86": X86, "ARM": ARM}
	seen := Rates{}
	rule := false
	for _, l := range excerpt(t, "fargate-pricing.txt") {
		if strings.HasPrefix(l, "rule: ") {
			rule = strings.Contains(l, "from the time you start to download your container image until the Amazon ECS Task") &&
				strings.Contains(l, "rounded up to the nearest second")
			continue
		}
		if m := example.FindStringSubmatch(l); m != nil {
			perSecond, _ := strconv.ParseFloat(m[2], 64)
			got, ok := Public.Lookup(m[1], X86)
			if !ok || math.Abs(got.VCPUHour/3600-perSecond) > 5e-10 {
				t.Errorf("%s: %v/h is not AWS's example of $%v a vCPU-second", m[1], got.VCPUHour, perSecond)
			}
			continue
		}
		m := rate.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q: not a form of the excerpt", l)
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		g, _ := strconv.ParseFloat(m[4], 64)
		if seen[m[1]] == nil {
			seen[m[1]] = map[string]Rate{}
		}
		seen[m[1]][arch[m[2]]] = Rate{VCPUHour: v, GBHour: g}
	}
	if !rule {
		t.Error("the excerpt's billing rule is not the one Billed implements")
	}
	if len(seen) != len(Public) {
		t.Errorf("regions: the excerpt has %d, Public %d", len(seen), len(Public))
	}
	for region, archs := range seen {
		for a, r := range archs {
			if got, ok := Public.Lookup(region, a); !ok || got != r {
				t.Errorf("%s %s: Public has %+v, the excerpt %+v", region, a, got, r)
			}
		}
	}
}

func TestValid(t *testing.T) {
	for _, c := range []struct {
		s    Size
		want bool
	}{
		{Size{256, 512}, true}, {Size{256, 1536}, false}, {Size{256, 4096}, false},
		{Size{512, 4096}, true}, {Size{1024, 8192}, true}, {Size{2048, 5120}, true},
		{Size{4096, 30720}, true}, {Size{4096, 31744}, false},
		{Size{8192, 20480}, true}, {Size{8192, 18432}, false},
		{Size{16384, 40960}, true}, {Size{16384, 36864}, false}, {Size{768, 2048}, false},
	} {
		if got := Valid(c.s); got != c.want {
			t.Errorf("Valid(%v) = %v", c.s, got)
		}
	}
}

func TestBilled(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		d, want time.Duration
	}{
		{0, time.Minute}, {20 * time.Second, time.Minute}, {time.Minute, time.Minute},
		{time.Minute + time.Millisecond, time.Minute + time.Second}, {time.Hour + 1500*time.Millisecond, time.Hour + 2*time.Second},
		{-time.Second, time.Minute},
	} {
		if got := Billed(t0, t0.Add(c.d)); got != c.want {
			t.Errorf("Billed over %v = %v, want %v", c.d, got, c.want)
		}
	}
}

func TestCost(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	r := Rate{VCPUHour: 0.04048, GBHour: 0.004445}
	// 1 vCPU and 2 GB for an hour: 0.04048 + 2 × 0.004445.
	if got := Cost(Size{1024, 2048}, t0, t0.Add(time.Hour), r); math.Abs(got-0.04937) > 1e-12 {
		t.Errorf("an hour of 1 vCPU, 2 GB: %v", got)
	}
	// 10 s is billed as a minute.
	if got, want := Cost(Size{256, 512}, t0, t0.Add(10*time.Second), r), (0.25*0.04048+0.5*0.004445)/60; math.Abs(got-want) > 1e-15 {
		t.Errorf("10 s of 0.25 vCPU, 0.5 GB: %v, want %v", got, want)
	}
}

func TestCheapest(t *testing.T) {
	r := Public["us-east-1"][X86]
	for _, c := range []struct {
		vcpu float64
		mem  int
		want Size
	}{
		{0.1, 300, Size{256, 512}},
		{0.1, 600, Size{256, 1024}},
		{0.1, 2100, Size{512, 3072}},  // 0.5 vCPU and 3 GB beat 1 vCPU and 3 GB
		{0.3, 512, Size{512, 1024}},   // more than 0.25 vCPU: the next CPU's smallest memory
		{1.2, 1024, Size{2048, 4096}}, // 2 vCPU's smallest
		{0, 40000, Size{8192, 40960}}, // 4 vCPU stops at 30 GB
		{16, 122880, Size{16384, 122880}},
	} {
		got, err := Cheapest(c.vcpu, c.mem, r)
		if err != nil || got != c.want {
			t.Errorf("Cheapest(%v, %d) = %v, %v; want %v", c.vcpu, c.mem, got, err, c.want)
		}
	}
	if _, err := Cheapest(17, 1024, r); err == nil {
		t.Error("17 vCPU: no error")
	}
}

func TestReadRates(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, strconv.Itoa(len(s))+".json")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r, err := ReadRates(write(`{"eu-west-1": {"x86_64": {"vcpuHour": 0.05, "gbHour": 0.005}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Lookup("eu-west-1", ""); !ok || got.VCPUHour != 0.05 {
		t.Errorf("eu-west-1: %+v, %v", got, ok)
	}
	if _, ok := r.Lookup("us-east-1", ARM); !ok {
		t.Error("the public rates were lost")
	}
	for _, bad := range []string{`{`, `{"eu-west-1": {"x86": {"vcpuHour": 1, "gbHour": 1}}}`, `{"eu-west-1": {"arm64": {"vcpuHour": 0, "gbHour": 1}}}`} {
		if _, err := ReadRates(write(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
