package supervisor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
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

// checkOnce runs check in process on clk, the container's PID 1 and stdout
// swapped for a recorder and a file. It returns the PIDs signalled, what
// reached the container's log stream, and check's error.
func checkOnce(t *testing.T, env map[string]string, clk clock.Clock) ([]int, string, error) {
	t.Helper()
	var out bytes.Buffer
	c, err := newChecker(env, clk, &out)
	if err != nil {
		t.Fatal(err)
	}
	var signalled []int
	c.signal = func(pid int) error { signalled = append(signalled, pid); return nil }
	c.containerStdout = filepath.Join(t.TempDir(), "pid1-stdout")
	if err := os.WriteFile(c.containerStdout, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = c.run(context.Background())
	if c.stopper != nil && c.stopper.Log != c.log {
		t.Error("the check changed its stop client's logger: a copy must carry the decision log")
	}
	stream, _ := os.ReadFile(c.containerStdout)
	return signalled, string(stream), err
}

func TestCheckFailSafe(t *testing.T) {
	t.Parallel()
	const ttl, grace = 10 * time.Second, 5 * time.Second
	tests := []struct {
		name       string
		startedAgo time.Duration
		failSafe   string
		status     int
		wantErr    error
		signalled  bool
		inStream   []string
	}{
		{"before the deadline: healthy, nothing logged", ttl - 2*time.Second, "exit", 202, nil, false, nil},
		{"after the deadline, before grace: stop, no signal", ttl + 2*time.Second, "exit", 503, errExpired, false,
			[]string{"deadline passed, stopping the task", "stop request answered", "stop request failed"}},
		{"at deadline + grace, API down: SIGTERM to PID 1", ttl + grace + time.Second, "exit", 503, errFailSafe, true,
			[]string{"deadline passed, stopping the task", "fail-safe: the task still runs at deadline + grace"}},
		{"at deadline + grace, stop accepted yet still running: SIGTERM", ttl + grace + time.Second, "exit", 202, errFailSafe, true,
			[]string{"stop accepted", "fail-safe"}},
		{"fail-safe off", ttl + grace + time.Second, "none", 503, errExpired, false,
			[]string{"fail-safe disabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// On a fake clock: the retries of a failing API, and the
			// check's budget that ends them, take no real time.
			clk := clocktest.NewFake(time.Now())
			began := clk.Now()
			api := newAPIServer(t, tt.status)
			api.clock = clk
			env := baseEnv(t, metadataServer(t, began.Add(-tt.startedAgo), 0), api, ttl.String())
			env["BASTION_GRACE"] = grace.String()
			env["BASTION_FAILSAFE"] = tt.failSafe
			signalled, stream, err := checkOnce(t, env, clk)
			if took := clk.Now().Sub(began); took > checkBudget {
				t.Fatalf("check took %v, over its budget of %v", took, checkBudget)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("check = %v, want %v", err, tt.wantErr)
			}
			if got := len(signalled) == 1 && signalled[0] == 1; got != tt.signalled || len(signalled) > 1 {
				t.Fatalf("signalled %v, want PID 1 signalled: %v", signalled, tt.signalled)
			}
			if tt.inStream == nil && stream != "" {
				t.Fatalf("a healthy check wrote to the container's log stream:\n%s", stream)
			}
			for _, want := range tt.inStream {
				if !strings.Contains(stream, want) {
					t.Errorf("container log stream lacks %q:\n%s", want, stream)
				}
			}
		})
	}
}

// TestCheckFailSafeInPIDNamespace runs the real binary as a health check in
// a PID namespace of its own whose PID 1 stands for the bastion's main
// process (it handles SIGTERM, as sshd does). Past deadline + grace the check
// ends it; between the deadline and deadline + grace it does not.
func TestCheckFailSafeInPIDNamespace(t *testing.T) {
	t.Parallel()
	unshare := testenv.Need(t, "unshare", "apt-get install util-linux")
	if os.Geteuid() != 0 {
		if os.Getenv(testenv.StrictVar) == "1" {
			t.Fatal("a PID namespace needs root here; " + testenv.StrictVar + "=1 forbids skipping")
		}
		testenv.Skipped(t, "a PID namespace needs root: run make test as root")
	}
	// PID 1: runs one health check with its output thrown away, so that any
	// log line seen here came through /proc/1/fd/1. (In a subshell: dash
	// would otherwise point its own stdout at /dev/null during the command.)
	const pid1 = `trap 'echo "PID 1: SIGTERM"; exit 143' TERM
( exec "$SUPERVISOR" check >/dev/null 2>&1 )
echo "PID 1: check exited $?"
sleep 0.3
echo "PID 1: still running"`
	for _, tt := range []struct {
		name       string
		startedAgo time.Duration
		wantExit   int
		want       string
	}{
		{"past deadline + grace", 20 * time.Second, 143, "PID 1: SIGTERM"},
		{"past the deadline only", 12 * time.Second, 0, "PID 1: still running"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newAPIServer(t, 503)
			env := baseEnv(t, metadataServer(t, time.Now().Add(-tt.startedAgo), 0), api, "10s")
			env["BASTION_GRACE"] = "5s"
			cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "sh", "-c", pid1)
			cmd.Env = []string{"SUPERVISOR=" + binary, "PATH=/usr/bin:/bin"}
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantExit || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, tt.wantExit, tt.want, out)
			}
			if !strings.Contains(string(out), "deadline passed, stopping the task") {
				t.Fatalf("the check's decision did not reach PID 1's output:\n%s", out)
			}
		})
	}
}
