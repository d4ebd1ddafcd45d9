package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
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
	ExtendedTo   *string    `json:"extendedTo"`   // null until extended
}

// live is what watch knows, shared with the control endpoint.
type live struct {
	mu       sync.Mutex
	known    bool
	start    taskmeta.Start
	lt       lifetime.Lifetime
	idle     lifetime.Idle // Timeout 0: off
	sessions int
}

func (l *live) set(start taskmeta.Start, lt lifetime.Lifetime) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.known, l.start, l.lt = true, start, lt
}

func (l *live) sample(idle *lifetime.Idle, sessions int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if idle != nil {
		l.idle = *idle
	}
	l.sessions = sessions
}

// status is the Status at now; ok is false until the start is known.
func (l *live) status(now time.Time) (Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.known {
		return Status{}, false
	}
	var idle *lifetime.Idle
	s := Status{
		TaskARN: l.start.TaskARN, StartedAt: l.start.Time.UTC(), TTL: l.lt.TTL.String(),
		IdleTimeout: l.idle.Timeout.String(), Connections: l.sessions,
	}
	if l.idle.Timeout > 0 {
		idle = &l.idle
		d := l.idle.Deadline().UTC()
		s.IdleDeadline = &d
	}
	deadline, limit, _ := lifetime.Applies(l.lt, idle)
	s.Deadline, s.Reason = deadline.UTC(), string(limit)
	s.Remaining = max(deadline.Sub(now), 0).Round(time.Second).String()
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
		s, ok := state.status(a.clock.Now())
		if ok && a.cfg.IdleTimeout == 0 {
			// No sampling without an idle timeout: count now, for the people asking.
			s.Connections, _ = a.countSessions()
		}
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"the start time is not known yet"}` + "\n"))
			return
		}
		_ = json.NewEncoder(w).Encode(s)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
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
