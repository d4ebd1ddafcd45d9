// Package sweep is the last line of defence: it stops every running task
// marked with the bastion-ttl tag whose start + TTL + grace has passed,
// whatever happened to its supervisor. The TTL is what the tag gives by
// package ttltag's rule: its value, capped by a maximum; a value that is
// not a positive duration means the maximum.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/metrics"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// ReasonPrefix starts every stop reason the sweeper gives.
const ReasonPrefix = "bastion-ttl sweeper: "

// describeBatch is DescribeTasks' limit, and ListTasks' page size.
const describeBatch = 100

// ECS is the part of the ECS API the sweeper uses.
type ECS interface {
	ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(context.Context, *ecs.DescribeTasksInput, ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
	StopTask(context.Context, *ecs.StopTaskInput, ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// Ledger records the sweeper's stops in the bastions' ledger items
// (package ledger's Store). A failed record is logged; it never holds a
// stop back.
type Ledger interface {
	SweptStop(ctx context.Context, taskARN string, s ledger.Stop) error
}

var _ Ledger = (*ledger.Store)(nil)

// ledgerBudget bounds the record of a stop, which comes after the stop.
const ledgerBudget = time.Second

// Sweeper stops expired bastions in its clusters.
type Sweeper struct {
	ECS      ECS
	Clusters []string      // names or ARNs
	MaxTTL   time.Duration // caps every tag's TTL
	Grace    time.Duration // added to the deadline, leaving the supervisor its fail-safe window
	DryRun   bool          // report what would be stopped, stop nothing
	Parallel int           // concurrent StopTask calls; default 10
	// Reserve is left of the context's deadline: the run stops starting
	// calls then, so that it can report before the Lambda is cut off.
	Reserve time.Duration
	// Function names the function in its metrics: the run's summary line is
	// also an embedded-metric document (package metrics).
	Function string
	Clock    clock.Clock
	Log      *slog.Logger
	// Ledger records each stop; nil: no ledger (LEDGER_TABLE unset).
	Ledger Ledger
}

// Report is what a run did.
type Report struct {
	Clusters   int  `json:"clusters"`
	Scanned    int  `json:"scanned"`     // running tasks described
	Marked     int  `json:"marked"`      // of which tagged bastion-ttl
	NotStarted int  `json:"not_started"` // marked, without startedAt: never stopped
	Expired    int  `json:"expired"`     // marked and past start + TTL + grace
	Stopped    int  `json:"stopped"`     // StopTask accepted (or would be, in a dry run)
	Failed     int  `json:"failed"`      // StopTask, ListTasks or DescribeTasks failed
	NotReached int  `json:"not_reached"` // clusters or expired tasks left when time ran out
	DryRun     bool `json:"dry_run"`
}

// ErrIncomplete is returned by Run when something failed or was not reached.
var ErrIncomplete = errors.New("sweep incomplete")

// Run sweeps every cluster once and logs one summary line.
func (s *Sweeper) Run(ctx context.Context) (Report, error) {
	began := time.Now()
	rep := Report{DryRun: s.DryRun}
	work := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-s.Reserve))
		defer cancel()
	}
	r := &run{Sweeper: s, ctx: work, rep: &rep, sem: make(chan struct{}, max(1, s.parallel()))}
	for i, cluster := range s.Clusters {
		if work.Err() != nil {
			r.count(func(rep *Report) { rep.NotReached += len(s.Clusters) - i })
			s.Log.Warn("out of time: clusters not swept", "clusters", s.Clusters[i:])
			break
		}
		r.count(func(rep *Report) { rep.Clusters++ })
		r.cluster(cluster)
	}
	r.wg.Wait()

	took := time.Since(began)
	attrs := []any{
		"clusters", rep.Clusters, "scanned", rep.Scanned, "marked", rep.Marked,
		"not_started", rep.NotStarted, "expired", rep.Expired, "stopped", rep.Stopped,
		"failed", rep.Failed, "not_reached", rep.NotReached, "dry_run", rep.DryRun,
		"duration_ms", took.Milliseconds(),
	}
	// Stopped is the alarm's: a bastion its supervisor did not end. A dry
	// run stops nothing, so it counts none; Expired says what it found.
	stopped := rep.Stopped
	if rep.DryRun {
		stopped = 0
	}
	attrs = append(attrs, metrics.Attrs(time.Now(), s.Function, "",
		metrics.Metric{Name: metrics.Scanned, Unit: metrics.Count, Value: float64(rep.Scanned)},
		metrics.Metric{Name: metrics.Marked, Unit: metrics.Count, Value: float64(rep.Marked)},
		metrics.Metric{Name: metrics.Expired, Unit: metrics.Count, Value: float64(rep.Expired)},
		metrics.Metric{Name: metrics.Stopped, Unit: metrics.Count, Value: float64(stopped)},
		metrics.Metric{Name: metrics.Failed, Unit: metrics.Count, Value: float64(rep.Failed + rep.NotReached)},
		metrics.Metric{Name: metrics.Duration, Unit: metrics.Milliseconds, Value: float64(took.Milliseconds())},
	)...)
	if rep.Failed > 0 || rep.NotReached > 0 {
		s.Log.Warn("sweep incomplete", attrs...)
		return rep, fmt.Errorf("%w: %d failed, %d not reached", ErrIncomplete, rep.Failed, rep.NotReached)
	}
	s.Log.Info("sweep done", attrs...)
	return rep, nil
}

func (s *Sweeper) parallel() int {
	if s.Parallel > 0 {
		return s.Parallel
	}
	return 10
}

// run is one sweep's state; StopTask calls run concurrently, so the report
// is guarded by mu.
type run struct {
	*Sweeper
	ctx context.Context
	mu  sync.Mutex
	rep *Report
	sem chan struct{}
	wg  sync.WaitGroup
}

func (r *run) count(f func(*Report)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.rep)
}

// cluster lists the cluster's running tasks to the end, then describes them
// with their tags in batches and hands the expired bastions to stop. Listing
// comes first because stopping a task while paging can shift the pages
// (a page token is opaque: it may well be a position) and skip tasks.
func (r *run) cluster(cluster string) {
	var arns []string
	pages := ecs.NewListTasksPaginator(r.ECS, &ecs.ListTasksInput{
		Cluster:       aws.String(cluster),
		DesiredStatus: types.DesiredStatusRunning,
		MaxResults:    aws.Int32(describeBatch),
	})
	for pages.HasMorePages() {
		if r.ctx.Err() != nil {
			r.count(func(rep *Report) { rep.NotReached++ })
			r.Log.Warn("out of time: cluster not fully listed", "cluster", cluster)
			return
		}
		page, err := pages.NextPage(r.ctx)
		if err != nil {
			r.failed(cluster, "list tasks", err)
			return
		}
		arns = append(arns, page.TaskArns...)
	}
	for batch := range slices.Chunk(arns, describeBatch) {
		if r.ctx.Err() != nil {
			r.count(func(rep *Report) { rep.NotReached++ })
			r.Log.Warn("out of time: cluster not fully described", "cluster", cluster)
			return
		}
		out, err := r.ECS.DescribeTasks(r.ctx, &ecs.DescribeTasksInput{
			Cluster: aws.String(cluster),
			Tasks:   batch,
			Include: []types.TaskField{types.TaskFieldTags},
		})
		if err != nil {
			r.failed(cluster, "describe tasks", err)
			continue
		}
		for _, f := range out.Failures {
			r.describeFailure(cluster, f)
		}
		for _, task := range out.Tasks {
			r.consider(cluster, task)
		}
	}
}

// describeFailure reports a task DescribeTasks could not describe. MISSING
// is a task that ended since it was listed; anything else hides a task that
// may be an expired bastion, so the run fails.
func (r *run) describeFailure(cluster string, f types.Failure) {
	attrs := []any{"cluster", cluster, "task_arn", aws.ToString(f.Arn), "reason", aws.ToString(f.Reason), "detail", aws.ToString(f.Detail)}
	if aws.ToString(f.Reason) == "MISSING" {
		r.Log.Debug("listed task gone before it was described", attrs...)
		return
	}
	r.count(func(rep *Report) { rep.Failed++ })
	r.Log.Error("sweep: describe tasks failed for a task", attrs...)
}

func (r *run) failed(cluster, what string, err error) {
	if r.ctx.Err() != nil {
		r.count(func(rep *Report) { rep.NotReached++ })
		r.Log.Warn("out of time: cluster not fully swept", "cluster", cluster)
		return
	}
	r.count(func(rep *Report) { rep.Failed++ })
	r.Log.Error("sweep: "+what+" failed", "cluster", cluster, "err", err.Error())
}

// consider decides about one running task.
func (r *run) consider(cluster string, task types.Task) {
	arn := aws.ToString(task.TaskArn)
	value, marked := ttltag.Find(task.Tags)
	r.count(func(rep *Report) {
		rep.Scanned++
		if marked {
			rep.Marked++
		}
	})
	if !marked {
		return
	}
	if task.StartedAt == nil {
		// Without a start there is no deadline; a deadline guessed from
		// another time could be early. The next run will see it started.
		r.count(func(rep *Report) { rep.NotStarted++ })
		r.Log.Info("marked task has no startedAt: not stopped", "task_arn", arn, "last_status", aws.ToString(task.LastStatus))
		return
	}
	life, valid := ttltag.Lifetime(value, *task.StartedAt, r.MaxTTL)
	if !valid {
		r.Log.Warn("bastion-ttl tag is not a positive duration: the maximum applies",
			"task_arn", arn, "value", value, "ttl", life.TTL.String())
	}
	deadline := life.Deadline().Add(r.Grace)
	if r.Clock.Now().Before(deadline) {
		return
	}
	r.count(func(rep *Report) { rep.Expired++ })
	reason := ReasonPrefix + life.StopReason()
	if r.ctx.Err() != nil {
		r.notReached(arn)
		return
	}
	select {
	case r.sem <- struct{}{}:
	case <-r.ctx.Done():
		r.notReached(arn)
		return
	}
	r.wg.Add(1)
	go func() {
		defer func() { <-r.sem; r.wg.Done() }()
		r.stop(cluster, arn, life, deadline, reason)
	}()
}

func (r *run) notReached(arn string) {
	r.count(func(rep *Report) { rep.NotReached++ })
	r.Log.Warn("out of time: expired task not stopped", "task_arn", arn)
}

func (r *run) stop(cluster, arn string, life lifetime.Lifetime, deadline time.Time, reason string) {
	attrs := []any{"task_arn", arn, "cluster", cluster, "ttl", life.TTL.String(),
		"started_at", life.Start.UTC().Format(time.RFC3339), "deadline", deadline.UTC().Format(time.RFC3339), "reason", reason}
	if r.DryRun {
		r.count(func(rep *Report) { rep.Stopped++ })
		r.Log.Info("would stop expired bastion (dry run)", attrs...)
		return
	}
	_, err := r.ECS.StopTask(r.ctx, &ecs.StopTaskInput{
		Cluster: aws.String(cluster),
		Task:    aws.String(arn),
		Reason:  aws.String(lifetime.CutStopReason(reason)),
	})
	switch {
	case err == nil:
		r.count(func(rep *Report) { rep.Stopped++ })
		r.Log.Info("stopped expired bastion", attrs...)
		if r.Ledger != nil {
			// Bounded, as it holds a slot other stops may wait for.
			ctx, cancel := context.WithTimeout(r.ctx, ledgerBudget)
			if err := r.Ledger.SweptStop(ctx, arn, ledger.Stop{At: r.Clock.Now().UTC(), Why: lifetime.CutStopReason(reason)}); err != nil {
				r.Log.Warn("ledger: sweeper's stop not recorded", "task_arn", arn, "err", err.Error())
			}
			cancel()
		}
	case r.ctx.Err() != nil:
		r.notReached(arn)
	default:
		r.count(func(rep *Report) { rep.Failed++ })
		r.Log.Error("stop expired bastion failed", append(attrs, "err", err.Error())...)
	}
}
