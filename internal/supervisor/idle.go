package supervisor

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/sessions"
)

// countSessions samples the sessions open now: inbound connections to the
// idle ports (by default every port something in the task listens on, less
// the control endpoint's) and ECS Exec workers, where the task's processes
// are visible (pidMode task). What it cannot see counts as in use.
func (a *app) countSessions() (sessions.Sample, error) {
	a.samplerMu.Lock()
	defer a.samplerMu.Unlock()
	if a.sampler == nil {
		a.sampler = &sessions.Sampler{
			ProcRoot: a.procRoot, Ports: a.cfg.idlePorts, Exclude: []uint16{a.cfg.controlPort},
			Exec: sessions.ExecEnabled(a.execAgentDir),
		}
	}
	sample, err := a.sampler.Count()
	sample.Unheard = slices.Clone(sample.Unheard) // the sampler's buffer
	return sample, err
}

// watchedPorts is the ports the last sample counted connections to, and
// those something listened on.
func (a *app) watchedPorts() (watched, listening []uint16) {
	a.samplerMu.Lock()
	defer a.samplerMu.Unlock()
	if a.sampler == nil {
		return nil, nil
	}
	return a.sampler.Watched(), a.sampler.Listening()
}

// sight is what the sidecar has said about the kinds of session it can
// see, so that it says each once: at the first sample, then as it changes.
type sight struct {
	told       bool
	unheard    map[uint16]bool // ERROR said; true while nothing listens yet
	execHidden bool            // ERROR said
	execShown  bool            // visible since
}

// tell logs, at the first sample, which kinds of session the sidecar can
// see; an ERROR once per configured port nothing listens on and once for
// ECS Exec sessions it cannot see, since each keeps the bastion in use;
// and when one of those comes into sight.
func (a *app) tell(s *sight, sample sessions.Sample) {
	if !s.told {
		s.told = true
		from := "every port something listens on now, less the control endpoint's"
		if a.cfg.idlePorts != nil {
			from = "BASTION_IDLE_PORTS"
		}
		exec := "not enabled for this task"
		switch {
		case sample.ExecHidden():
			exec = "enabled, workers not visible (no pidMode task): counted as in use"
		case sample.Exec:
			exec = "enabled, workers visible (pidMode task)"
		}
		watched, _ := a.watchedPorts()
		a.log.Info("sessions counted for the idle timeout", "tcp_ports", portList(watched),
			"tcp_ports_from", from, "ecs_exec", exec, "sessions", sample.Sessions)
		s.unheard = map[uint16]bool{}
	}
	for _, p := range sample.Unheard {
		if _, said := s.unheard[p]; !said {
			_, listening := a.watchedPorts()
			a.log.Error("nothing listens on a BASTION_IDLE_PORTS port: counting it as in use until something does, so idleness cannot end this bastion",
				"port", p, "listening", portList(listening))
		}
		s.unheard[p] = true
	}
	for p, waiting := range s.unheard {
		if waiting && !slices.Contains(sample.Unheard, p) {
			a.log.Info("a BASTION_IDLE_PORTS port now listens; its sessions are counted", "port", p)
			s.unheard[p] = false
		}
	}
	switch {
	case sample.ExecHidden() && !s.execHidden:
		s.execHidden = true
		a.log.Error("ECS Exec is enabled but the bastion container's processes are not visible (no pidMode task): counting ECS Exec sessions as in use, so idleness cannot end this bastion; set pidMode task")
	case s.execHidden && sample.ExecVisible && !s.execShown:
		s.execShown = true
		a.log.Info("the bastion container's processes are now visible; ECS Exec sessions are counted")
	}
}

func portList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// untilDeadline sleeps until the deadline that applies (the TTL's, or with
// an idle timeout the idle one if earlier) and returns it and the stop
// reason. With an idle timeout it samples the sessions every
// lifetime.SampleEvery; each of BASTION_WARN_BEFORE is logged once as the
// deadline nears (again if activity or an extension pushed it back).
// Without either it arms one timer. An extension moving the TTL later
// needs no wake-up: at the old deadline the loop finds the new one; an
// answer that moves it earlier wakes the loop (live.moved).
func (a *app) untilDeadline(ctx context.Context, state *live, taskARN string) (time.Time, string, error) {
	var idle *lifetime.Idle
	if a.cfg.IdleTimeout > 0 {
		idle = &lifetime.Idle{Timeout: a.cfg.IdleTimeout, Since: state.lifetime().Start}
	}
	var seen sight
	warned := map[time.Duration]bool{}
	for {
		now := a.clock.Now()
		if idle != nil {
			sample, err := a.countSessions()
			inUse := true // unknown is not idle: a read error never stops a bastion early
			if err != nil {
				a.log.Warn("cannot count sessions; counting the bastion as in use", "err", err.Error())
			} else {
				a.tell(&seen, sample)
				inUse = sample.InUse()
			}
			idle.Observe(now, inUse)
			state.sample(idle, sample.Sessions)
		}
		deadline, limit, reason, due := state.expire(now, idle)
		if due {
			return deadline, reason, nil
		}
		left := deadline.Sub(now)
		wake := deadline
		warn := false // marks passed since the last look: one line for them all
		for _, w := range a.cfg.WarnBefore {
			switch {
			case left > w:
				warned[w] = false
				if at := deadline.Add(-w); at.Before(wake) {
					wake = at
				}
			case !warned[w]:
				warned[w], warn = true, true
			}
		}
		if warn {
			a.log.Warn("the bastion stops soon", "task_arn", taskARN, "limit", string(limit),
				"stops_at", deadline.UTC().Format(time.RFC3339), "left", left.Round(time.Second).String())
		}
		if idle != nil {
			if at := now.Add(lifetime.SampleEvery(idle.Timeout)); at.Before(wake) {
				wake = at
			}
		}
		if err := sleepUntilMoved(ctx, a.clock, wake, state.moved); err != nil {
			return deadline, reason, err
		}
	}
}

// sleepUntilMoved is sleepUntil, cut short (nil) when moved receives: the
// deadline moved earlier (the stack's cap is below BASTION_TTL), and the
// loop must re-arm the stop and the warnings against it.
func sleepUntilMoved(ctx context.Context, clk clock.Clock, t time.Time, moved <-chan struct{}) error {
	sleepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-moved:
			cancel()
		case <-sleepCtx.Done():
		}
	}()
	if err := sleepUntil(sleepCtx, clk, t); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}
