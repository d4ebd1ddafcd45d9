package supervisor

import (
	"context"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
)

// The watch loop: the sidecar's wait from the start to the deadline that
// applies, with its samples and warnings, and the sleeps it is made of.

// untilDeadline sleeps until the deadline that applies (the TTL's, or with
// an idle timeout the idle one if earlier) and returns it and the stop
// reason. With an idle timeout it samples the sessions every
// lifetime.SampleEvery, and the task's usage every BASTION_USAGE_INTERVAL
// (in the background); each of BASTION_WARN_BEFORE is logged once as the
// deadline nears (again if activity or an extension pushed it back).
// Without either it arms one timer. An extension moving the TTL later
// needs no wake-up: at the old deadline the loop finds the new one; an
// answer that moves it earlier wakes the loop (live.moved).
func (w *watcher) untilDeadline(ctx context.Context, state *live, taskARN string) (time.Time, string, error) {
	var idle *lifetime.Idle
	if w.cfg.IdleTimeout > 0 {
		idle = &lifetime.Idle{Timeout: w.cfg.IdleTimeout, Since: state.lifetime().Start}
	}
	var seen sight
	warned := map[time.Duration]bool{}
	var nextSample time.Time // the next usage sample; zero: now
	for {
		now := w.clock.Now()
		if w.usage != nil && !now.Before(nextSample) {
			w.sampleUsage(ctx) // in the background: never a delay here
			nextSample = now.Add(w.cfg.UsageInterval)
		}
		if idle != nil {
			sample, err := w.countSessions()
			inUse := true // unknown is not idle: a read error never stops a bastion early
			if err != nil {
				w.log.Warn("cannot count sessions; counting the bastion as in use", "err", err.Error())
			} else {
				w.tell(&seen, sample)
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
		for _, w := range w.cfg.WarnBefore {
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
			w.log.Warn("the bastion stops soon", "task_arn", taskARN, "limit", string(limit),
				"stops_at", deadline.UTC().Format(time.RFC3339), "left", lifetime.Left(deadline, now).String())
		}
		if idle != nil {
			if at := now.Add(lifetime.SampleEvery(idle.Timeout)); at.Before(wake) {
				wake = at
			}
		}
		if w.usage != nil && nextSample.Before(wake) {
			wake = nextSample
		}
		if err := sleepUntilMoved(ctx, w.clock, wake, state.moved); err != nil {
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

// sleepUntil waits for the wall clock to reach t. A timer fires on the
// monotonic clock; the loop re-arms it only if the wall clock was stepped
// back meanwhile, so the deadline is never met early.
func sleepUntil(ctx context.Context, clk clock.Clock, t time.Time) error {
	for {
		left := t.Sub(clk.Now())
		if left <= 0 {
			return nil
		}
		if err := clk.Sleep(ctx, left); err != nil {
			return err
		}
	}
}
