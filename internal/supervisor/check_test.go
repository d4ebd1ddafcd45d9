package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
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

// restartedDocument is the real v4 sample for the test task, as the
// metadata shows it: the container created at created; with restarts > 0,
// restarted by a container restart policy at startedAt (RestartCount set,
// CreatedAt kept).
func restartedDocument(t *testing.T, created, startedAt time.Time, restarts int) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(taskmetadata.Document(testTaskARN, testClusterARN, startedAt), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc["Containers"].([]any)[0].(map[string]any)
	c["CreatedAt"] = created.UTC().Format(time.RFC3339Nano)
	if restarts > 0 {
		c["RestartCount"] = restarts
	}
	b, _ := json.Marshal(doc)
	return b
}

// The bastion container restarts (a container restart policy): the health
// check, which lives in it, keeps the first start it saw in its cache
// directory (a restart keeps the container's files), so the clock does not
// start again; with nothing remembered, it counts from the container's
// CreatedAt, a bound below the first start, never from the restart.
func TestCheckAfterAContainerRestartKeepsTheFirstStart(t *testing.T) {
	clk := clocktest.NewFake(time.Now().Truncate(time.Millisecond))
	first := clk.Now().Add(-10 * time.Minute)
	created := first.Add(-2 * time.Second)
	var doc atomic.Value
	doc.Store(restartedDocument(t, created, first, 0))
	meta := httptest.NewServer(taskmetadata.Handler(func() []byte { return doc.Load().([]byte) }))
	t.Cleanup(meta.Close)
	api := newAPIServer(t, 202)
	env := baseEnv(t, meta, api, "1h")
	var logs testenv.Buffer
	check := func(env map[string]string) error {
		a, err := newApp(env, clk, io.Discard, &logs, true)
		if err != nil {
			t.Fatal(err)
		}
		a.signal, a.containerStdout = func(int) error { return nil }, ""
		return a.check(context.Background())
	}
	if err := check(env); err != nil {
		t.Fatalf("check before the restart: %v", err)
	}
	clk.Advance(45 * time.Minute)
	doc.Store(restartedDocument(t, created, first.Add(50*time.Minute), 1)) // restarted 5 minutes ago
	if err := check(env); err != nil {
		t.Fatalf("check after the restart, before the first start's deadline: %v", err)
	}
	clk.Advance(6 * time.Minute) // first + 1h1m: the restart's start + TTL is 49 minutes away
	if err := check(env); !errors.Is(err, errExpired) {
		t.Fatalf("check past the first start's deadline = %v, want expired\n%s", err, logs.String())
	}
	hits := api.Hits()
	if len(hits) != 1 || !strings.Contains(hits[0].req.Reason, "(started "+first.UTC().Format(time.RFC3339)+")") {
		t.Fatalf("stop requests %+v, want one counting from the first start", hits)
	}
	if !strings.Contains(logs.String(), "the clock keeps the first start seen") {
		t.Fatalf("logs:\n%s", logs.String())
	}

	// Nothing remembered (another cache directory): the CreatedAt bound.
	fresh := maps.Clone(env)
	fresh["TMPDIR"] = t.TempDir()
	if err := check(fresh); !errors.Is(err, errExpired) {
		t.Fatalf("check with nothing remembered = %v, want expired", err)
	}
	if hits := api.Hits(); len(hits) != 2 || !strings.Contains(hits[1].req.Reason, "(started "+created.UTC().Format(time.RFC3339)+")") ||
		!strings.Contains(logs.String(), `container \"curl\" restarted 1 times, counted from its CreatedAt`) {
		t.Fatalf("stop requests %+v\n%s", hits, logs.String())
	}
}
