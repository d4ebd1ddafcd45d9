package usage

import (
	"os"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The real answers of testdata/README.md, decoded.
func TestDecodeFixtures(t *testing.T) {
	tests := []struct {
		file          string
		running, none int
		memory, cpu   uint64 // sums over the running containers
		rx, tx        uint64 // the largest one container reports
		rxSum         uint64 // what summing would wrongly give
		cgroup        string
	}{
		// usage 6504448 less total_inactive_file 3088384.
		{"v4-fargate-task-stats.json", 1, 0, 3416064, 1137691504, 2398415937, 1259037719, 2398415937, "v1"},
		// usage 83562496 less inactive_file 48271360; no max_usage, no networks.
		{"v4-managed-instances-task-stats.json", 1, 0, 35291136, 670462000, 0, 0, 0, "v2"},
		// The pause container and curl share the task's namespace: both
		// report eth0's 84 bytes, which the task received once.
		{"v4-ec2-awsvpc-task-stats.json", 2, 0, 532480 + 1814528, 177232665 + 379075681, 84, 84, 168, "v1"},
		{"v2-stats-not-running.json", 1, 1, 3416064, 1137691504, 2398415937, 1259037719, 2398415937, "v1"},
		{"v4-stats-unavailable.json", 1, 1, 3416064, 1137691504, 2398415937, 1259037719, 2398415937, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var s Sample
			if err := Decode(readFixture(t, tt.file), &s); err != nil {
				t.Fatal(err)
			}
			if s.N != tt.running || s.NotRunning != tt.none || s.Dropped != 0 {
				t.Fatalf("running %d, not running %d, dropped %d; want %d, %d, 0", s.N, s.NotRunning, s.Dropped, tt.running, tt.none)
			}
			var mem, cpu, rx, tx, rxSum uint64
			for _, c := range s.Running() {
				mem, cpu, rxSum = mem+c.MemoryInUse, cpu+c.CPUNanos, rxSum+c.RxBytes
				rx, tx = max(rx, c.RxBytes), max(tx, c.TxBytes)
				if c.Read.IsZero() {
					t.Fatal("no read stamp")
				}
			}
			if mem != tt.memory || cpu != tt.cpu || rx != tt.rx || tx != tt.tx || rxSum != tt.rxSum {
				t.Fatalf("memory %d cpu %d rx %d tx %d (sum %d); want %d %d %d %d (%d)", mem, cpu, rx, tx, rxSum, tt.memory, tt.cpu, tt.rx, tt.tx, tt.rxSum)
			}
			var sum Summary
			sum.Add(s.Containers[0].Read, &s)
			if u, _ := sum.Usage(); u.NetRxBytes != int64(tt.rx) || u.MemoryPeakBytes != int64(tt.memory) {
				t.Fatalf("summary %+v: network counted once is %d, memory %d", u, tt.rx, tt.memory)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, doc := range []string{``, `null`, `[]`, `{"a":`, `{"a": {"memory_stats": {"usage": -1}}}`, `"x"`} {
		var s Sample
		if err := Decode([]byte(doc), &s); err == nil {
			t.Errorf("Decode(%q) = nil, want an error", doc)
		}
	}
}

// Docker's formula: cgroup v1's total_inactive_file first, cgroup v2's
// inactive_file else, only when smaller than usage.
func TestMemoryInUse(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name         string
		usage        uint64
		total, local *uint64
		want         uint64
	}{
		{"cgroup v1: total_inactive_file", 1000, u(300), u(100), 700},
		{"cgroup v2: inactive_file", 1000, nil, u(400), 600},
		{"v1 key present but not smaller: v2's next", 1000, u(1000), u(100), 900},
		{"inactive not smaller than usage: usage", 1000, nil, u(1200), 1000},
		{"no key: usage", 1000, nil, nil, 1000},
	}
	for _, tt := range tests {
		var d dockerStats
		d.MemoryStats.Usage = tt.usage
		d.MemoryStats.Stats.TotalInactiveFile, d.MemoryStats.Stats.InactiveFile = tt.total, tt.local
		if got := memoryInUse(&d); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

// More running containers than a Sample holds are counted as dropped.
func TestDecodeBounded(t *testing.T) {
	doc := []byte("{")
	for i := range MaxContainers + 3 {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = append(doc, []byte(`"c`+string(rune('a'+i))+`":{"cpu_stats":{"cpu_usage":{"total_usage":5}},"memory_stats":{"usage":7}}`)...)
	}
	doc = append(doc, '}')
	var s Sample
	if err := Decode(doc, &s); err != nil {
		t.Fatal(err)
	}
	if s.N != MaxContainers || s.Dropped != 3 {
		t.Fatalf("N %d dropped %d", s.N, s.Dropped)
	}
}

// BenchmarkDecode is the decode cost of one sample of a real answer (the
// Fargate example): the allocations are encoding/json's, per sample; none
// stays.
func BenchmarkDecode(b *testing.B) {
	doc := readFixture(b, "v4-fargate-task-stats.json")
	var s Sample
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := Decode(doc, &s); err != nil {
			b.Fatal(err)
		}
	}
}
