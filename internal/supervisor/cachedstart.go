package supervisor

import (
	"context"
	"errors"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/startcache"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// cachedStart returns the start for check. A cached entry (package
// startcache: a directory of the process's own, no symlink followed) answers
// only "not yet": it is used while it is plausible, confirmed by the
// metadata less than startcache.MaxAge ago, and its deadline has not passed.
// Otherwise the start is read from the metadata endpoint (and cached), so a
// decision to stop never rests on the cache: an earlier start written there
// cannot stop the bastion early, and a later one written once holds it at
// most MaxAge after the confirmation time it claims (never in the future).
// Only the supervisor's own user can write there at all.
func (c *checker) cachedStart(ctx context.Context) (taskmeta.Start, error) {
	source := cacheSource(c.meta.endpoint, c.cfg.Container, hostname())
	dir := c.openStartCache()
	var cached *startcache.Entry
	if dir != nil {
		defer dir.Close()
		now := c.clock.Now()
		e, err := dir.Load(source)
		if err == nil {
			err = e.Check(now, taskmeta.ClockErrorBound)
		}
		switch {
		case errors.Is(err, startcache.ErrMissing):
		case errors.Is(err, startcache.ErrStale):
			cached = &e
			c.log.Debug("cached start time not confirmed recently, reading the task metadata", "err", err.Error())
		case err != nil:
			c.log.Warn("cached start time ignored", "path", dir.Path(), "err", err.Error())
		case (lifetime.Lifetime{Start: e.StartedAt, TTL: c.cfg.TTL}).Expired(now):
			cached = &e
			c.log.Debug("cached start time says expired, confirming with the task metadata")
		default:
			return taskmeta.Start{TaskARN: e.TaskARN, Cluster: e.Cluster, Time: e.StartedAt}, nil
		}
	}
	fetchCtx, cancel := c.clock.WithDeadline(ctx, c.clock.Now().Add(checkBudget/2))
	defer cancel()
	start, err := c.meta.waiter(backoff.Policy{Base: 100 * time.Millisecond, Max: 400 * time.Millisecond}).Wait(fetchCtx)
	if err != nil {
		return start, err
	}
	if dir == nil {
		if start.Restarted != "" {
			c.log.Warn("a container of the task has restarted and no first start is remembered: the clock counts from before it",
				"restarted", start.Restarted, "started_at", start.Time.UTC().Format(time.RFC3339Nano))
		}
		return start, nil
	}
	start = c.firstStart(dir, source, start)
	if cached != nil && (!cached.StartedAt.Equal(start.Time) || cached.TaskARN != start.TaskARN) {
		c.log.Warn("cached start time differs from the task metadata's, using the metadata's",
			"path", dir.Path(), "cached_started_at", cached.StartedAt.UTC().Format(time.RFC3339Nano),
			"started_at", start.Time.UTC().Format(time.RFC3339Nano))
	}
	e := startcache.Entry{Source: source, TaskARN: start.TaskARN, Cluster: start.Cluster, StartedAt: start.Time, CheckedAt: c.clock.Now()}
	if err := dir.Save(e); err != nil {
		c.log.Debug("cannot cache the start time", "path", dir.Path(), "err", err.Error())
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
func (c *checker) firstStart(dir *startcache.Dir, source string, start taskmeta.Start) taskmeta.Start {
	key := source + "\x00first"
	now := c.clock.Now()
	rec, err := dir.Load(key)
	if err == nil || errors.Is(err, startcache.ErrStale) {
		err = rec.Check(now, taskmeta.ClockErrorBound)
	}
	known := (err == nil || errors.Is(err, startcache.ErrStale)) && rec.TaskARN == start.TaskARN
	switch {
	case start.Restarted != "" && known && !rec.StartedAt.Before(start.Time) && !rec.StartedAt.After(start.Shown):
		c.log.Info("a container of the task has restarted: the clock keeps the first start seen", "restarted", start.Restarted,
			"started_at", rec.StartedAt.UTC().Format(time.RFC3339Nano), "latest_started_at", start.Shown.UTC().Format(time.RFC3339Nano))
		start.Time = rec.StartedAt
		return start
	case start.Restarted != "":
		c.log.Warn("a container of the task has restarted and no first start is remembered: the clock counts from before it",
			"restarted", start.Restarted, "started_at", start.Time.UTC().Format(time.RFC3339Nano))
	case known && rec.StartedAt.Equal(start.Time):
		return start
	case known:
		c.log.Warn("remembered first start differs from the task metadata's, which shows no restart: using the metadata's",
			"path", dir.Path(), "remembered_started_at", rec.StartedAt.UTC().Format(time.RFC3339Nano), "started_at", start.Time.UTC().Format(time.RFC3339Nano))
	}
	e := startcache.Entry{Source: key, TaskARN: start.TaskARN, Cluster: start.Cluster, StartedAt: start.Time, CheckedAt: now}
	if err := dir.Save(e); err != nil {
		c.log.Debug("cannot remember the first start", "path", dir.Path(), "err", err.Error())
	}
	return start
}

// cacheSource is the key of the start cache: what the start is read from.
// The v2 URL is the same for every task on an instance, so the hostname
// (the task's own) is added there.
func cacheSource(ep taskmeta.Endpoint, container, hostname string) string {
	source := ep.TaskURL + "\x00" + container
	if ep.Version == 2 {
		source += "\x00" + hostname
	}
	return source
}

// openStartCache opens the start cache's directory, or returns nil when it
// is not the process's own (see package startcache): the check then reads
// the metadata every time, and says so once.
func (c *checker) openStartCache() *startcache.Dir {
	dir, err := startcache.OpenDir(c.cacheDir)
	if err != nil {
		c.cacheWarned.Do(func() {
			c.log.Warn("start cache not usable, reading the task metadata at every check", "path", c.cacheDir, "err", err.Error())
		})
		return nil
	}
	return dir
}
