package supervisor

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/startcache"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// checkBudget keeps a check inside ECS's default health-check timeout (5 s).
const checkBudget = 3 * time.Second

// check is the health check: healthy (nil) before the deadline; after it,
// send the stop request and report unhealthy (errExpired).
func (a *app) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkBudget)
	defer cancel()
	start, err := a.cachedStart(ctx)
	if err != nil {
		// Unknown is not expired: never fail a check early. The sweeper and
		// later checks cover a task whose metadata stays unreadable.
		a.log.Warn("start time unknown, reporting healthy", "err", err.Error())
		return nil
	}
	lt := lifetime.Lifetime{Start: start.Time, TTL: a.cfg.TTL}
	if !lt.Expired(a.clock.Now()) {
		a.log.Debug("healthy", a.lifetimeAttrs(start, lt)...)
		return nil
	}
	attrs := a.lifetimeAttrs(start, lt)
	if a.cfg.DryRun {
		a.log.Warn("deadline passed; dry run, not stopping the task", attrs...)
		return errExpired
	}
	a.log.Warn("deadline passed, stopping the task", attrs...)
	if err := a.stopper.Stop(ctx, stopRequest(start, lt)); err != nil {
		a.log.Error("stop request failed; the next check tries again", append(attrs, "err", err.Error())...)
		return fmt.Errorf("%w: %v", errExpired, err)
	}
	a.log.Info("stop accepted", attrs...)
	return errExpired
}

// cachedStart reads the start from the cache file, else from the metadata
// endpoint (then caching it), so that a healthy check makes no request.
func (a *app) cachedStart(ctx context.Context) (taskmeta.Start, error) {
	source := a.endpoint.TaskURL + "\x00" + a.cfg.Container
	path := startcache.Path(os.TempDir(), source)
	if e, ok := startcache.Load(path, source); ok {
		return taskmeta.Start{TaskARN: e.TaskARN, Cluster: e.Cluster, Time: e.StartedAt}, nil
	}
	fetchCtx, cancel := context.WithTimeout(ctx, checkBudget/2)
	defer cancel()
	start, err := a.waiter(backoff.Policy{Base: 100 * time.Millisecond, Max: 400 * time.Millisecond}).Wait(fetchCtx)
	if err != nil {
		return start, err
	}
	e := startcache.Entry{Source: source, TaskARN: start.TaskARN, Cluster: start.Cluster, StartedAt: start.Time}
	if err := startcache.Save(path, e); err != nil {
		a.log.Debug("cannot cache the start time", "path", path, "err", err.Error())
	}
	return start, nil
}
