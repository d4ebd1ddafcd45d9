package ledger

import (
	"fmt"
	"time"
)

// Policy holds what the verdicts are judged by.
type Policy struct {
	// Grace is the supervisor's BASTION_GRACE: its fail-safe's window.
	Grace time.Duration
	// SweepPeriod is the sweeper's schedule: a bastion the first line
	// missed is stopped within deadline + grace + one period.
	SweepPeriod time.Duration
	// SupervisorContainer names the sidecar, whose exit 1 is its fail-safe;
	// a task without a container of that name is taken for the health-check
	// variant.
	SupervisorContainer string
	// Retention is how long an item is kept after its bastion stopped.
	Retention time.Duration
}

// EarlyTolerance is how far before the deadline a TTL stop may begin and
// still be on time: the supervisor's clock and ECS's may differ that much.
const EarlyTolerance = time.Second

// Outcome is what a record comes to: the deadline, and once a stop is
// known, how the bastion ended and the verdict.
type Outcome struct {
	Deadline time.Time // zero: none registered
	Ending   Ending    // empty: no stop known yet
	Verdict  Verdict
	Why      string
	// Lateness is the stop's start less the deadline; set only with both.
	Lateness    time.Duration
	HasLateness bool
	ExpiresAt   time.Time
}

// Deadline is the supervisor's own deadline: its start plus the TTL the
// API last granted it; zero without both, or when the start is not
// believable (startBelievable).
func (it Item) Deadline() time.Time {
	if it.SupervisorStart.IsZero() || it.TTL <= 0 || !it.startBelievable() {
		return time.Time{}
	}
	return it.SupervisorStart.Add(it.TTL)
}

// startBelievable says whether the start the supervisor sent is one it
// can have had: no earlier than the task's creation (ECS's), no later than
// its registration (the function's clock), within StartSkew. The task sends
// its start; it must not move its own deadline, and so its verdict, by
// more than that.
func (it Item) startBelievable() bool {
	s := it.SupervisorStart
	if !it.CreatedAt.IsZero() && s.Before(it.CreatedAt.Add(-StartSkew)) {
		return false
	}
	return it.RegisteredAt.IsZero() || !s.After(it.RegisteredAt.Add(StartSkew))
}

// StartSkew is how far the supervisor's start may fall outside the task's
// creation and its registration: the clocks of the task, ECS and the
// function differ, by far less.
const StartSkew = time.Minute

// Stopped says whether a stop is known: ECS's (an event with the task
// stopping or stopped) or our own record of one.
func (it Item) Stopped() bool {
	return it.LastStatus == "STOPPED" || it.DesiredStatus == "STOPPED" || !it.StoppingAt.IsZero() ||
		!it.StoppedAt.IsZero() || it.Stop != nil || it.Sweep != nil
}

// stopping is the time the stop is judged by: ECS's stoppingAt; without
// it, our own record's earliest StopTask; else stoppedAt.
func (it Item) stopping() time.Time {
	if !it.StoppingAt.IsZero() {
		return it.StoppingAt
	}
	var first time.Time
	for _, s := range []*Stop{it.Stop, it.Sweep} {
		if s != nil && !s.At.IsZero() && (first.IsZero() || s.At.Before(first)) {
			first = s.At
		}
	}
	if !first.IsZero() {
		return first
	}
	return it.StoppedAt
}

// ourStop is bastion-ttl's first stop of the task, nil without one. A stop
// reason in an event can be written by anyone allowed StopTask: only our
// own records say we stopped it.
func (it Item) ourStop() *Stop {
	switch {
	case it.Stop == nil:
		return it.Sweep
	case it.Sweep == nil:
		return it.Stop
	case it.Sweep.At.Before(it.Stop.At):
		return it.Sweep
	}
	return it.Stop
}

// Ending is how the bastion ended: our own records first, then ECS's stop
// code; empty while no stop is known.
func (p Policy) Ending(it Item) Ending {
	if !it.Stopped() {
		return ""
	}
	if s := it.ourStop(); s != nil {
		switch s.How {
		case EndingTTL, EndingIdle, EndingSweeper:
			return s.How
		}
		return EndingOther
	}
	switch it.StopCode {
	case "UserInitiated":
		return EndingPerson
	case "EssentialContainerExited":
		if c, ok := it.Containers[p.SupervisorContainer]; ok {
			if c.ExitCode != nil && *c.ExitCode == 1 {
				return EndingFailSafe
			}
		} else if p.signalledAtFailSafe(it) {
			return EndingFailSafe
		}
	}
	if it.StopCode == "" && it.LastStatus != "STOPPED" {
		return "" // stopping, by whom not known yet
	}
	return EndingOther
}

// exitedBySIGTERM is a container's exit code after SIGTERM ended it
// (128 + 15), the health check's fail-safe's signal.
const exitedBySIGTERM = 143

// signalledAtFailSafe says whether a task without the sidecar (the
// health-check variant) ended as its fail-safe ends it: a container exited
// by SIGTERM, no record of ours, the stop at or after deadline + grace. The
// ledger recognises it rather than the supervisor recording it first: the
// fail-safe fires because the API failed, so a record sent through it
// would be missing when it matters most.
func (p Policy) signalledAtFailSafe(it Item) bool {
	deadline, stopping := it.Deadline(), it.stopping()
	if deadline.IsZero() || stopping.IsZero() || stopping.Before(deadline.Add(p.Grace-EarlyTolerance)) {
		return false
	}
	for _, c := range it.Containers {
		if c.ExitCode != nil && *c.ExitCode == exitedBySIGTERM {
			return true
		}
	}
	return false
}

// Decide computes the outcome of it.
func (p Policy) Decide(it Item) Outcome {
	o := Outcome{Deadline: it.Deadline(), Ending: p.Ending(it)}
	o.ExpiresAt = p.expires(it)
	if o.Ending == "" {
		return o
	}
	stopping := it.stopping()
	if !o.Deadline.IsZero() && !stopping.IsZero() {
		o.Lateness, o.HasLateness = stopping.Sub(o.Deadline), true
	}
	bound := p.Grace + p.SweepPeriod
	switch {
	case o.Deadline.IsZero():
		o.Verdict = Unknown
		switch {
		case it.RegisteredAt.IsZero():
			o.Why = "no deadline registered: the supervisor never reached POST /extend (overridden away, not started, or the API unreachable)"
		case it.SupervisorStart.IsZero():
			o.Why = "registered without the supervisor's start (a supervisor that does not send startedAt): no deadline"
		case !it.startBelievable():
			o.Why = fmt.Sprintf("the supervisor's start %s is outside the task's creation %s and its registration %s: not believed",
				it.SupervisorStart.Format(time.RFC3339), it.CreatedAt.Format(time.RFC3339), it.RegisteredAt.Format(time.RFC3339))
		default:
			o.Why = "registered without a TTL: no deadline"
		}
	case o.HasLateness && o.Lateness > bound:
		// Late whoever ended it: a fallback past the bound broke the promise too.
		o.Verdict = Late
		o.Why = fmt.Sprintf("%s, stopping %s after the deadline, more than grace %s + sweep period %s", o.Ending, o.Lateness, p.Grace, p.SweepPeriod)
	case o.Ending == EndingFailSafe || o.Ending == EndingSweeper:
		o.Verdict = Fallback
		o.Why = fmt.Sprintf("the %s ended it: the supervisor's stop request did not", o.Ending)
	case !o.HasLateness:
		o.Verdict = Unknown
		o.Why = "stopped, but no stopping time known"
	case o.Ending == EndingTTL && o.Lateness < -EarlyTolerance:
		o.Verdict = Early
		o.Why = fmt.Sprintf("bastion-ttl stopped it for its TTL %s before the deadline", -o.Lateness)
	default:
		o.Verdict = OnTime
		if o.Lateness <= 0 {
			o.Why = fmt.Sprintf("%s, %s before the deadline", o.Ending, -o.Lateness)
		} else {
			o.Why = fmt.Sprintf("%s, %s after the deadline (within grace %s + sweep period %s)", o.Ending, o.Lateness, p.Grace, p.SweepPeriod)
		}
	}
	return o
}

// expires is when the table may delete the item: Retention after the
// latest time it knows (the stop, once known), so that an item whose
// bastion's events were lost still goes.
func (p Policy) expires(it Item) time.Time {
	var last time.Time
	for _, t := range []time.Time{it.CreatedAt, it.StartedAt, it.RegisteredAt, it.StoppingAt, it.StoppedAt} {
		if t.After(last) {
			last = t
		}
	}
	for _, s := range []*Stop{it.Stop, it.Sweep} {
		if s != nil && s.At.After(last) {
			last = s.At
		}
	}
	if it.Usage != nil && it.Usage.To.After(last) {
		last = it.Usage.To
	}
	if last.IsZero() {
		return time.Time{}
	}
	return last.Add(p.Retention).Truncate(time.Second)
}
