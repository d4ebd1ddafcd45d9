package supervisor

import (
	"strings"
	"testing"
	"time"
)

func TestCheckHealthyBeforeDeadlineAndCachesStart(t *testing.T) {
	t.Parallel()
	meta := metadataServer(t, time.Now().Add(-time.Minute), 0)
	api := newAPIServer(t, 202)
	env := baseEnv(t, meta, api, "1h")

	if code, out := runOnce(t, env, "check"); code != 0 {
		t.Fatalf("exit %d before the deadline:\n%s", code, out)
	}
	// The start is cached: with the endpoint gone the check still knows it.
	meta.Close()
	if code, out := runOnce(t, env, "check"); code != 0 {
		t.Fatalf("cached check exit %d:\n%s", code, out)
	}
	if len(api.Hits()) != 0 {
		t.Fatal("healthy check sent a stop request")
	}
}

func TestCheckAfterDeadlineStopsAndFails(t *testing.T) {
	t.Parallel()
	startedAt := time.Now().Add(-11 * time.Second)
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, startedAt, 0), api, "10s")

	began := time.Now()
	code, out := runOnce(t, env, "check")
	if code != 1 {
		t.Fatalf("exit %d after the deadline, want 1:\n%s", code, out)
	}
	if took := time.Since(began); took > 3500*time.Millisecond {
		t.Fatalf("check took %v, over its budget", took)
	}
	hits := api.Hits()
	if len(hits) != 1 || hits[0].sigError != nil || hits[0].req.TaskARN != testTaskARN {
		t.Fatalf("hits = %+v", hits)
	}
}

func TestCheckAfterDeadlineWithAPIDownStillFailsWithinBudget(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, 503)
	env := baseEnv(t, metadataServer(t, time.Now().Add(-time.Hour), 0), api, "10s")
	began := time.Now()
	if code, out := runOnce(t, env, "check"); code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if took := time.Since(began); took > 3500*time.Millisecond {
		t.Fatalf("check took %v, over its budget", took)
	}
	if len(api.Hits()) < 2 {
		t.Fatalf("%d attempts within the budget", len(api.Hits()))
	}
}

func TestCheckMetadataDownIsNeverEarly(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, 202)
	meta := metadataServer(t, time.Now().Add(-time.Hour), 1000)
	code, out := runOnce(t, baseEnv(t, meta, api, "10s"), "check")
	if code != 0 || len(api.Hits()) != 0 {
		t.Fatalf("exit %d, %d requests; unknown start must report healthy:\n%s", code, len(api.Hits()), out)
	}
	if !strings.Contains(out, "start time unknown") {
		t.Fatalf("no warning:\n%s", out)
	}
}

// A dry run after the deadline reports healthy with a warning: a health
// check's failure is an action (ECS may replace the task), not a log line.
func TestCheckDryRun(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, time.Now().Add(-time.Hour), 0), api, "10s")
	env["BASTION_DRY_RUN"] = "true"
	delete(env, "BASTION_TERMINATE_URL")
	code, out := runOnce(t, env, "check")
	if code != 0 || len(api.Hits()) != 0 {
		t.Fatalf("exit %d, %d requests:\n%s", code, len(api.Hits()), out)
	}
	if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "dry run, not stopping the task") {
		t.Fatalf("no dry-run warning:\n%s", out)
	}
}

func TestCheckUnknownContainerExits2(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, 202)
	env := baseEnv(t, metadataServer(t, time.Now().Add(-time.Hour), 0), api, "10s")
	env["BASTION_CONTAINER"] = "ssh"
	code, out := runOnce(t, env, "check")
	if code != 2 || !strings.Contains(out, `BASTION_CONTAINER="ssh"`) || len(api.Hits()) != 0 {
		t.Fatalf("exit %d, %d requests:\n%s", code, len(api.Hits()), out)
	}
}
