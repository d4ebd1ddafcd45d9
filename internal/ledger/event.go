package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The event the ledger reads: EventBridge's envelope's source and
// detail-type.
const (
	EventSource     = "aws.ecs"
	EventDetailType = "ECS Task State Change"
)

// TaskStateChange is the detail of an ECS Task State Change event: the
// members the ledger keeps (ECS's Task, timestamps as ISO strings).
// Unknown members are ignored: ECS adds some.
type TaskStateChange struct {
	TaskARN           string               `json:"taskArn"`
	ClusterARN        string               `json:"clusterArn"`
	TaskDefinitionARN string               `json:"taskDefinitionArn"`
	Group             string               `json:"group"`
	StartedBy         string               `json:"startedBy"`
	LastStatus        string               `json:"lastStatus"`
	DesiredStatus     string               `json:"desiredStatus"`
	CreatedAt         *time.Time           `json:"createdAt"`
	ConnectivityAt    *time.Time           `json:"connectivityAt"`
	PullStartedAt     *time.Time           `json:"pullStartedAt"`
	StartedAt         *time.Time           `json:"startedAt"`
	StoppingAt        *time.Time           `json:"stoppingAt"`
	StoppedAt         *time.Time           `json:"stoppedAt"`
	StopCode          string               `json:"stopCode"`
	StoppedReason     string               `json:"stoppedReason"`
	Containers        []ContainerStateItem `json:"containers"`
	// CPU and Memory are the task's size as ECS reports it: CPU units
	// ("256") and MiB ("512"), what Fargate bills.
	CPU        string      `json:"cpu"`
	Memory     string      `json:"memory"`
	Attributes []Attribute `json:"attributes"`
	// Version grows with each change of the task; a duplicate repeats it.
	Version int64 `json:"version"`
}

// ContainerStateItem is one container in the event.
type ContainerStateItem struct {
	Name       string `json:"name"`
	LastStatus string `json:"lastStatus"`
	ExitCode   *int   `json:"exitCode"`
	Reason     string `json:"reason"`
}

// Attribute is one of the task's attributes (ecs.cpu-architecture).
type Attribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CPUArchitecture is the task's ecs.cpu-architecture attribute (x86_64,
// arm64); "" when the event has none.
func (e TaskStateChange) CPUArchitecture() string {
	for _, a := range e.Attributes {
		if a.Name == "ecs.cpu-architecture" {
			return a.Value
		}
	}
	return ""
}

// Envelope is EventBridge's envelope, as Lambda receives it.
type Envelope struct {
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// ErrNotTaskStateChange is returned by ParseEvent for any other event.
var ErrNotTaskStateChange = errors.New("not an ECS Task State Change event")

// MaxVersion bounds detail.version, far above the few changes of a task's
// life: an event with a larger one (forged) could freeze its item, every
// later real event being older.
const MaxVersion = 1 << 20

// ParseEvent reads an EventBridge event as Lambda delivers it.
func ParseEvent(raw []byte) (TaskStateChange, error) {
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return TaskStateChange{}, fmt.Errorf("%w: %v", ErrNotTaskStateChange, err)
	}
	if env.Source != EventSource || env.DetailType != EventDetailType {
		return TaskStateChange{}, fmt.Errorf("%w: source %q, detail-type %q", ErrNotTaskStateChange, env.Source, env.DetailType)
	}
	var d TaskStateChange
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return TaskStateChange{}, fmt.Errorf("%w: detail: %v", ErrNotTaskStateChange, err)
	}
	if d.TaskARN == "" || d.Version <= 0 || d.Version > MaxVersion {
		return TaskStateChange{}, fmt.Errorf("%w: no taskArn, or a version not 1 to %d", ErrNotTaskStateChange, MaxVersion)
	}
	return d, nil
}

// Family is the task definition's family: from taskDefinitionArn
// (task-definition/<family>:<revision>), else from group (family:<name>).
func (e TaskStateChange) Family() string {
	if _, rest, ok := strings.Cut(e.TaskDefinitionARN, ":task-definition/"); ok {
		family, _, _ := strings.Cut(rest, ":")
		return family
	}
	if f, ok := strings.CutPrefix(e.Group, "family:"); ok {
		return f
	}
	return ""
}
