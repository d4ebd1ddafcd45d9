package ledger

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readEvent(t *testing.T, name string) TaskStateChange {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEvent(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return e
}

// The stored events read as ECS sends them: ISO times with 2, 3 or no
// fractional digits, exit codes as numbers, unknown members ignored.
func TestParseStoredEvents(t *testing.T) {
	running := readEvent(t, "running.json")
	if running.Version != 4 || running.LastStatus != "RUNNING" || running.Family() != "sample-fargate" || running.StartedAt == nil ||
		!running.StartedAt.Equal(time.Date(2020, 1, 23, 17, 57, 58, 103e6, time.UTC)) || running.ConnectivityAt == nil || running.StoppingAt != nil {
		t.Errorf("running.json: %+v", running)
	}
	stopped := readEvent(t, "stopped-user-initiated.json")
	if stopped.Version != 9 || stopped.LastStatus != "STOPPED" || stopped.StopCode != "UserInitiated" || stopped.Family() != "Example" ||
		stopped.StoppingAt == nil || !stopped.StoppingAt.Equal(time.Date(2024, 11, 13, 21, 21, 58, 645e6, time.UTC)) ||
		!stopped.StartedAt.Equal(time.Date(2024, 11, 13, 20, 56, 36, 540e6, time.UTC)) ||
		len(stopped.Containers) != 1 || stopped.Containers[0].ExitCode == nil || *stopped.Containers[0].ExitCode != 0 {
		t.Errorf("stopped-user-initiated.json: %+v", stopped)
	}
	// The task's size and architecture: what Fargate bills (running.json
	// has no attributes member).
	if running.CPU != "256" || running.Memory != "512" || running.CPUArchitecture() != "" ||
		stopped.CPU != "512" || stopped.Memory != "1024" || stopped.CPUArchitecture() != "x86_64" {
		t.Errorf("sizes: running %s/%s %q, stopped %s/%s %q", running.CPU, running.Memory, running.CPUArchitecture(),
			stopped.CPU, stopped.Memory, stopped.CPUArchitecture())
	}
	exited := readEvent(t, "deprovisioning-essential-container-exited.json")
	if exited.Version != 4 || exited.LastStatus != "DEPROVISIONING" || exited.DesiredStatus != "STOPPED" || exited.StopCode != "EssentialContainerExited" ||
		exited.Family() != "voterintake" || exited.StoppedAt != nil || exited.Containers[0].Name != "voterintake" {
		t.Errorf("deprovisioning-essential-container-exited.json: %+v", exited)
	}
}

func TestParseEventRefusesOthers(t *testing.T) {
	for name, raw := range map[string]string{
		"scheduled":       `{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`,
		"container inst.": `{"source":"aws.ecs","detail-type":"ECS Container Instance State Change","detail":{"version":3}}`,
		"no version":      `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"taskArn":"arn:aws:ecs:eu-west-1:1:task/c/x"}}`,
		"not JSON":        `{`,
		"detail not JSON": `{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":"x"}`,
	} {
		if _, err := ParseEvent([]byte(raw)); !errors.Is(err, ErrNotTaskStateChange) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A version far beyond a task's life (a forged event) is refused: it
// would make every real event after it look older.
func TestParseEventBoundsVersion(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "running.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	for v, ok := range map[int64]bool{1: true, MaxVersion: true, MaxVersion + 1: false, 1 << 62: false} {
		ev["detail"].(map[string]any)["version"] = v
		forged, _ := json.Marshal(ev)
		if _, err := ParseEvent(forged); (err == nil) != ok || (err != nil && !errors.Is(err, ErrNotTaskStateChange)) {
			t.Errorf("version %d: %v", v, err)
		}
	}
}

// Only the function's cluster, in its region, with the task in that
// cluster: what a direct invocation could claim otherwise is dropped.
func TestRecorderKeepsToItsCluster(t *testing.T) {
	r := &Recorder{Cluster: "bastions", Region: "eu-west-1"}
	const cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	const task = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		cluster, task string
		ours          bool
	}{
		{cluster, task, true},
		{"arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "arn:aws:ecs:eu-west-1:123456789012:task/prod/0123456789abcdef0123456789abcdef", false},
		{"arn:aws:ecs:us-east-1:123456789012:cluster/bastions", "arn:aws:ecs:us-east-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef", false},
		{cluster, "arn:aws:ecs:eu-west-1:123456789012:task/prod/0123456789abcdef0123456789abcdef", false},
		{cluster, "arn:aws:ecs:eu-west-1:444455556666:task/bastions/0123456789abcdef0123456789abcdef", false},
		{cluster, "arn:aws:ecs:eu-west-1:123456789012:task/0123456789abcdef0123456789abcdef", false},
		{"bastions", task, false},
	} {
		if got := r.ours(TaskStateChange{ClusterARN: c.cluster, TaskARN: c.task}); got != c.ours {
			t.Errorf("cluster %s, task %s: ours %v", c.cluster, c.task, got)
		}
	}
}
