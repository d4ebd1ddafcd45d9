package supervisor

import (
	"context"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// Usage: the sidecar samples the task's stats every BASTION_USAGE_INTERVAL
// (package usage) and sends the summary with the requests it makes anyway
// (registration, extensions, the stop), and once more at SIGTERM; the
// health check samples once, when it stops the task. A sample that fails
// is logged and skipped: usage never moves, delays or stops anything.

// usageExitBudget bounds the report at SIGTERM, a last sample and POST
// /usage together: ECS gives the container 30 s by default before SIGKILL.
const usageExitBudget = 2 * time.Second

// checkSampleBudget bounds the health check's one sample, within
// checkBudget: the stop request needs the rest.
const checkSampleBudget = 500 * time.Millisecond

// sampleUsage takes a usage sample in the background, unless one is in
// flight: the watch loop, which wakes for it, never waits on the endpoint.
func (w *watcher) sampleUsage(ctx context.Context) {
	if !w.sampling.CompareAndSwap(false, true) {
		return
	}
	w.samples.Go(func() {
		defer w.sampling.Store(false)
		_ = w.usage.SampleOnce(ctx)
	})
}

// usageNow is the summary so far; nil when sampling is off or has no
// sample yet. It never waits for a sample in flight.
func (w *watcher) usageNow() *stopapi.Usage {
	if w.usage == nil {
		return nil
	}
	return w.usage.Usage()
}

// reportUsageAtExit sends the usage once more as the sidecar ends on a
// signal: one last sample, then POST /usage, within usageExitBudget all
// told. Its callers run it after the stop path, never before it.
func (w *watcher) reportUsageAtExit(start taskmeta.Start) {
	if w.usage == nil || w.stopper == nil {
		return
	}
	// Bounded in real time (a request that hangs) and on the clock (the
	// client's retries sleep on it).
	ctx, cancel := context.WithTimeout(context.Background(), usageExitBudget)
	defer cancel()
	ctx, cancelClock := w.clock.WithDeadline(ctx, w.clock.Now().Add(usageExitBudget))
	defer cancelClock()
	sampleCtx, cancelSample := context.WithTimeout(ctx, usageExitBudget/2)
	_ = w.usage.SampleOnce(sampleCtx)
	cancelSample()
	u := w.usage.Usage()
	if u == nil {
		return
	}
	req := stopapi.UsageRequest{TaskARN: start.TaskARN, Cluster: stopclient.ClusterForRequest(start.TaskARN, start.Cluster), Usage: *u}
	if err := w.stopper.SendUsage(ctx, req); err != nil {
		w.log.Warn("usage not reported at exit", "task_arn", start.TaskARN, "err", err.Error())
		return
	}
	w.log.Info("usage reported at exit", "task_arn", start.TaskARN, "samples", u.Samples)
}

// sampleForStop is the health check's one sample, taken as it stops the
// task; nil when sampling is off or the read fails (logged).
func (c *checker) sampleForStop(ctx context.Context) *stopapi.Usage {
	if c.cfg.UsageInterval <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkSampleBudget)
	defer cancel()
	s := c.meta.sampler()
	if s.SampleOnce(ctx) != nil {
		return nil
	}
	return s.Usage()
}
