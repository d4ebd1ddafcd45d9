package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// Status is the sidecar's answer to GET /status on its control endpoint,
// for the people on the bastion (supervisor status) and their scripts.
type Status struct {
	TaskARN      string     `json:"taskArn"`
	StartedAt    time.Time  `json:"startedAt"`
	TTL          string     `json:"ttl"`
	Deadline     time.Time  `json:"deadline"`  // the one that applies now
	Reason       string     `json:"reason"`    // which limit: ttl or idle
	Remaining    string     `json:"remaining"` // until Deadline, 0s once past
	IdleTimeout  string     `json:"idleTimeout"`
	IdleDeadline *time.Time `json:"idleDeadline"` // null when idle is off
	Connections  int        `json:"connections"`  // sessions open at the last sample
	ExtendedTo   *time.Time `json:"extendedTo"`   // the TTL's deadline, null until extended
	MaxTTL       string     `json:"maxTtl"`       // the API's cap, "" until the API has told it
	Registered   bool       `json:"registered"`   // the API has recorded the TTL in the task's tag (the sweeper's)
	Warning      string     `json:"warning"`      // "" until the first of BASTION_WARN_BEFORE
}

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

// status is the Status at now; ok is false until the start is known.
func (l *live) status(now time.Time, warnBefore []time.Duration) (Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.known {
		return Status{}, false
	}
	var idle *lifetime.Idle
	s := Status{
		TaskARN: l.start.TaskARN, StartedAt: l.start.Time.UTC(), TTL: l.lt.TTL.String(),
		IdleTimeout: l.idle.Timeout.String(), Connections: l.sessions, Registered: l.registered,
	}
	if l.idle.Timeout > 0 {
		idle = &l.idle
		d := l.idle.Deadline().UTC()
		s.IdleDeadline = &d
	}
	if l.lt.TTL > l.baseTTL {
		d := l.lt.Deadline().UTC()
		s.ExtendedTo = &d
	}
	if l.maxTTL > 0 {
		s.MaxTTL = l.maxTTL.String()
	}
	deadline, limit, _ := lifetime.Applies(l.lt, idle)
	left := max(deadline.Sub(now), 0)
	s.Deadline, s.Reason = deadline.UTC(), string(limit)
	s.Remaining = left.Round(time.Second).String()
	if len(warnBefore) > 0 && left <= slices.Max(warnBefore) {
		s.Warning = fmt.Sprintf("this bastion stops in %s (%s limit)", s.Remaining, limit)
	}
	return s, true
}

// serveControl serves the control endpoint on addr until ctx ends. It never
// holds up the sidecar: a port it cannot bind is logged, and watch goes on.
func (a *app) serveControl(ctx context.Context, state *live) {
	if a.cfg.ControlAddr == controlOff {
		return
	}
	l, err := net.Listen("tcp", a.cfg.ControlAddr)
	if err != nil {
		a.log.Error("control endpoint not served; the bastion still stops on time", "addr", a.cfg.ControlAddr, "err", err.Error())
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		s, ok := state.status(a.clock.Now(), a.cfg.WarnBefore)
		if ok && a.cfg.IdleTimeout == 0 {
			// No sampling without an idle timeout: count now, for the people asking.
			sample, _ := a.countSessions()
			s.Connections = sample.Sessions
		}
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":"Unavailable","error":"the start time is not known yet"}` + "\n"))
			return
		}
		_ = json.NewEncoder(w).Encode(s)
	})
	mux.HandleFunc("POST /extend", func(w http.ResponseWriter, r *http.Request) {
		status, body := a.extendOnRequest(ctx, r, state)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: controlWriteTimeout}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("control endpoint stopped", "err", err.Error())
		}
	}()
	a.log.Info("control endpoint listening", "addr", l.Addr().String())
}
