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

// Errors of StartedAt. Both are transient while a task starts: retry.
var (
	ErrNotStarted       = errors.New("taskmeta: no container has started yet")
	ErrNoSuchContainer  = errors.New("taskmeta: no such container in the task")
	errNoTaskARN        = errors.New("taskmeta: task document has no TaskARN")
	containerTypeNormal = "NORMAL"
)

// Endpoint is where the task document is served.
type Endpoint struct {
	Version int    // 4, 3 or 2
	TaskURL string // the URL of the task document
}

// Discover picks the endpoint from the container's environment:
// ECS_CONTAINER_METADATA_URI_V4, else ECS_CONTAINER_METADATA_URI, else V2URL.
func Discover(getenv func(string) string) Endpoint {
	if u := getenv("ECS_CONTAINER_METADATA_URI_V4"); u != "" {
		return Endpoint{Version: 4, TaskURL: strings.TrimRight(u, "/") + "/task"}
	}
	if u := getenv("ECS_CONTAINER_METADATA_URI"); u != "" {
		return Endpoint{Version: 3, TaskURL: strings.TrimRight(u, "/") + "/task"}
	}
	return Endpoint{Version: 2, TaskURL: V2URL}
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
}

// Container is one container of the task.
type Container struct {
	Name        string     `json:"Name"`
	Type        string     `json:"Type"`
	KnownStatus string     `json:"KnownStatus"`
	StartedAt   *time.Time `json:"StartedAt"`
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
// StartedAt, or, with no name, the earliest StartedAt among the started
// containers of type NORMAL (internal ones such as the pause container don't
// count). A container that has not started has no time; the task's
// PullStartedAt is never used, being earlier than any container's start.
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
			return *c.StartedAt, nil
		}
		if !c.normal() || !c.started() {
			continue
		}
		if earliest.IsZero() || c.StartedAt.Before(earliest) {
			earliest = *c.StartedAt
		}
	}
	if container != "" {
		return time.Time{}, fmt.Errorf("%w: %q", ErrNoSuchContainer, container)
	}
	if earliest.IsZero() {
		return time.Time{}, ErrNotStarted
	}
	return earliest, nil
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
