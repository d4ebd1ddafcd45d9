// Package usage measures what a task uses, from the Docker stats the ECS
// task metadata endpoint serves (${ECS_CONTAINER_METADATA_URI_V4}/task/stats,
// v3's alike, v2's /v2/stats): it decodes one answer into a Sample, keeps a
// running Summary of fixed size, and samples on a clock (Sampler).
//
// The formulas (docs/supervisor.md says them to people):
//   - memory in use, per container, is Docker's (docker stats):
//     memory_stats.usage less stats.total_inactive_file (cgroup v1) when
//     present and smaller, else less stats.inactive_file (cgroup v2) when
//     smaller, else usage. The task's is the sum over its containers at one
//     sample, and the peak is the highest of those sums. max_usage is not
//     used: cgroup v2 has none, and it counts the page cache;
//   - CPU time is cpu_stats.cpu_usage.total_usage (ns), a counter per
//     container: the summary adds each container's increase between
//     samples (its whole count when first seen; a count that went down is
//     a restart, counted from zero). The vCPU rate of an interval is the
//     increase over the time between the two samples' read stamps; the
//     peak is the highest rate. online_cpus is not used: it counts the
//     host's CPUs, not the task's;
//   - network bytes are counted once: in awsvpc mode every container of a
//     task shares one network namespace and reports the same counters, so
//     the task's are the largest any one container reports (the sum of its
//     interfaces), never the sum over containers;
//   - the memory limit is the task's Limits.Memory (MiB) from the task
//     document: memory_stats.limit may be the host's.
package usage

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxContainers bounds the containers a Sample and a Summary track, so
// that neither grows: ECS allows 10 containers in a task definition, and
// the endpoint may add the task's pause container.
const MaxContainers = 16

// Container is one running container's figures in a Sample.
type Container struct {
	ID          uint64    // FNV-1a of the Docker ID: a Summary tracks counters by it
	Read        time.Time // when the runtime read the figures
	CPUNanos    uint64    // cpu_stats.cpu_usage.total_usage
	MemoryInUse uint64    // usage less inactive file pages (see the package doc)
	RxBytes     uint64    // the sum of its interfaces' rx_bytes
	TxBytes     uint64
}

// Sample is one answer of the stats endpoint: the running containers'
// figures. Its array is fixed: a Sample is reused from one read to the next.
type Sample struct {
	Containers [MaxContainers]Container
	N          int // containers in Containers
	NotRunning int // containers shown without figures (null, or empty)
	Dropped    int // running containers beyond MaxContainers, not counted
}

// Running is the running containers' figures.
func (s *Sample) Running() []Container { return s.Containers[:s.N] }

// dockerStats is the part of Docker's stats that a Sample is made of.
type dockerStats struct {
	Read     time.Time `json:"read"`
	CPUStats struct {
		CPUUsage struct {
			TotalUsage uint64 `json:"total_usage"`
		} `json:"cpu_usage"`
	} `json:"cpu_stats"`
	MemoryStats struct {
		Usage uint64 `json:"usage"`
		Stats struct {
			TotalInactiveFile *uint64 `json:"total_inactive_file"` // cgroup v1
			InactiveFile      *uint64 `json:"inactive_file"`       // cgroup v2 (v1 has it too)
		} `json:"stats"`
	} `json:"memory_stats"`
	Networks map[string]struct {
		RxBytes uint64 `json:"rx_bytes"`
		TxBytes uint64 `json:"tx_bytes"`
	} `json:"networks"`
}

// Decode reads one answer of the stats endpoint into s, which it resets: a
// JSON object from Docker ID to that container's stats, null (v2, v3) or
// an empty object (v4) for a container that has none yet.
func Decode(data []byte, s *Sample) error {
	var m map[string]*dockerStats
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("usage: decode stats: %w", err)
	}
	if m == nil {
		return errors.New("usage: decode stats: not an object")
	}
	*s = Sample{}
	for id, d := range m {
		// A running container always has a usage and a CPU count: an
		// entry without both has no figures yet.
		if d == nil || (d.MemoryStats.Usage == 0 && d.CPUStats.CPUUsage.TotalUsage == 0) {
			s.NotRunning++
			continue
		}
		if s.N == MaxContainers {
			s.Dropped++
			continue
		}
		c := Container{ID: hashID(id), Read: d.Read, CPUNanos: d.CPUStats.CPUUsage.TotalUsage, MemoryInUse: memoryInUse(d)}
		for _, n := range d.Networks {
			c.RxBytes += n.RxBytes
			c.TxBytes += n.TxBytes
		}
		s.Containers[s.N] = c
		s.N++
	}
	return nil
}

// memoryInUse is Docker's memory in use (docker stats): usage less the
// inactive file pages, which the kernel reclaims at will; cgroup v1's
// hierarchical total_inactive_file first, else cgroup v2's inactive_file.
func memoryInUse(d *dockerStats) uint64 {
	m := d.MemoryStats
	if v := m.Stats.TotalInactiveFile; v != nil && *v < m.Usage {
		return m.Usage - *v
	}
	if v := m.Stats.InactiveFile; v != nil && *v < m.Usage {
		return m.Usage - *v
	}
	return m.Usage
}

// hashID is the 64-bit FNV-1a hash of a Docker ID, without allocating.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}
