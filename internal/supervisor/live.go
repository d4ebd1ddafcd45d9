package supervisor

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// live is what watch knows, shared with the control endpoint.
type live struct {
	mu         sync.Mutex
	known      bool
	start      taskmeta.Start
	lt         lifetime.Lifetime // TTL: the configured one, or the API's answer
	baseTTL    time.Duration     // the configured TTL
	ceiling    time.Duration     // BASTION_MAX_TTL: no TTL is believed above it
	maxTTL     time.Duration     // the API's cap (at most ceiling), 0 until an answer told it
	registered bool              // an answer of the API recorded the TTL
	idle       lifetime.Idle     // Timeout 0: off
	sessions   int
	stopping   bool          // the deadline was reached: nothing moves it any more
	moved      chan struct{} // the deadline moved earlier: the watch loop looks again
}

func newLive() *live { return &live{moved: make(chan struct{}, 1)} }

func (l *live) set(start taskmeta.Start, lt lifetime.Lifetime, ceiling time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.known, l.start, l.lt, l.baseTTL, l.ceiling = true, start, lt, lt.TTL, ceiling
}

func (l *live) sample(idle *lifetime.Idle, sessions int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if idle != nil {
		l.idle = *idle
	}
	l.sessions = sessions
}

// liveView is what an extension decides on.
type liveView struct {
	start      taskmeta.Start
	lt         lifetime.Lifetime
	maxTTL     time.Duration
	registered bool
	stopping   bool
}

func (l *live) snapshot() (liveView, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return liveView{start: l.start, lt: l.lt, maxTTL: l.maxTTL, registered: l.registered, stopping: l.stopping}, l.known
}

func (l *live) lifetime() lifetime.Lifetime {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lt
}

// expire decides, at now, whether the deadline that applies has come; if so
// the bastion is stopping and no extension moves it any more. Deciding and
// extending share the lock, so an extension is either in time or refused.
func (l *live) expire(now time.Time, idle *lifetime.Idle) (deadline time.Time, limit lifetime.Limit, reason string, due bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	deadline, limit, reason = lifetime.Applies(l.lt, idle)
	if !now.Before(deadline) {
		l.stopping = true
		return deadline, limit, reason, true
	}
	return deadline, limit, reason, false
}

// adopt makes the TTL ttl, the API's answer, which the caller checked
// against what was asked, and records the API's cap (0: not told); both
// are cut to the ceiling whatever the caller did, so that no answer moves
// the deadline (and the fail-safe after it) past start + ceiling. A TTL
// shorter than before (the stack's cap is lower) wakes the watch loop. It
// reports false once the bastion is stopping.
func (l *live) adopt(ttl, maxTTL time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return false
	}
	if l.ceiling > 0 {
		ttl = min(ttl, l.ceiling)
		if maxTTL > 0 {
			maxTTL = min(maxTTL, l.ceiling)
		}
	}
	earlier := ttl < l.lt.TTL
	l.lt.TTL, l.registered = ttl, true
	if maxTTL > 0 {
		l.maxTTL = maxTTL
	}
	if earlier {
		select {
		case l.moved <- struct{}{}:
		default: // already told, or nobody waits (tests)
		}
	}
	return true
}

// status is the sidecar's answer to GET /status at now; ok is false until
// the start is known.
func (l *live) status(now time.Time, warnBefore []time.Duration) (controlapi.Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.known {
		return controlapi.Status{}, false
	}
	var idle *lifetime.Idle
	s := controlapi.Status{
		SchemaVersion: controlapi.SchemaVersion, Source: controlapi.SourceSidecar,
		TaskARN: l.start.TaskARN, StartedAt: l.start.Time.UTC(), TTL: ptr(l.lt.TTL.String()),
		IdleTimeout: ptr(l.idle.Timeout.String()), Connections: ptr(l.sessions), Registered: l.registered,
	}
	if l.idle.Timeout > 0 {
		idle = &l.idle
		s.IdleDeadline = ptr(l.idle.Deadline().UTC())
	}
	if l.lt.TTL > l.baseTTL {
		s.ExtendedTo = ptr(l.lt.Deadline().UTC())
	}
	if l.maxTTL > 0 {
		s.MaxTTL = l.maxTTL.String()
	}
	deadline, limit, _ := lifetime.Applies(l.lt, idle)
	setDeadline(&s, deadline, limit, now, warnBefore)
	return s, true
}

// setDeadline fills in the deadline that applies, which limit it is, the
// time left at now, and from the first of warnBefore on, the warning.
func setDeadline(s *controlapi.Status, deadline time.Time, limit lifetime.Limit, now time.Time, warnBefore []time.Duration) {
	left := lifetime.Left(deadline, now)
	s.Deadline, s.Reason = ptr(deadline.UTC()), ptr(string(limit))
	s.Remaining, s.RemainingSeconds = ptr(left.String()), ptr(int64(left/time.Second))
	s.Expired = !now.Before(deadline)
	if len(warnBefore) > 0 && left <= slices.Max(warnBefore) {
		s.Warning = fmt.Sprintf("%s%s (%s limit)", controlapi.WarningPrefix, left, limit)
	}
}

func ptr[T any](v T) *T { return &v }
