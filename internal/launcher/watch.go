package launcher

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// watch looks at the bastion every 5 polls (15 s), and when it stops,
// ends the connection's live context with the reason ECS gives
// (errBastionStopped, its cause).
func (c *connection) watch(live context.Context, end context.CancelCauseFunc) {
	every := 5 * c.env.Poll
	if every <= 0 {
		every = 15 * time.Second
	}
	for c.env.Clock.Sleep(live, every) == nil {
		if reason, gone := c.gone(live); gone {
			end(c.stoppedErr(reason))
			return
		}
	}
}

// gone reports whether the bastion stopped (or is stopping), and why. A
// running one's TTL tag is read too, by the rule ls and the sweeper read it
// (ttltag.Lifetime under the cap): an extension (or the API's cap) moves
// the deadline, which connect then tells and warns of anew.
func (c *connection) gone(ctx context.Context) (string, bool) {
	out, err := c.env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(c.cluster), Tasks: []string{c.arn}, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil {
		return "", false // unknown: the session itself tells
	}
	if len(out.Tasks) == 0 {
		return "ECS no longer knows it", true
	}
	t := out.Tasks[0]
	if aws.ToString(t.DesiredStatus) == "STOPPED" || aws.ToString(t.LastStatus) == "STOPPED" {
		return cmp.Or(strings.Trim(stopReasons(t), "; "), "no reason given"), true
	}
	value, marked := ttltag.Find(t.Tags)
	life, _ := ttltag.Lifetime(value, aws.ToTime(t.StartedAt), c.maxTTL)
	if !marked || life.TTL <= 0 || t.StartedAt == nil {
		return "", false
	}
	d := life.Deadline()
	c.mu.Lock()
	moved := !d.Equal(c.deadline)
	c.deadline = d
	c.mu.Unlock()
	if moved {
		fmt.Fprintf(c.out(), "the bastion's TTL is now %s: it stops at %s, %s left\n", life.TTL, when(d), lifetime.LeftText(d, c.env.Clock.Now()))
		select {
		case c.rearm <- struct{}{}:
		default:
		}
	}
	return "", false
}

// warn says when the deadline is near, at each mark before it; when the
// deadline moves, at the marks before the new one.
func (c *connection) warn(ctx context.Context) {
	for {
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-c.rearm:
				cancel()
			case <-sctx.Done():
			}
		}()
		c.warnBefore(sctx, c.stopsAt())
		rearmed := sctx.Err() != nil && ctx.Err() == nil
		cancel()
		if !rearmed {
			select {
			case <-c.rearm:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (c *connection) warnBefore(ctx context.Context, deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	clk := c.env.Clock
	marks := slices.Clone(c.ce.WarnBefore)
	if marks == nil {
		marks = []time.Duration{10 * time.Minute, time.Minute}
	}
	slices.SortFunc(marks, func(a, b time.Duration) int { return int(b - a) })
	for _, m := range marks {
		wait := deadline.Add(-m).Sub(clk.Now())
		if wait < 0 {
			continue // past that mark already: the ready line said what is left
		}
		if clk.Sleep(ctx, wait) != nil {
			return
		}
		fmt.Fprintf(c.out(), "warning: the bastion %s stops in %s (at %s)\n", taskID(c.arn), lifetime.LeftText(deadline, clk.Now()), when(deadline))
	}
}
