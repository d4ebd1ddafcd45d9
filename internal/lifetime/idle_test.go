package lifetime

import (
	"testing"
	"time"
)

func TestIdle(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	l := Lifetime{Start: t0, TTL: 2 * time.Hour}
	idle := &Idle{Timeout: 15 * time.Minute, LastSeen: t0}

	// No session since the start: the idle deadline is start + timeout.
	if d, limit, reason := Applies(l, idle); !d.Equal(t0.Add(15*time.Minute)) || limit != LimitIdle ||
		reason != "idle 15m0s: no session since 2026-11-24T10:00:00Z" {
		t.Fatalf("no session: %v %s %q", d, limit, reason)
	}
	// Samples: a session at +5m and +40m, none after.
	for _, s := range []struct {
		at       time.Duration
		sessions int
	}{{time.Minute, 0}, {5 * time.Minute, 1}, {6 * time.Minute, 0}, {40 * time.Minute, 2}, {41 * time.Minute, 0}} {
		idle.Observe(t0.Add(s.at), s.sessions)
	}
	if d, _, _ := Applies(l, idle); !d.Equal(t0.Add(55 * time.Minute)) {
		t.Fatalf("idle deadline %v, want last seen (+40m) + 15m", d.Sub(t0))
	}
	// A sample from the past (a clock stepped back) never moves it back.
	idle.Observe(t0.Add(30*time.Minute), 1)
	if !idle.LastSeen.Equal(t0.Add(40 * time.Minute)) {
		t.Fatalf("last seen moved back to %v", idle.LastSeen.Sub(t0))
	}
	// Sessions until past the TTL: the TTL applies.
	idle.Observe(t0.Add(119*time.Minute), 1)
	if d, limit, _ := Applies(l, idle); !d.Equal(l.Deadline()) || limit != LimitTTL {
		t.Fatalf("busy bastion: %v %s", d.Sub(t0), limit)
	}
	// Idle off.
	if _, limit, _ := Applies(l, nil); limit != LimitTTL {
		t.Fatalf("idle off: %s", limit)
	}
}

func TestSampleEvery(t *testing.T) {
	for timeout, want := range map[time.Duration]time.Duration{
		5 * time.Second: time.Second, 10 * time.Second: time.Second, time.Minute: 6 * time.Second, 15 * time.Minute: 90 * time.Second,
	} {
		if got := SampleEvery(timeout); got != want {
			t.Errorf("SampleEvery(%v) = %v, want %v", timeout, got, want)
		}
	}
}
