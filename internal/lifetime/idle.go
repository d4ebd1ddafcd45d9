package lifetime

import (
	"fmt"
	"time"
)

// Idle is the idle rule: a bastion ends once it has been idle for Timeout.
// Since is when idleness began: the bastion's start, or the first sample
// that saw the bastion not in use after one that saw it in use. Counting
// from that first idle sample, not from the last busy one, is what keeps
// the stop from coming before the last session's close + Timeout: the close
// happened somewhere between the two samples.
type Idle struct {
	Timeout time.Duration
	Since   time.Time
	inUse   bool // the last sample saw the bastion in use
}

// Observe records a sample taken at now. While the bastion is in use, Since
// follows the samples (the idle deadline is then at least one Timeout
// away); the first sample that finds it idle fixes Since there. Since never
// moves back, whatever the clock does.
func (i *Idle) Observe(now time.Time, inUse bool) {
	if (inUse || i.inUse) && now.After(i.Since) {
		i.Since = now
	}
	i.inUse = inUse
}

// Deadline is Since + Timeout.
func (i Idle) Deadline() time.Time { return i.Since.Add(i.Timeout) }

// StopReason is the text sent with an idle stop, e.g.
// "idle 15m0s: no session since 2026-11-24T10:20:00Z".
func (i Idle) StopReason() string {
	return fmt.Sprintf("idle %s: no session since %s", i.Timeout, i.Since.UTC().Format(time.RFC3339))
}

// SampleEvery is how often sessions are sampled for an idle timeout, so that
// the stop leaves at most max(1 s, timeout/10) after the last session's
// close + timeout, never before.
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
