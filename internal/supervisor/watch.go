package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/sessions"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
	taskusage "github.com/bastion-ttl/bastion-ttl/internal/usage"
)

// watcher is the sidecar, supervisor watch: it reads the start once, sleeps
// to the deadline (loop.go), stops the task, and meanwhile serves the
// control endpoint (control.go) and the extensions (extension.go).
type watcher struct {
	cfg     config
	log     *slog.Logger
	clock   clock.Clock
	meta    metadata
	stopper *stopclient.Client // nil in dry run

	// Where sessions are counted from (idle.go); tests swap them.
	procRoot     string // /proc
	execAgentDir string // whose presence says the task has ECS Exec (sessions.ExecAgentDir)
	samplerMu    sync.Mutex
	sampler      *sessions.Sampler // the watch loop and GET /status both count

	extending       chan struct{}  // holds a token while an extension is asked (extension.go)
	registerBackoff backoff.Policy // spaces the registration's attempts

	usage    *taskusage.Sampler // nil: no usage sampled (off, or dry run) (usage.go)
	sampling atomic.Bool        // a sample is in flight
	samples  sync.WaitGroup     // the samples in flight
}

func newWatcher(environ map[string]string, clk clock.Clock, logTo io.Writer) (*watcher, error) {
	cfg, err := loadConfig(environ, true)
	if err != nil {
		return nil, err
	}
	log := logging.New(logTo, cfg.LogFormat, cfg.level)
	w := &watcher{
		cfg:             cfg,
		log:             log,
		clock:           clk,
		meta:            newMetadata(cfg, environ, clk, log),
		procRoot:        "/proc",
		execAgentDir:    sessions.ExecAgentDir,
		extending:       make(chan struct{}, 1),
		registerBackoff: registerBackoff,
	}
	if !cfg.DryRun {
		if w.stopper, err = newStopper(cfg, environ, clk, log); err != nil {
			return nil, err
		}
		if cfg.UsageInterval > 0 {
			w.usage = w.meta.sampler()
		}
	}
	return w, nil
}

// run is the sidecar's life: read the start once, sleep to the deadline,
// stop the task, then wait for ECS's SIGTERM. Whatever fails, it exits
// non-zero by deadline + grace, and the essential sidecar's exit makes ECS
// stop the task.
func (w *watcher) run(ctx context.Context) error {
	began := w.clock.Now()
	state := newLive()
	controlCtx, stopControl := context.WithCancel(ctx)
	defer stopControl()
	w.serveControl(controlCtx, state)
	defer func() { stopControl(); w.samples.Wait() }()
	// If the start time can never be read, this process's own start bounds
	// it: ECS records a container's StartedAt before its process runs (the
	// grace absorbs any skew), so this fail-safe is never early.
	failSafeAt := began.Add(w.cfg.TTL + w.cfg.Grace)
	waitCtx, cancel := w.clock.WithDeadline(ctx, failSafeAt)
	// While the metadata is not usable, ask again at least every second
	// (taskmeta.MaxRetryDelay) and wake at began + TTL, the latest the
	// deadline can be with the default start rule: an endpoint that answers
	// late delays the stop by about a second, not by a grown backoff.
	waiter := w.meta.waiter(backoff.Policy{Base: 250 * time.Millisecond, Max: taskmeta.MaxRetryDelay})
	waiter.Latest = began.Add(w.cfg.TTL)
	start, err := waiter.Wait(waitCtx)
	cancel()
	switch {
	case errors.Is(err, envconfig.ErrInvalid):
		// BASTION_CONTAINER names no container of the task: exit 2 now,
		// the essential sidecar's exit stops the task.
		w.log.Error("configuration error", "err", err.Error())
		return err
	case err != nil && ctx.Err() != nil:
		w.log.Info("signal received before the deadline, exiting")
		return nil
	case err != nil:
		return w.failSafe(fmt.Errorf("%w: start time still unknown at %s: %v", errFailSafe, failSafeAt.UTC().Format(time.RFC3339), err))
	}

	if start.Restarted != "" {
		// The first start is not shown any more, and this process (perhaps
		// itself restarted) did not see it: a bound below it counts.
		w.log.Warn("a container of the task has restarted: the clock counts from before its first start, never from the restart",
			"restarted", start.Restarted, "started_at", start.Time.UTC().Format(time.RFC3339Nano), "latest_started_at", start.Shown.UTC().Format(time.RFC3339Nano))
	}
	lt := lifetime.Lifetime{Start: start.Time, TTL: w.cfg.TTL}
	attrs := deadlineAttrs(start, lt.TTL, lt.Deadline(), w.clock.Now())
	w.log.Info("deadline set", attrs...)
	state.set(start, lt, w.cfg.MaxTTL)
	if w.stopper != nil {
		var registering sync.WaitGroup
		registering.Go(func() { w.registerTTL(controlCtx, state, start) })
		defer func() { stopControl(); registering.Wait() }()
	}
	deadline, reason, err := w.untilDeadline(ctx, state, start.TaskARN)
	if err != nil {
		w.log.Info("signal received before the deadline, exiting", attrs...)
		w.reportUsageAtExit(start)
		return nil
	}
	// The deadline reached, the TTL's or the idle one, and the TTL now.
	attrs = append(deadlineAttrs(start, state.lifetime().TTL, deadline, w.clock.Now()), "reason", reason)
	if w.cfg.DryRun {
		w.log.Warn("deadline reached; dry run, not stopping the task", attrs...)
		<-ctx.Done()
		return nil
	}
	w.log.Warn("deadline reached, stopping the task", attrs...)

	giveUp := deadline.Add(w.cfg.Grace)
	stopCtx, cancel := w.clock.WithDeadline(ctx, giveUp)
	defer cancel()
	err = w.stopper.Stop(stopCtx, stopRequest(start, reason, w.usageNow()))
	switch {
	case ctx.Err() != nil:
		w.log.Info("signal received while stopping, exiting", attrs...)
		w.reportUsageAtExit(start)
		return nil
	case err != nil:
		return w.failSafe(fmt.Errorf("%w: the task could not be stopped remotely: %v", errFailSafe, err), attrs...)
	}
	w.log.Info("stop accepted, waiting for ECS to stop the task", attrs...)
	if err := sleepUntil(ctx, w.clock, giveUp); err != nil {
		w.log.Info("signal received, exiting", attrs...)
		w.reportUsageAtExit(start)
		return nil
	}
	// Accepted, yet still running at deadline + grace: end it from here.
	return w.failSafe(fmt.Errorf("%w: stop was accepted but the task still runs at %s", errFailSafe, giveUp.UTC().Format(time.RFC3339)), attrs...)
}

// failSafe logs err, the reason for the sidecar's fail-safe exit, at ERROR
// (an operator reads the logs, not only stderr) and returns it.
func (w *watcher) failSafe(err error, attrs ...any) error {
	w.log.Error("fail-safe exit: ending the sidecar so that ECS stops the task", append(attrs, "err", err.Error())...)
	return err
}
