// Package taskmeta reads a task's identity and start time from the ECS task
// metadata endpoint (v4, else v3, else v2).
package taskmeta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// V2URL is the oldest task metadata path, used when no v4 or v3 variable is set.
const V2URL = "http://169.254.170.2/v2/metadata"

// V2StatsURL is the task stats beside V2URL.
const V2StatsURL = "http://169.254.170.2/v2/stats"

// Errors of StartedAt. ErrNotStarted and ErrImplausibleStart are transient
// while a task starts: retry. ErrNoSuchContainer is final (the document lists
// the task's containers and the named one is not among them): the Waiter turns
// it into a configuration error.
var (
	ErrNotStarted       = errors.New("taskmeta: no container has started yet")
	ErrImplausibleStart = errors.New("taskmeta: implausible start time")
	ErrNoSuchContainer  = errors.New("taskmeta: no such container in the task")
	errNoTaskARN        = errors.New("taskmeta: task document has no TaskARN")
)

// containerTypeNormal is the Type of an application container (not the
// pause or other containers ECS adds).
const containerTypeNormal = "NORMAL"

// ClockErrorBound is how far a StartedAt may lie ahead of this process's
// clock and still be believed: the ECS agent stamps it with its own clock,
// which on Fargate is the same machine's and elsewhere is kept in sync, so
// real skew is milliseconds. A start further ahead is "not usable yet" (the
// Waiter asks again); believed, it would postpone the deadline.
const ClockErrorBound = time.Second

// NoSuchContainerError is a container name the task does not have.
type NoSuchContainerError struct {
	Name string   // the name asked for
	Have []string // the names of the task's NORMAL containers
}

func (e *NoSuchContainerError) Error() string {
	return fmt.Sprintf("%v: %q (it has: %s)", ErrNoSuchContainer, e.Name, strings.Join(e.Have, ", "))
}

// Is makes errors.Is(err, ErrNoSuchContainer) true.
func (e *NoSuchContainerError) Is(target error) bool { return target == ErrNoSuchContainer }

// Endpoint is where the task document is served.
type Endpoint struct {
	Version int    // 4, 3 or 2
	TaskURL string // the URL of the task document
	// StatsURL is the URL of the task's Docker stats, a map from Docker ID
	// to each container's (package usage reads it).
	StatsURL string
}

// Discover picks the endpoint from the container's environment:
// ECS_CONTAINER_METADATA_URI_V4, else ECS_CONTAINER_METADATA_URI, else V2URL.
func Discover(getenv func(string) string) Endpoint {
	if u := getenv("ECS_CONTAINER_METADATA_URI_V4"); u != "" {
		u = strings.TrimRight(u, "/")
		return Endpoint{Version: 4, TaskURL: u + "/task", StatsURL: u + "/task/stats"}
	}
	if u := getenv("ECS_CONTAINER_METADATA_URI"); u != "" {
		u = strings.TrimRight(u, "/")
		return Endpoint{Version: 3, TaskURL: u + "/task", StatsURL: u + "/task/stats"}
	}
	return Endpoint{Version: 2, TaskURL: V2URL, StatsURL: V2StatsURL}
}

// Task is the part of the task document this project reads. Unknown fields
// are ignored; optional ones may be missing.
type Task struct {
	TaskARN       string      `json:"TaskARN"`
	Cluster       string      `json:"Cluster"`
	Family        string      `json:"Family"`
	Revision      string      `json:"Revision"`
	KnownStatus   string      `json:"KnownStatus"`
	PullStartedAt *time.Time  `json:"PullStartedAt"` // never a start time: earlier than the truth
	Containers    []Container `json:"Containers"`
	// Limits is the task's size, when its definition gives one.
	Limits *Limits `json:"Limits"`
}

// Limits is a task's size: CPU in vCPUs, Memory in MiB.
type Limits struct {
	CPU    float64 `json:"CPU"`
	Memory int64   `json:"Memory"`
}

// Container is one container of the task.
type Container struct {
	Name        string     `json:"Name"`
	Type        string     `json:"Type"`
	KnownStatus string     `json:"KnownStatus"`
	CreatedAt   *time.Time `json:"CreatedAt"`
	StartedAt   *time.Time `json:"StartedAt"` // the latest start: a restart sets it again
	// RestartCount is how often ECS restarted the container (a container
	// restart policy); absent on platforms that predate restarts.
	RestartCount int `json:"RestartCount"`
}

// Decode reads a task document.
func Decode(r io.Reader) (*Task, error) {
	var t Task
	if err := json.NewDecoder(r).Decode(&t); err != nil {
		return nil, fmt.Errorf("taskmeta: decode task: %w", err)
	}
	if t.TaskARN == "" {
		return nil, errNoTaskARN
	}
	return &t, nil
}

// StartedAt is when the bastion's clock starts: the named container's
// first start, or, with no name, the earliest first start among the started
// containers of type NORMAL (internal ones such as the pause container don't
// count). A container that has not started has no time; the task's
// PullStartedAt is never used for a container that has not restarted,
// being earlier than any container's start.
//
// A restarted container (RestartCount > 0) shows its latest start, not its
// first: believed, it would start the clock again. Its first start is then
// not in the document, and the latest bound below it that is counts
// instead: its CreatedAt (a restart starts the same container again) or
// the task's PullStartedAt, whichever is later. See Restarts.
//
// A StartedAt before its container's CreatedAt or the task's PullStartedAt
// (when given) cannot be true: the document is not usable yet
// (ErrImplausibleStart), for believing it could stop the bastion early. Every
// candidate counts, not only the earliest: skipping a bad one could make the
// start later than the truth. StartedAt does not compare with the clock; see
// StartedAtAsOf.
func (t *Task) StartedAt(container string) (time.Time, error) {
	var earliest time.Time
	for _, c := range t.Containers {
		if container != "" {
			if c.Name != container {
				continue
			}
			if !c.started() {
				return time.Time{}, fmt.Errorf("%w: container %q", ErrNotStarted, container)
			}
			if err := t.plausible(c); err != nil {
				return time.Time{}, err
			}
			return t.firstStart(c), nil
		}
		if !c.normal() || !c.started() {
			continue
		}
		if err := t.plausible(c); err != nil {
			return time.Time{}, err
		}
		if at := t.firstStart(c); earliest.IsZero() || at.Before(earliest) {
			earliest = at
		}
	}
	if container != "" {
		if len(t.Containers) == 0 {
			// A document that lists no container is incomplete, not proof
			// that the container does not exist.
			return time.Time{}, fmt.Errorf("%w: the task document lists no container yet", ErrNotStarted)
		}
		return time.Time{}, &NoSuchContainerError{Name: container, Have: t.normalNames()}
	}
	if earliest.IsZero() {
		return time.Time{}, ErrNotStarted
	}
	return earliest, nil
}

// firstStart is c's first start, or for a restarted container the latest
// bound below it that the document shows.
func (t *Task) firstStart(c Container) time.Time {
	if c.RestartCount <= 0 {
		return *c.StartedAt
	}
	var bound time.Time
	if c.CreatedAt != nil && !c.CreatedAt.IsZero() {
		bound = *c.CreatedAt
	}
	if t.PullStartedAt != nil && t.PullStartedAt.After(bound) {
		bound = *t.PullStartedAt
	}
	if bound.IsZero() || bound.After(*c.StartedAt) {
		return *c.StartedAt // nothing earlier is shown: the best there is
	}
	return bound
}

// Restarts describes the restarted containers that StartedAt(container)
// counts, for a log line; empty when none restarted. After a restart, the
// start StartedAt gives is a bound below the first start, not the first
// start itself, and LatestStartedAt is the start the document shows.
func (t *Task) Restarts(container string) string {
	var parts []string
	for _, c := range t.Containers {
		if (container != "" && c.Name != container) || (container == "" && !c.normal()) || !c.started() || c.RestartCount <= 0 {
			continue
		}
		from := "its StartedAt (no earlier time is shown)"
		switch at := t.firstStart(c); {
		case c.CreatedAt != nil && at.Equal(*c.CreatedAt):
			from = "its CreatedAt"
		case t.PullStartedAt != nil && at.Equal(*t.PullStartedAt):
			from = "the task's PullStartedAt"
		}
		parts = append(parts, fmt.Sprintf("container %q restarted %d times, counted from %s", c.Name, c.RestartCount, from))
	}
	return strings.Join(parts, "; ")
}

// LatestStartedAt is StartedAt as if no container had restarted: the
// latest start the document shows.
func (t *Task) LatestStartedAt(container string) (time.Time, error) {
	shown := *t
	shown.Containers = make([]Container, len(t.Containers))
	for i, c := range t.Containers {
		c.RestartCount = 0
		shown.Containers[i] = c
	}
	return shown.StartedAt(container)
}

// StartedAtAsOf is StartedAt, refusing as well a start later than now plus
// ClockErrorBound (ErrImplausibleStart): a start in the future would
// postpone the deadline.
func (t *Task) StartedAtAsOf(container string, now time.Time) (time.Time, error) {
	at, err := t.StartedAt(container)
	if err != nil {
		return at, err
	}
	if at.After(now.Add(ClockErrorBound)) {
		return time.Time{}, fmt.Errorf("%w: StartedAt %s is in the future (clock error bound %v)", ErrImplausibleStart,
			at.UTC().Format(time.RFC3339Nano), ClockErrorBound)
	}
	return at, nil
}

// plausible checks a started container's StartedAt against its CreatedAt and
// the task's PullStartedAt.
func (t *Task) plausible(c Container) error {
	if c.CreatedAt != nil && !c.CreatedAt.IsZero() && c.StartedAt.Before(*c.CreatedAt) {
		return fmt.Errorf("%w: container %q StartedAt %s is before its CreatedAt %s", ErrImplausibleStart,
			c.Name, c.StartedAt.UTC().Format(time.RFC3339Nano), c.CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	if t.PullStartedAt != nil && !t.PullStartedAt.IsZero() && c.StartedAt.Before(*t.PullStartedAt) {
		return fmt.Errorf("%w: container %q StartedAt %s is before the task's PullStartedAt %s", ErrImplausibleStart,
			c.Name, c.StartedAt.UTC().Format(time.RFC3339Nano), t.PullStartedAt.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// normalNames lists the names of the task's user containers.
func (t *Task) normalNames() []string {
	var names []string
	for _, c := range t.Containers {
		if c.normal() {
			names = append(names, c.Name)
		}
	}
	return names
}

func (c Container) started() bool { return c.StartedAt != nil && !c.StartedAt.IsZero() }

// normal reports whether c is a user container. Old agents omit Type; their
// internal containers are still named ~internal~ecs~...
func (c Container) normal() bool {
	if c.Type == "" {
		return !strings.HasPrefix(c.Name, "~internal~")
	}
	return c.Type == containerTypeNormal
}
