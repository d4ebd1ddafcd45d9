package supervisor

import (
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// status warns from the first of BASTION_WARN_BEFORE on, naming the limit.
func TestStatusWarns(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var l live
	l.set(taskmeta.Start{TaskARN: testTaskARN, Time: t0}, lifetime.Lifetime{Start: t0, TTL: time.Hour}, 12*time.Hour)
	warn := []time.Duration{time.Minute, 10 * time.Minute}
	for at, want := range map[time.Duration]string{
		49 * time.Minute: "",
		50 * time.Minute: "this bastion stops in 10m0s (ttl limit)",
		59 * time.Minute: "this bastion stops in 1m0s (ttl limit)",
		2 * time.Hour:    "this bastion stops in 0s (ttl limit)",
	} {
		if s, _ := l.status(t0.Add(at), warn); s.Warning != want {
			t.Errorf("at +%v: warning %q, want %q", at, s.Warning, want)
		}
	}
	if s, _ := l.status(t0.Add(59*time.Minute), nil); s.Warning != "" {
		t.Errorf("no BASTION_WARN_BEFORE, still a warning: %q", s.Warning)
	}
}

// Whatever the caller checked, no answer moves the TTL (and the fail-safe
// after the deadline) past the ceiling, BASTION_MAX_TTL; a shorter one
// wakes the watch loop.
func TestAdoptNeverPassesTheCeiling(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	l := newLive()
	l.set(taskmeta.Start{TaskARN: testTaskARN, Time: t0}, lifetime.Lifetime{Start: t0, TTL: time.Hour}, 12*time.Hour)
	if !l.adopt(876000*time.Hour, 876000*time.Hour) {
		t.Fatal("refused before stopping")
	}
	if s, _ := l.status(t0, nil); val(s.TTL) != "12h0m0s" || s.MaxTTL != "12h0m0s" || !val(s.Deadline).Equal(t0.Add(12*time.Hour)) || !s.Registered {
		t.Fatalf("status after 100 years: %+v", s)
	}
	select {
	case <-l.moved:
		t.Fatal("a later deadline woke the loop")
	default:
	}
	l.adopt(2*time.Hour, 2*time.Hour)
	select {
	case <-l.moved:
	default:
		t.Fatal("an earlier deadline did not wake the loop")
	}
}

// status tells time left by package lifetime's rule (lifetime.Left),
// to the nearest second: with 9m59.9s to go it says 10m0s, and warns at
// the 10m mark it has passed.
func TestStatusTellsTimeLeftByTheLifetimeRule(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var l live
	l.set(taskmeta.Start{TaskARN: testTaskARN, Time: t0}, lifetime.Lifetime{Start: t0, TTL: time.Hour}, 12*time.Hour)
	for _, to := range []time.Duration{
		10*time.Minute - 100*time.Millisecond, 42*time.Minute + 40*time.Second + 900*time.Millisecond, 500 * time.Millisecond, 0, -time.Minute,
	} {
		now := t0.Add(time.Hour - to)
		s, _ := l.status(now, []time.Duration{10 * time.Minute})
		want := lifetime.Left(t0.Add(time.Hour), now)
		if off := want - max(to, 0); *s.Remaining != want.String() || *s.RemainingSeconds != int64(want/time.Second) || off > time.Second/2 || off < -time.Second/2 {
			t.Errorf("%v to go: remaining %s (%d s), want %s", to, *s.Remaining, *s.RemainingSeconds, want)
		}
		if warned := s.Warning != ""; warned != (to <= 10*time.Minute) {
			t.Errorf("%v to go: warning %q", to, s.Warning)
		}
	}
}
