// Package lifetime is the pure policy of a bastion's life: from its start
// time and TTL, the deadline, the time left and the reason it is stopped.
package lifetime

import (
	"fmt"
	"strings"
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

// Left is the time from now until deadline as anyone is told it (the
// supervisor's status, its warnings): rounded to the nearest second, zero
// once the deadline has passed. To the nearest, not down: a warning due 1m
// before the deadline fires a few milliseconds after its mark and must
// still say 1m; nobody is told more than half a second too much.
func Left(deadline, now time.Time) time.Duration {
	return max(deadline.Sub(now), 0).Round(time.Second)
}

// LeftText is Left for a person to read at a glance, as ls and connect
// show it: from a minute on, Left cut to the minute, without the zero
// units ("2h", "1h5m", "12m"); below a minute, to the second ("45s"); "0s"
// once the deadline has passed.
func LeftText(deadline, now time.Time) string {
	d := Left(deadline, now)
	if d < time.Minute {
		return d.String()
	}
	s := strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// StopReason is the text sent with the stop request, e.g.
// "TTL 30m0s expired (started 2026-11-24T10:00:00Z)".
func (l Lifetime) StopReason() string {
	return fmt.Sprintf("TTL %s expired (started %s)", l.TTL, l.Start.UTC().Format(time.RFC3339))
}

// MaxStopReason is ECS's limit on a StopTask reason, in characters.
const MaxStopReason = 255

// CutStopReason shortens reason to ECS's limit without splitting a
// character. Every StopTask reason goes through it: the sweeper's, the
// terminate API's, the launcher's (stop, connect --stop).
func CutStopReason(reason string) string {
	r := []rune(reason)
	if len(r) <= MaxStopReason {
		return reason
	}
	return string(r[:MaxStopReason])
}
