package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
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
	var r controlapi.Status
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("status --json output %q: %v", out.String(), err)
	}
	if !strings.Contains(logs.String(), "task metadata not usable yet") {
		t.Fatalf("the failed first fetch was not logged to stderr: %q", logs.String())
	}
	if r.SchemaVersion != controlapi.SchemaVersion || r.Source != controlapi.SourceMetadata || r.TaskARN != testTaskARN ||
		r.Deadline == nil || !r.Deadline.Equal(startedAt.Add(30*time.Minute)) || r.Expired ||
		r.RemainingSeconds == nil || *r.RemainingSeconds < 19*60 || *r.RemainingSeconds > 20*60 || val(r.Reason) != controlapi.ReasonTTL {
		t.Fatalf("report = %+v", r)
	}

	out.Reset()
	if err := Run(context.Background(), []string{"status"}, Env{Environ: env, Stdout: &out, Stderr: &logs}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"task      " + testTaskARN, "ttl       30m0s", "stops at  " + startedAt.Add(30*time.Minute).UTC().Format(time.RFC3339) + " (TTL 30m0s)", "left      "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
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
	if d, ok := r["deadline"]; !ok || d != nil || r["ttl"] != nil || r["left"] != nil || r["remaining"] != nil || r["startedAt"] != startedAt.UTC().Format(time.RFC3339) ||
		r["schemaVersion"] != float64(controlapi.SchemaVersion) || r["source"] != string(controlapi.SourceMetadata) ||
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

// Within the warning, status --short starts with WARNING for the prompt
// hook, and the human status says it.
func TestStatusShortWarns(t *testing.T) {
	api := newAPIServer(t, 202)
	addr, _ := sidecar(t, api, time.Now().Add(-time.Minute), "6m", nil)
	awaitStatus(t, addr, func(s controlapi.Status) bool { return s.MaxTTL != "" })
	person := Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": addr}, Stderr: io.Discard}
	var short, long bytes.Buffer
	person.Stdout = &short
	if err := Run(context.Background(), []string{"status", "--short"}, person); err != nil || !strings.HasPrefix(short.String(), "WARNING: ") || !strings.Contains(short.String(), " left, stops at ") {
		t.Fatalf("status --short = %q, %v", short.String(), err)
	}
	person.Stdout = &long
	if err := Run(context.Background(), []string{"status"}, person); err != nil || !strings.Contains(strings.Join(strings.Fields(long.String()), " "), "warning this bastion stops in ") {
		t.Fatalf("status = %q, %v", long.String(), err)
	}
}

// Whatever holds the control port answers the login shell: an answer that
// is not a sidecar's, or that carries escape sequences, never reaches the
// terminal; status falls back to the task metadata.
func TestSquatterAnswersNeverReachTheTerminal(t *testing.T) {
	addr := squatter(t)
	meta := metadataServer(t, time.Now().Add(-time.Minute), 0)
	env := map[string]string{"BASTION_CONTROL_ADDR": addr, "ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603", "TMPDIR": t.TempDir()}
	var out, errs bytes.Buffer
	if err := Run(context.Background(), []string{"status"}, Env{Environ: env, Stdout: &out, Stderr: &errs}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "\x1b") || !strings.Contains(out.String(), "deadline  unknown: ") {
		t.Fatalf("status printed the squatter's answer, or not the metadata's:\n%q", out.String())
	}
	if !strings.Contains(errs.String(), "is not a sidecar's") || !strings.Contains(errs.String(), "warning") {
		t.Fatalf("no warning about the answer's warning field:\n%s", errs.String())
	}
}

// Outside a task, status says so in one line, at once.
func TestStatusOutsideATask(t *testing.T) {
	began := time.Now()
	err := Run(context.Background(), []string{"status"}, Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": testenv.FreeAddr(t)}, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "no task metadata endpoint") || cli.ExitCode(err, io.Discard, "supervisor") != 1 || time.Since(began) > 2*time.Second {
		t.Fatalf("status outside a task: %v after %v", err, time.Since(began))
	}
}

// Where only the v2 address is left (an old EC2 agent) and it answers,
// status still reads the metadata.
func TestStatusThroughTheV2Address(t *testing.T) {
	meta := metadataServer(t, time.Now().Add(-time.Minute), 0)
	var out bytes.Buffer
	s, err := newStatusCommand(map[string]string{"BASTION_CONTROL_ADDR": "off", "BASTION_TTL": "1h", "TMPDIR": t.TempDir()}, clock.System{}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.meta.endpoint.Version != 2 {
		t.Fatalf("endpoint %+v, want the v2 fallback", s.meta.endpoint)
	}
	s.meta.endpoint.TaskURL = meta.URL + "/v2/task" // the stand-in for 169.254.170.2
	if err := s.run(context.Background(), false, true); err != nil || !strings.Contains(out.String(), " left, stops at ") {
		t.Fatalf("status: %v, %q", err, out.String())
	}
}

// The status every source builds, at one fixed time, as --json, the text
// and --short print it. testdata/ pins the schema scripts and the
// profile.d hook read, and what a person sees: with and without a sidecar,
// the deadline unknown, the idle limit.
func TestStatusGolden(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 1, 0, time.UTC)
	now := t0.Add(47*time.Minute + 20*time.Second)
	start := taskmeta.Start{TaskARN: testTaskARN, Time: t0}
	warn := []time.Duration{10 * time.Minute, time.Minute}
	sidecarStatus := func(ttl time.Duration, answer bool, idle *lifetime.Idle, sessions int) controlapi.Status {
		l := newLive()
		l.set(start, lifetime.Lifetime{Start: t0, TTL: time.Hour}, 12*time.Hour)
		if answer {
			l.adopt(ttl, 12*time.Hour)
		}
		l.sample(idle, sessions)
		s, ok := l.status(now, warn)
		if !ok {
			t.Fatal("no status with the start known")
		}
		return s
	}
	cfg := config{TTL: time.Hour, WarnBefore: warn, ControlAddr: controlapi.DefaultAddr}
	expiredCfg := cfg
	expiredCfg.TTL = 30 * time.Minute
	for name, s := range map[string]controlapi.Status{
		"sidecar":              sidecarStatus(2*time.Hour+30*time.Minute, true, nil, 1),
		"sidecar-unregistered": sidecarStatus(0, false, nil, 0),
		"sidecar-idle":         sidecarStatus(2*time.Hour, true, &lifetime.Idle{Timeout: 15 * time.Minute, Since: t0.Add(40 * time.Minute)}, 0),
		"metadata":             statusFromMetadata(start, true, cfg, now),
		"metadata-expired":     statusFromMetadata(start, true, expiredCfg, now),
		"metadata-unknown":     statusFromMetadata(start, false, cfg, now),
	} {
		t.Run(name, func(t *testing.T) {
			if s.Source == controlapi.SourceSidecar {
				if err := s.Validate(); err != nil {
					t.Fatalf("the sidecar's status breaks the contract: %v", err)
				}
			}
			var j, text, short bytes.Buffer
			if err := printJSON(&j, s); err != nil {
				t.Fatal(err)
			}
			if err := printStatus(&text, s, now); err != nil {
				t.Fatal(err)
			}
			if err := printShort(&short, s); err != nil {
				t.Fatal(err)
			}
			golden(t, "status-"+name+".json", j.Bytes())
			golden(t, "status-"+name+".txt", append(text.Bytes(), append([]byte("\n$ supervisor status --short\n"), short.Bytes()...)...))
		})
	}
}
