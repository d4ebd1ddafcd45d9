package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// watch is the sidecar: read the start once, sleep to the deadline, stop the
// task, then wait for ECS's SIGTERM. Whatever fails, it exits non-zero by
// deadline + grace, and the essential sidecar's exit makes ECS stop the task.
func (a *app) watch(ctx context.Context) error {
	began := a.clock.Now()
	state := newLive()
	controlCtx, stopControl := context.WithCancel(ctx)
	defer stopControl()
	a.serveControl(controlCtx, state)
	// If the start time can never be read, this process's own start bounds
	// it: ECS records a container's StartedAt before its process runs (the
	// grace absorbs any skew), so this fail-safe is never early.
	failSafeAt := began.Add(a.cfg.TTL + a.cfg.Grace)
	waitCtx, cancel := a.clock.WithDeadline(ctx, failSafeAt)
	// While the metadata is not usable, ask again at least every second
	// (taskmeta.MaxRetryDelay) and wake at began + TTL, the latest the
	// deadline can be with the default start rule: an endpoint that answers
	// late delays the stop by about a second, not by a grown backoff.
	w := a.waiter(backoff.Policy{Base: 250 * time.Millisecond, Max: taskmeta.MaxRetryDelay})
	w.Latest = began.Add(a.cfg.TTL)
	start, err := w.Wait(waitCtx)
	cancel()
	switch {
	case errors.Is(err, envconfig.ErrInvalid):
		// BASTION_CONTAINER names no container of the task: exit 2 now,
		// the essential sidecar's exit stops the task.
		a.log.Error("configuration error", "err", err.Error())
		return err
	case err != nil && ctx.Err() != nil:
		a.log.Info("signal received before the deadline, exiting")
		return nil
	case err != nil:
		return a.failSafe(fmt.Errorf("%w: start time still unknown at %s: %v", errFailSafe, failSafeAt.UTC().Format(time.RFC3339), err))
	}

	if start.Restarted != "" {
		// The first start is not shown any more, and this process (perhaps
		// itself restarted) did not see it: a bound below it counts.
		a.log.Warn("a container of the task has restarted: the clock counts from before its first start, never from the restart",
			"restarted", start.Restarted, "started_at", start.Time.UTC().Format(time.RFC3339Nano), "latest_started_at", start.Shown.UTC().Format(time.RFC3339Nano))
	}
	lt := lifetime.Lifetime{Start: start.Time, TTL: a.cfg.TTL}
	attrs := a.lifetimeAttrs(start, lt)
	a.log.Info("deadline set", attrs...)
	state.set(start, lt, a.cfg.MaxTTL)
	if a.stopper != nil {
		var registering sync.WaitGroup
		registering.Go(func() { a.registerTTL(controlCtx, state, start) })
		defer func() { stopControl(); registering.Wait() }()
	}
	deadline, reason, err := a.untilDeadline(ctx, state, start.TaskARN)
	if err != nil {
		a.log.Info("signal received before the deadline, exiting", attrs...)
		return nil
	}
	// The deadline reached, the TTL's or the idle one, and the TTL now.
	attrs = append(a.attrsAt(start, state.lifetime().TTL, deadline), "reason", reason)
	if a.cfg.DryRun {
		a.log.Warn("deadline reached; dry run, not stopping the task", attrs...)
		<-ctx.Done()
		return nil
	}
	a.log.Warn("deadline reached, stopping the task", attrs...)

	giveUp := deadline.Add(a.cfg.Grace)
	stopCtx, cancel := a.clock.WithDeadline(ctx, giveUp)
	defer cancel()
	err = a.stopper.Stop(stopCtx, stopRequest(start, reason))
	switch {
	case ctx.Err() != nil:
		a.log.Info("signal received while stopping, exiting", attrs...)
		return nil
	case err != nil:
		return a.failSafe(fmt.Errorf("%w: the task could not be stopped remotely: %v", errFailSafe, err), attrs...)
	}
	a.log.Info("stop accepted, waiting for ECS to stop the task", attrs...)
	if err := sleepUntil(ctx, a.clock, giveUp); err != nil {
		a.log.Info("signal received, exiting", attrs...)
		return nil
	}
	// Accepted, yet still running at deadline + grace: end it from here.
	return a.failSafe(fmt.Errorf("%w: stop was accepted but the task still runs at %s", errFailSafe, giveUp.UTC().Format(time.RFC3339)), attrs...)
}

// failSafe logs err, the reason for the sidecar's fail-safe exit, at ERROR
// (an operator reads the logs, not only stderr) and returns it.
func (a *app) failSafe(err error, attrs ...any) error {
	a.log.Error("fail-safe exit: ending the sidecar so that ECS stops the task", append(attrs, "err", err.Error())...)
	return err
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
