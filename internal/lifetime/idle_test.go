package lifetime

import (
	"testing"
	"time"
)

func TestIdle(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	l := Lifetime{Start: t0, TTL: 2 * time.Hour}
	idle := &Idle{Timeout: 15 * time.Minute, Since: t0}

	// No session since the start: the idle deadline is start + timeout.
	if d, limit, reason := Applies(l, idle); !d.Equal(t0.Add(15*time.Minute)) || limit != LimitIdle ||
		reason != "idle 15m0s: no session since 2026-11-24T10:00:00Z" {
		t.Fatalf("no session: %v %s %q", d, limit, reason)
	}
	// Samples: in use at +5m and +40m, idle at +1m, +6m and +41m.
	for _, s := range []struct {
		at    time.Duration
		inUse bool
	}{{time.Minute, false}, {5 * time.Minute, true}, {6 * time.Minute, false}, {40 * time.Minute, true}, {41 * time.Minute, false}, {42 * time.Minute, false}} {
		idle.Observe(t0.Add(s.at), s.inUse)
	}
	// The last session closed somewhere between +40m and +41m: idleness
	// counts from the first sample that saw none.
	if d, _, reason := Applies(l, idle); !d.Equal(t0.Add(56*time.Minute)) || reason != "idle 15m0s: no session since 2026-11-24T10:41:00Z" {
		t.Fatalf("idle deadline %v (%q), want the first idle sample (+41m) + 15m", d.Sub(t0), reason)
	}
	// A sample from the past (a clock stepped back) never moves it back.
	idle.Observe(t0.Add(30*time.Minute), true)
	idle.Observe(t0.Add(31*time.Minute), false)
	if !idle.Since.Equal(t0.Add(41 * time.Minute)) {
		t.Fatalf("idle since moved back to %v", idle.Since.Sub(t0))
	}
	// In use until past the TTL: the TTL applies.
	idle.Observe(t0.Add(119*time.Minute), true)
	if d, limit, _ := Applies(l, idle); !d.Equal(l.Deadline()) || limit != LimitTTL {
		t.Fatalf("busy bastion: %v %s", d.Sub(t0), limit)
	}
	// Idle off.
	if _, limit, _ := Applies(l, nil); limit != LimitTTL {
		t.Fatalf("idle off: %s", limit)
	}
}

// Sampled every 90 s at a 15 m timeout, a session that closes just after a
// sample that saw it: the idle deadline is never before the close + 15 m,
// and at most one sample after it.
func TestIdleNeverBeforeTheCloseAndTheTimeout(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	const timeout = 15 * time.Minute
	every := SampleEvery(timeout)
	for _, closeAfter := range []time.Duration{time.Millisecond, every / 2, every - time.Millisecond, every} {
		idle := &Idle{Timeout: timeout, Since: t0}
		lastBusy := t0.Add(10 * every)
		closed := lastBusy.Add(closeAfter)
		for at := t0; !at.After(lastBusy.Add(3 * every)); at = at.Add(every) {
			idle.Observe(at, at.Before(closed))
		}
		if d := idle.Deadline(); d.Before(closed.Add(timeout)) || d.After(closed.Add(timeout+every)) {
			t.Errorf("closed %v after the last busy sample: idle deadline %v after the close, want %v to %v",
				closeAfter, d.Sub(closed), timeout, timeout+every)
		}
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
