// Package lifetime is the pure policy of a bastion's life: from its start
// time and TTL, the deadline, the time left and the reason it is stopped.
package lifetime

import (
	"fmt"
	"time"
)

// Lifetime is a bastion's start time and time to live.
type Lifetime struct {
	Start time.Time
	TTL   time.Duration
}

// Deadline is the instant the bastion must be stopped: Start + TTL.
func (l Lifetime) Deadline() time.Time { return l.Start.Add(l.TTL) }

// Expired reports whether now is at or past the deadline.
func (l Lifetime) Expired(now time.Time) bool { return !now.Before(l.Deadline()) }

// Left is the time until the deadline, zero once it has passed.
func (l Lifetime) Left(now time.Time) time.Duration {
	if l.Expired(now) {
		return 0
	}
	return l.Deadline().Sub(now)
}

// StopReason is the text sent with the stop request, e.g.
// "TTL 30m0s expired (started 2026-11-24T10:00:00Z)".
func (l Lifetime) StopReason() string {
	return fmt.Sprintf("TTL %s expired (started %s)", l.TTL, l.Start.UTC().Format(time.RFC3339))
}

// MaxStopReason is ECS's limit on a StopTask reason, in characters.
const MaxStopReason = 255

// CutStopReason shortens reason to ECS's limit without splitting a character.
func CutStopReason(reason string) string {
	r := []rune(reason)
	if len(r) <= MaxStopReason {
		return reason
	}
	return string(r[:MaxStopReason])
}
