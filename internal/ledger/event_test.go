package ledger

import (
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
