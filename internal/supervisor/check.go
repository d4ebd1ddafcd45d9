package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/startcache"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// checkBudget keeps a check inside ECS's default health-check timeout (5 s).
const checkBudget = 3 * time.Second

// check is the health check: healthy (nil) before the deadline; after it,
// send the stop request and report unhealthy (errExpired). At deadline +
// grace, the task still running, it ends its container itself (errFailSafe).
func (a *app) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkBudget)
	defer cancel()
	start, err := a.cachedStart(ctx)
	if errors.Is(err, envconfig.ErrInvalid) {
		return err // e.g. a BASTION_CONTAINER the task does not have: exit 2
	}
	if err != nil {
		// Unknown is not expired: never fail a check early. The sweeper and
		// later checks cover a task whose metadata stays unreadable.
		a.log.Warn("start time unknown, reporting healthy", "err", err.Error())
		return nil
	}
	lt := lifetime.Lifetime{Start: start.Time, TTL: a.cfg.TTL}
	now := a.clock.Now()
	if !lt.Expired(now) {
		a.log.Debug("healthy", a.lifetimeAttrs(start, lt)...)
		return nil
	}

	// From here every line is a decision someone will look for later.
	log, closeLog := a.decisionLog()
	defer closeLog()
	attrs := a.lifetimeAttrs(start, lt)
	if a.cfg.DryRun {
		// Healthy on purpose: a dry run must not make ECS act on the result.
		log.Warn("deadline passed; dry run, not stopping the task", attrs...)
		return nil
	}
	giveUp := lt.Deadline().Add(a.cfg.Grace)
	log.Warn("deadline passed, stopping the task", attrs...)
	a.stopper.Log = log
	stopErr := a.stopper.Stop(ctx, stopRequest(start, lt.StopReason()))
	if stopErr != nil {
		log.Error("stop request failed; the next check tries again", append(attrs, "err", stopErr.Error())...)
	} else {
		log.Info("stop accepted", attrs...)
	}
	if now.Before(giveUp) {
		if stopErr != nil {
			return fmt.Errorf("%w: %v", errExpired, stopErr)
		}
		return errExpired
	}
	// Still running at deadline + grace: whatever the API said, the task
	// has not stopped, and ECS will not stop a standalone task for failing
	// its health check.
	if a.cfg.FailSafe == failSafeNone {
		log.Error("fail-safe disabled (BASTION_FAILSAFE=none): the task still runs past deadline + grace", attrs...)
		return fmt.Errorf("%w: the task still runs at %s", errExpired, giveUp.UTC().Format(time.RFC3339))
	}
	log.Error("fail-safe: the task still runs at deadline + grace; sending SIGTERM to the container's PID 1", append(attrs, "pid", a.containerPID)...)
	if err := a.signal(a.containerPID); err != nil {
		log.Error("fail-safe: cannot signal PID 1; the sweeper is the last line", append(attrs, "err", err.Error())...)
		return fmt.Errorf("%w: cannot signal PID %d: %v", errFailSafe, a.containerPID, err)
	}
	return fmt.Errorf("%w: sent SIGTERM to PID %d at %s", errFailSafe, a.containerPID, giveUp.UTC().Format(time.RFC3339))
}

// cachedStart returns the start for check. A cached entry (package
// startcache: a directory of the process's own, no symlink followed) answers
// only "not yet": it is used while it is plausible, confirmed by the
// metadata less than startcache.MaxAge ago, and its deadline has not passed.
// Otherwise the start is read from the metadata endpoint (and cached), so a
// decision to stop never rests on the cache: an earlier start written there
// cannot stop the bastion early, and a later one written once holds it at
// most MaxAge after the confirmation time it claims (never in the future).
// Only the supervisor's own user can write there at all.
func (a *app) cachedStart(ctx context.Context) (taskmeta.Start, error) {
	source := cacheSource(a.endpoint, a.cfg.Container, hostname())
	dir := a.openStartCache()
	var cached *startcache.Entry
	if dir != nil {
		defer dir.Close()
		now := a.clock.Now()
		e, err := dir.Load(source)
		if err == nil {
			err = e.Check(now, taskmeta.ClockErrorBound)
		}
		switch {
		case errors.Is(err, startcache.ErrMissing):
		case errors.Is(err, startcache.ErrStale):
			cached = &e
			a.log.Debug("cached start time not confirmed recently, reading the task metadata", "err", err.Error())
		case err != nil:
			a.log.Warn("cached start time ignored", "path", dir.Path(), "err", err.Error())
		case (lifetime.Lifetime{Start: e.StartedAt, TTL: a.cfg.TTL}).Expired(now):
			cached = &e
			a.log.Debug("cached start time says expired, confirming with the task metadata")
		default:
			return taskmeta.Start{TaskARN: e.TaskARN, Cluster: e.Cluster, Time: e.StartedAt}, nil
		}
	}
	fetchCtx, cancel := context.WithTimeout(ctx, checkBudget/2)
	defer cancel()
	start, err := a.waiter(backoff.Policy{Base: 100 * time.Millisecond, Max: 400 * time.Millisecond}).Wait(fetchCtx)
	if err != nil {
		return start, err
	}
	if dir == nil {
		if start.Restarted != "" {
			a.log.Warn("a container of the task has restarted and no first start is remembered: the clock counts from before it",
				"restarted", start.Restarted, "started_at", start.Time.UTC().Format(time.RFC3339Nano))
		}
		return start, nil
	}
	start = a.firstStart(dir, source, start)
	if cached != nil && (!cached.StartedAt.Equal(start.Time) || cached.TaskARN != start.TaskARN) {
		a.log.Warn("cached start time differs from the task metadata's, using the metadata's",
			"path", dir.Path(), "cached_started_at", cached.StartedAt.UTC().Format(time.RFC3339Nano),
			"started_at", start.Time.UTC().Format(time.RFC3339Nano))
	}
	e := startcache.Entry{Source: source, TaskARN: start.TaskARN, Cluster: start.Cluster, StartedAt: start.Time, CheckedAt: a.clock.Now()}
	if err := dir.Save(e); err != nil {
		a.log.Debug("cannot cache the start time", "path", dir.Path(), "err", err.Error())
	}
	return start, nil
}

// firstStart keeps the earliest start seen for the task across restarts of
// the bastion container, where the health check and its cache directory
// live (a restart starts the same container again, files kept): after a
// restart the metadata shows the new start, and only a bound below the
// first. The record is believed only when the metadata shows a restart,
// and only between that bound and the start shown; otherwise the metadata
// wins and the record is rewritten.
func (a *app) firstStart(dir *startcache.Dir, source string, start taskmeta.Start) taskmeta.Start {
	key := source + "\x00first"
	now := a.clock.Now()
	rec, err := dir.Load(key)
	if err == nil || errors.Is(err, startcache.ErrStale) {
		err = rec.Check(now, taskmeta.ClockErrorBound)
	}
	known := (err == nil || errors.Is(err, startcache.ErrStale)) && rec.TaskARN == start.TaskARN
	switch {
	case start.Restarted != "" && known && !rec.StartedAt.Before(start.Time) && !rec.StartedAt.After(start.Shown):
		a.log.Info("a container of the task has restarted: the clock keeps the first start seen", "restarted", start.Restarted,
			"started_at", rec.StartedAt.UTC().Format(time.RFC3339Nano), "latest_started_at", start.Shown.UTC().Format(time.RFC3339Nano))
		start.Time = rec.StartedAt
		return start
	case start.Restarted != "":
		a.log.Warn("a container of the task has restarted and no first start is remembered: the clock counts from before it",
			"restarted", start.Restarted, "started_at", start.Time.UTC().Format(time.RFC3339Nano))
	case known && rec.StartedAt.Equal(start.Time):
		return start
	case known:
		a.log.Warn("remembered first start differs from the task metadata's, which shows no restart: using the metadata's",
			"path", dir.Path(), "remembered_started_at", rec.StartedAt.UTC().Format(time.RFC3339Nano), "started_at", start.Time.UTC().Format(time.RFC3339Nano))
	}
	e := startcache.Entry{Source: key, TaskARN: start.TaskARN, Cluster: start.Cluster, StartedAt: start.Time, CheckedAt: now}
	if err := dir.Save(e); err != nil {
		a.log.Debug("cannot remember the first start", "path", dir.Path(), "err", err.Error())
	}
	return start
}
