// Package ecsevents stands in for EventBridge's ECS Task State Change
// events, which neither moto nor the ECS stand-in emit. A Source watches a
// cluster's tasks through ListTasks and DescribeTasks and, on each change
// of a task's lastStatus or desiredStatus, delivers the event AWS would
// send: the envelope, detail.version one higher than the task's last, the
// task's times, stop code, reason, containers, group, startedBy, cpu and
// memory. Only events matching the rule (the template's pattern) are
// delivered.
//
// It sees what polling sees: a task stopped between two polls goes from
// RUNNING to STOPPED in one event, where AWS sends the steps between.
package ecsevents

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ECS is what the source calls.
type ECS interface {
	ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(context.Context, *ecs.DescribeTasksInput, ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
}

// Rule is the LedgerFunction's EventBridge pattern in template.yaml: source
// aws.ecs, detail-type ECS Task State Change, the stack's cluster, and
// either startedBy or group (family:<name>) among the listed.
type Rule struct {
	ClusterARN string
	StartedBy  []string
	Groups     []string
}

// Matches says whether the rule's pattern matches the event's detail (the
// source and detail-type are always the ones it asks for).
func (r Rule) Matches(d Detail) bool {
	return d.ClusterARN == r.ClusterARN && (slices.Contains(r.StartedBy, d.StartedBy) || slices.Contains(r.Groups, d.Group))
}

// Detail is an ECS Task State Change event's detail: the members AWS's
// events carry that the local ECS can give.
type Detail struct {
	TaskARN           string      `json:"taskArn"`
	ClusterARN        string      `json:"clusterArn"`
	TaskDefinitionARN string      `json:"taskDefinitionArn,omitempty"`
	Group             string      `json:"group,omitempty"`
	StartedBy         string      `json:"startedBy,omitempty"`
	LaunchType        string      `json:"launchType,omitempty"`
	CPU               string      `json:"cpu,omitempty"`
	Memory            string      `json:"memory,omitempty"`
	LastStatus        string      `json:"lastStatus"`
	DesiredStatus     string      `json:"desiredStatus"`
	CreatedAt         *string     `json:"createdAt,omitempty"`
	PullStartedAt     *string     `json:"pullStartedAt,omitempty"`
	ConnectivityAt    *string     `json:"connectivityAt,omitempty"`
	StartedAt         *string     `json:"startedAt,omitempty"`
	StoppingAt        *string     `json:"stoppingAt,omitempty"`
	StoppedAt         *string     `json:"stoppedAt,omitempty"`
	UpdatedAt         string      `json:"updatedAt"`
	StopCode          string      `json:"stopCode,omitempty"`
	StoppedReason     string      `json:"stoppedReason,omitempty"`
	Containers        []Container `json:"containers"`
	Version           int64       `json:"version"`
}

// Container is one container in the detail.
type Container struct {
	ContainerARN string `json:"containerArn,omitempty"`
	TaskARN      string `json:"taskArn"`
	Name         string `json:"name"`
	LastStatus   string `json:"lastStatus"`
	ExitCode     *int32 `json:"exitCode,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// Source delivers a cluster's task state changes. Set the fields, then
// Run (or Poll, one pass at a time).
type Source struct {
	ECS             ECS
	Cluster         string // name or ARN
	Region, Account string
	Rule            Rule
	// Deliver hands one event (the envelope, as Lambda receives it) to the
	// rule's target; an error leaves the change to be delivered again at
	// the next poll, as EventBridge retries.
	Deliver func(ctx context.Context, event []byte) error
	Every   time.Duration // between polls; zero: 100ms
	Now     func() time.Time

	mu   sync.Mutex
	seen map[string]*seen // by task ARN
}

// seen is what the source knows of a task: its last delivered state, and
// the times it filled in.
type seen struct {
	version                                     int64
	last, desired                               string
	firstSeen, runningAt, stoppingAt, stoppedAt time.Time
}

// Run polls until ctx is done; a failed poll is tried again at the next.
func (s *Source) Run(ctx context.Context) {
	every := s.Every
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		_ = s.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Poll looks at every task of the cluster once and delivers the changes.
func (s *Source) Poll(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]*seen{}
	}
	var arns []string
	for _, status := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		p := ecs.NewListTasksPaginator(s.ECS, &ecs.ListTasksInput{Cluster: aws.String(s.Cluster), DesiredStatus: status})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, a := range out.TaskArns {
				if !slices.Contains(arns, a) {
					arns = append(arns, a)
				}
			}
		}
	}
	for batch := range slices.Chunk(arns, 100) {
		out, err := s.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(s.Cluster), Tasks: batch})
		if err != nil {
			return err
		}
		for _, t := range out.Tasks {
			if err := s.observe(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Source) observe(ctx context.Context, t types.Task) error {
	now := s.Now()
	arn := aws.ToString(t.TaskArn)
	st := s.seen[arn]
	if st == nil {
		st = &seen{firstSeen: now}
		s.seen[arn] = st
	}
	last, desired := aws.ToString(t.LastStatus), aws.ToString(t.DesiredStatus)
	if last == st.last && desired == st.desired {
		return nil
	}
	// The times the local ECS does not keep, filled from what the source
	// saw: moto gives no createdAt, stoppingAt or stoppedAt (nor startedAt
	// without ExecLayer), the stand-in only startedAt.
	if last == "RUNNING" && st.runningAt.IsZero() {
		st.runningAt = now
	}
	if desired == "STOPPED" && st.stoppingAt.IsZero() {
		st.stoppingAt = now
	}
	if last == "STOPPED" && st.stoppedAt.IsZero() {
		st.stoppedAt = now
	}
	d := s.detail(t, st, now)
	d.Version = st.version + 1
	if s.Rule.Matches(d) {
		if err := s.Deliver(ctx, s.envelope(d, now)); err != nil {
			return fmt.Errorf("deliver %s version %d: %w", arn, d.Version, err)
		}
	}
	st.version, st.last, st.desired = d.Version, last, desired
	return nil
}

// isoTime is ECS's form in events: UTC with milliseconds.
func isoTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05.000Z")
	return &s
}

// timeOr is ECS's time when it gave one, else the source's.
func timeOr(ecsTime *time.Time, filled time.Time) *string {
	if ecsTime != nil {
		return isoTime(*ecsTime)
	}
	return isoTime(filled)
}

func (s *Source) detail(t types.Task, st *seen, now time.Time) Detail {
	d := Detail{
		TaskARN: aws.ToString(t.TaskArn), ClusterARN: aws.ToString(t.ClusterArn), TaskDefinitionARN: aws.ToString(t.TaskDefinitionArn),
		Group: aws.ToString(t.Group), StartedBy: aws.ToString(t.StartedBy), LaunchType: string(t.LaunchType),
		CPU: aws.ToString(t.Cpu), Memory: aws.ToString(t.Memory),
		LastStatus: aws.ToString(t.LastStatus), DesiredStatus: aws.ToString(t.DesiredStatus),
		StopCode: string(t.StopCode), StoppedReason: aws.ToString(t.StoppedReason),
		UpdatedAt: *isoTime(now),
	}
	// A standalone task's group is family:<family>; the stand-in gives none.
	if _, rest, ok := strings.Cut(d.TaskDefinitionARN, ":task-definition/"); d.Group == "" && ok {
		family, _, _ := strings.Cut(rest, ":")
		d.Group = "family:" + family
	}
	created := st.firstSeen
	d.CreatedAt = timeOr(t.CreatedAt, created)
	// No image pull nor network set-up here: both are the creation's time.
	d.PullStartedAt = timeOr(t.PullStartedAt, created)
	d.ConnectivityAt = timeOr(t.ConnectivityAt, created)
	d.StartedAt = timeOr(t.StartedAt, st.runningAt)
	d.StoppingAt = timeOr(t.StoppingAt, st.stoppingAt)
	d.StoppedAt = timeOr(t.StoppedAt, st.stoppedAt)
	// Both local ECSes stop a task only by StopTask, whose code ECS says is
	// UserInitiated; neither sets it.
	if d.StopCode == "" && d.DesiredStatus == "STOPPED" {
		d.StopCode = string(types.TaskStopCodeUserInitiated)
	}
	for _, c := range t.Containers {
		cs := Container{ContainerARN: aws.ToString(c.ContainerArn), TaskARN: d.TaskARN, Name: aws.ToString(c.Name),
			LastStatus: aws.ToString(c.LastStatus), ExitCode: c.ExitCode, Reason: aws.ToString(c.Reason)}
		// moto leaves its containers PENDING: they have the task's status.
		if cs.LastStatus == "" || cs.LastStatus == "PENDING" {
			cs.LastStatus = d.LastStatus
		}
		// moto gives every container exitCode 0: only a stopped one has one.
		if cs.LastStatus != "STOPPED" {
			cs.ExitCode = nil
		}
		d.Containers = append(d.Containers, cs)
	}
	return d
}

func (s *Source) envelope(d Detail, now time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": eventID(), "detail-type": "ECS Task State Change", "source": "aws.ecs",
		"account": s.Account, "time": now.UTC().Format(time.RFC3339), "region": s.Region,
		"resources": []string{d.TaskARN}, "detail": d,
	})
	return b
}

// eventID is a random UUID, as EventBridge's ids are.
func eventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
