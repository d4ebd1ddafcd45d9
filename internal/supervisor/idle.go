package supervisor

import (
	"context"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/sessions"
)

// countSessions counts the sessions open now: inbound connections to the
// idle ports (by default every port something in the task listens on, less
// the control endpoint's) and ECS Exec workers, where the task's processes
// are visible (pidMode task).
func (a *app) countSessions() (int, error) {
	a.samplerMu.Lock()
	defer a.samplerMu.Unlock()
	if a.sampler == nil {
		a.sampler = &sessions.Sampler{ProcRoot: a.procRoot, Ports: a.cfg.idlePorts, Exclude: []uint16{a.cfg.controlPort}}
	}
	return a.sampler.Count()
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
		idle = &lifetime.Idle{Timeout: a.cfg.IdleTimeout, LastSeen: state.lifetime().Start}
	}
	warned := map[time.Duration]bool{}
	for {
		now := a.clock.Now()
		if idle != nil {
			n, err := a.countSessions()
			if err != nil {
				// Unknown is not idle: a read error never stops a bastion early.
				a.log.Warn("cannot count sessions; counting the bastion as in use", "err", err.Error())
				n = 1
			}
			idle.Observe(now, n)
			state.sample(idle, n)
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
