package lifetime

import (
	"fmt"
	"time"
)

// Idle is the idle rule: a bastion ends once no session has been seen for
// Timeout. LastSeen is the last time a sample saw a session open; until the
// first, the bastion's start.
type Idle struct {
	Timeout  time.Duration
	LastSeen time.Time
}

// Observe records a sample taken at now that saw sessions open.
func (i *Idle) Observe(now time.Time, sessions int) {
	if sessions > 0 && now.After(i.LastSeen) {
		i.LastSeen = now
	}
}

// Deadline is LastSeen + Timeout.
func (i Idle) Deadline() time.Time { return i.LastSeen.Add(i.Timeout) }

// StopReason is the text sent with an idle stop, e.g.
// "idle 15m0s: no session since 2026-11-24T10:20:00Z".
func (i Idle) StopReason() string {
	return fmt.Sprintf("idle %s: no session since %s", i.Timeout, i.LastSeen.UTC().Format(time.RFC3339))
}

// SampleEvery is how often sessions are sampled for an idle timeout, so that
// the stop leaves at most max(1 s, timeout/10) after the idle deadline.
func SampleEvery(timeout time.Duration) time.Duration {
	return max(time.Second, timeout/10)
}

// Limit names the rule whose deadline applies.
type Limit string

// The limits a bastion can reach.
const (
	LimitTTL  Limit = "ttl"
	LimitIdle Limit = "idle"
)

// Applies is the deadline that applies now, the earlier of the TTL's and the
// idle one (idle nil: off), which limit it is, and the stop reason.
func Applies(l Lifetime, idle *Idle) (deadline time.Time, limit Limit, reason string) {
	if idle != nil && idle.Timeout > 0 && idle.Deadline().Before(l.Deadline()) {
		return idle.Deadline(), LimitIdle, idle.StopReason()
	}
	return l.Deadline(), LimitTTL, l.StopReason()
}
