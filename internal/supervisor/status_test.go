package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	startedAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	meta := metadataServer(t, startedAt, 1)
	env := map[string]string{"ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/x", "BASTION_TTL": "30m", "BASTION_CONTROL_ADDR": "off"}

	var out, logs bytes.Buffer
	if err := Run(context.Background(), []string{"status", "--json"}, Env{Environ: env, Stdout: &out, Stderr: &logs}); err != nil {
		t.Fatal(err)
	}
	var r statusReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("status --json output %q: %v", out.String(), err)
	}
	if !strings.Contains(logs.String(), "task metadata not usable yet") {
		t.Fatalf("the failed first fetch was not logged to stderr: %q", logs.String())
	}
	if r.TaskARN != testTaskARN || r.Deadline == nil || !r.Deadline.Equal(startedAt.Add(30*time.Minute)) || r.Expired || r.LeftSecs == nil || *r.LeftSecs < 19*60 || *r.LeftSecs > 20*60 {
		t.Fatalf("report = %+v", r)
	}

	out.Reset()
	if err := Run(context.Background(), []string{"status"}, Env{Environ: env, Stdout: &out, Stderr: &logs}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"task      " + testTaskARN, "ttl       30m0s", "deadline  " + startedAt.Add(30*time.Minute).UTC().Format(time.RFC3339), "left      "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, Env{Environ: nil, Stdout: &out, Stderr: &out}); err != nil ||
		!strings.HasPrefix(out.String(), "bastion-ttl supervisor dev (commit ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Fatalf("version = %q, %v", out.String(), err)
	}
}

// A login shell: no sidecar answers and BASTION_TTL is not set there. The
// start is known, the deadline is not: status never derives one from the
// default TTL.
func TestStatusWithoutSidecarOrTTLSaysTheDeadlineIsUnknown(t *testing.T) {
	t.Parallel()
	startedAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	meta := metadataServer(t, startedAt, 0)
	shell := map[string]string{"ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/x", "BASTION_CONTROL_ADDR": testenv.FreeAddr(t), "TMPDIR": t.TempDir()}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := Run(context.Background(), append([]string{"status"}, args...), Env{Environ: shell, Stdout: &out, Stderr: io.Discard}); err != nil {
			t.Fatalf("status %v: %v", args, err)
		}
		return out.String()
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(run("--json")), &r); err != nil {
		t.Fatal(err)
	}
	if d, ok := r["deadline"]; !ok || d != nil || r["ttl"] != nil || r["left"] != nil || r["startedAt"] != startedAt.UTC().Format(time.RFC3339) ||
		!strings.Contains(r["unknown"].(string), "BASTION_TTL is not set here") {
		t.Fatalf("status --json = %v, want \"deadline\": null", r)
	}
	deadline30m := startedAt.Add(30 * time.Minute).UTC()
	if out := run(); !strings.Contains(out, "deadline  unknown: no sidecar answers at ") || strings.Contains(out, deadline30m.Format(time.RFC3339)) {
		t.Fatalf("status:\n%s", out)
	}
	if out := run("--short"); !strings.HasPrefix(out, "deadline unknown: ") || strings.Contains(out, deadline30m.Format("15:04:05Z")) || strings.Count(out, "\n") != 1 {
		t.Fatalf("status --short = %q", out)
	}
}
