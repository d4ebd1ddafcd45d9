package launcher

import (
	"context"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
)

// The supervisor's container, however the task definition runs it.
func TestSupervisorContainer(t *testing.T) {
	bastion := types.ContainerDefinition{Name: aws.String("bastion"), Image: aws.String("openssh-server")}
	for _, tc := range []struct {
		name        string
		containers  []types.ContainerDefinition
		named       string
		want        string
		healthCheck bool
	}{
		{"command watch", []types.ContainerDefinition{bastion, {Name: aws.String("sup"), Command: []string{"watch"}}}, "", "sup", false},
		{"the image's own CMD (no command)", []types.ContainerDefinition{bastion, {Name: aws.String("sup"), Image: aws.String("ghcr.io/bastion-ttl/supervisor:v0.1.0")}}, "", "sup", false},
		{"entry point emptied", []types.ContainerDefinition{bastion, {Name: aws.String("sup"), Command: []string{"/supervisor", "watch"}}}, "", "sup", false},
		{"by its environment", []types.ContainerDefinition{bastion, {Name: aws.String("timer"), Image: aws.String("mirror.example/timer:1"),
			Environment: []types.KeyValuePair{{Name: aws.String("BASTION_TERMINATE_URL"), Value: aws.String("https://x/terminate")}}}}, "", "timer", false},
		{"the health check", []types.ContainerDefinition{{Name: aws.String("bastion"), HealthCheck: &types.HealthCheck{Command: []string{"CMD", "/usr/local/bin/supervisor", "check"}}}}, "", "bastion", true},
		{"named", []types.ContainerDefinition{bastion, {Name: aws.String("sup")}}, "sup", "sup", false},
	} {
		got, hc, err := supervisorContainer(&types.TaskDefinition{ContainerDefinitions: tc.containers}, tc.named)
		if err != nil || aws.ToString(got) != tc.want || hc != tc.healthCheck {
			t.Errorf("%s: %s, %v, %v; want %s", tc.name, aws.ToString(got), hc, err, tc.want)
		}
	}
	check := &types.TaskDefinition{ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("bastion"),
		HealthCheck: &types.HealthCheck{Command: []string{"CMD-SHELL", "supervisor check"}}}}}
	if got, hc, err := supervisorContainer(check, ""); err != nil || aws.ToString(got) != "bastion" || !hc {
		t.Errorf("health check: %s, %v, %v", aws.ToString(got), hc, err)
	}
	if _, _, err := supervisorContainer(&types.TaskDefinition{ContainerDefinitions: []types.ContainerDefinition{bastion}}, ""); err == nil {
		t.Error("a task definition without the supervisor passed")
	}
}

// A restart policy on the container whose exit is the fail-safe turns that
// exit into a restart: the task would not stop. It is refused, unless the
// sidecar's exit codes are ignored by it.
func TestRestartPolicyOnTheSupervisorIsRefused(t *testing.T) {
	on := func(codes ...int32) *types.ContainerRestartPolicy {
		return &types.ContainerRestartPolicy{Enabled: aws.Bool(true), IgnoredExitCodes: codes}
	}
	def := func(bastion, sup *types.ContainerRestartPolicy) *types.TaskDefinition {
		return &types.TaskDefinition{ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("bastion"), RestartPolicy: bastion}, {Name: aws.String("supervisor"), RestartPolicy: sup}}}
	}
	for _, tc := range []struct {
		name        string
		def         *types.TaskDefinition
		sup         string
		healthCheck bool
		refused     string
	}{
		{"none", def(nil, nil), "supervisor", false, ""},
		{"on the bastion only: the sidecar still ends the task", def(on(), nil), "supervisor", false, ""},
		{"disabled on the sidecar", def(nil, &types.ContainerRestartPolicy{Enabled: aws.Bool(false)}), "supervisor", false, ""},
		{"on the sidecar", def(nil, on()), "supervisor", false, `the supervisor's container "supervisor" has a restart policy`},
		{"on the sidecar, only 1 ignored", def(nil, on(1)), "supervisor", false, "add 1 and 2 to its ignoredExitCodes"},
		{"on the sidecar, 1 and 2 ignored", def(nil, on(2, 1)), "supervisor", false, ""},
		{"on the health check's container", def(on(1, 2, 143), nil), "bastion", true, `container "bastion" runs the health check and has a restart policy`},
	} {
		err := restartPolicyDefeatsFailSafe(tc.def, tc.sup, tc.healthCheck)
		if (tc.refused == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.refused)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.refused)
		}
	}
}

// A supervisor whose container is not essential stops nothing by its
// fail-safe (the sidecar's exit, or in the health-check variant the SIGTERM
// to its container's PID 1): run and connect refuse such a task definition
// (exit 2, naming the container and the task definition, saying why and
// the fix) and start nothing. A definition that leaves essential out is
// essential, as ECS reads it.
func TestRunRefusesASupervisorThatIsNotEssential(t *testing.T) {
	for _, tc := range []struct {
		name, family string
		def          map[string]any
		want         string // "" accepted
	}{
		{"sidecar essential", "sidecar", sidecarDef(map[string]any{"essential": true}, "12h"), ""},
		{"sidecar, essential left out (ECS: true)", "sidecar-default", sidecarDef(map[string]any{}, "12h"), ""},
		{"sidecar not essential", "sidecar-optional", sidecarDef(map[string]any{"essential": false}, "12h"),
			`task definition sidecar-optional: the supervisor's container "supervisor" is not essential (essential: false): its fail-safe exit, and its exit 2 on bad configuration, would stop nothing; set "essential": true on it`},
		{"health check essential", "check", healthCheckDef(map[string]any{"essential": true}, "12h"), ""},
		{"health check's container not essential", "check-optional",
			healthCheckDef(map[string]any{"essential": false}, "12h", map[string]any{"name": "logs", "image": "fluent-bit", "essential": true}),
			`task definition check-optional: container "bastion" runs the supervisor's health check and is not essential (essential: false): the fail-safe's SIGTERM to its PID 1 would end that container, not the task; set "essential": true on it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
			f.define(tc.family, tc.def)
			for _, cmd := range [][]string{
				{"run", "--task-definition", tc.family, "--wait=false"},
				{"connect", "--task-definition", tc.family, "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t))},
			} {
				before := len(f.runTasks())
				out, errs, code := f.run(200*time.Millisecond, cmd...)
				started := len(f.runTasks()) - before
				if tc.want == "" {
					if started != 1 {
						t.Errorf("%v: started %d, want 1; exit %d\n%s%s", cmd, started, code, out, errs)
					}
					continue
				}
				if code != 2 || started != 0 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
					t.Errorf("%v: exit %d, started %d; want 2, none, and one line with %q:\n%s%s", cmd, code, started, tc.want, out, errs)
				}
			}
		})
	}
}

// The only override run and connect send is the supervisor container's
// environment, with BASTION_TTL (at most the cap), BASTION_MAX_TTL (at most
// what the task definition gives the supervisor: a --max-ttl typed when the
// stack cannot be read lowers it, never raises it) and, for the sidecar,
// BASTION_IDLE_TIMEOUT: never a command, another container, a task-level
// field or another variable (the task definitions here set
// BASTION_FAILSAFE and BASTION_GRACE, which stay theirs).
func TestRunOverridesOnlyTheSupervisorsLimits(t *testing.T) {
	const noStack = "none-deployed"
	for _, tc := range []struct {
		name   string
		def    map[string]any
		args   []string
		sup    string
		want   string // the override's environment, NAME=value in order
		refuse string // "" accepted
	}{
		{"sidecar, the stack's idle timeout", sidecarDef(map[string]any{}, "12h"), []string{"--ttl", "2h"}, "supervisor",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=12h0m0s BASTION_IDLE_TIMEOUT=15m0s", ""},
		{"sidecar, --idle 0", sidecarDef(map[string]any{}, "12h"), []string{"--ttl", "2h", "--idle", "0"}, "supervisor",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=12h0m0s BASTION_IDLE_TIMEOUT=0s", ""},
		{"sidecar, --idle 30m", sidecarDef(map[string]any{}, "12h"), []string{"--ttl", "2h", "--idle", "30m"}, "supervisor",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=12h0m0s BASTION_IDLE_TIMEOUT=30m0s", ""},
		{"sidecar whose definition's cap is below the stack's", sidecarDef(map[string]any{}, "8h"), []string{"--ttl", "2h"}, "supervisor",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=8h0m0s BASTION_IDLE_TIMEOUT=15m0s", ""},
		{"sidecar, --ttl above the definition's cap", sidecarDef(map[string]any{}, "8h"), []string{"--ttl", "10h"}, "supervisor",
			"", "--ttl 10h0m0s is above BASTION_MAX_TTL 8h0m0s, which task definition bastion gives the supervisor's container \"supervisor\""},
		{"sidecar, no stack, --max-ttl above the definition's", sidecarDef(map[string]any{}, "12h"),
			[]string{"--stack", noStack, "--cluster", "bastions", "--task-definition", "bastion", "--ttl", "2h", "--max-ttl", "48h"}, "supervisor",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=12h0m0s", ""},
		{"sidecar, no stack, --max-ttl below the definition's", sidecarDef(map[string]any{}, "12h"),
			[]string{"--stack", noStack, "--cluster", "bastions", "--task-definition", "bastion", "--ttl", "2h", "--max-ttl", "6h", "--idle", "5m"}, "supervisor",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=6h0m0s BASTION_IDLE_TIMEOUT=5m0s", ""},
		{"sidecar without a cap of its own, the stack's", sidecarDef(map[string]any{}, ""), []string{"--ttl", "2h"}, "supervisor",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=12h0m0s BASTION_IDLE_TIMEOUT=15m0s", ""},
		{"sidecar without a cap of its own, no stack: a typed one is not sent", sidecarDef(map[string]any{}, ""),
			[]string{"--stack", noStack, "--cluster", "bastions", "--task-definition", "bastion", "--ttl", "2h", "--max-ttl", "48h"}, "supervisor",
			"BASTION_TTL=2h0m0s", ""},
		{"sidecar whose cap is not a duration", sidecarDef(map[string]any{}, "forever"), []string{"--ttl", "2h"}, "supervisor",
			"", `container "supervisor" sets BASTION_MAX_TTL "forever", not a positive duration`},
		{"health check: no idle timeout", healthCheckDef(map[string]any{}, "12h"), []string{"--ttl", "2h", "--idle", "30m"}, "bastion",
			"BASTION_TTL=2h0m0s BASTION_MAX_TTL=12h0m0s", ""},
		{"health check, no stack, --max-ttl above the definition's", healthCheckDef(map[string]any{}, "12h"),
			[]string{"--stack", noStack, "--cluster", "bastions", "--task-definition", "bastion", "--ttl", "1h", "--max-ttl", "48h"}, "bastion",
			"BASTION_TTL=1h0m0s BASTION_MAX_TTL=12h0m0s", ""},
		{"health check, --ttl above the definition's cap", healthCheckDef(map[string]any{}, "4h"), []string{"--ttl", "5h"}, "bastion",
			"", "--ttl 5h0m0s is above BASTION_MAX_TTL 4h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
			f.define("bastion", tc.def)
			var flags runFlags
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			if err := flags.register(fs, f.env.Environ); err != nil {
				t.Fatal(err)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			for _, exec := range []bool{false, true} { // run, and connect (which sets exec)
				flags.exec = exec
				l, err := planLaunch(context.Background(), f.env, flags)
				if tc.refuse != "" {
					if !cli.IsUsage(err) || !strings.Contains(err.Error(), tc.refuse) {
						t.Fatalf("%v: %v; want a usage error with %q", tc.args, err, tc.refuse)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%v: %v", tc.args, err)
				}
				checkOverride(t, l.in, tc.def, tc.sup, tc.want)
			}
		})
	}
}

// checkOverride fails t unless in overrides nothing but sup's environment,
// with only the launcher's variables, within the caps, as want says.
func checkOverride(t *testing.T, in *ecs.RunTaskInput, def map[string]any, sup, want string) {
	t.Helper()
	// Every field but the one container's environment is zero: a field the
	// SDK adds later is caught too.
	if in.Overrides == nil || len(in.Overrides.ContainerOverrides) != 1 {
		t.Fatalf("overrides %+v: want one container's", in.Overrides)
	}
	rest := *in.Overrides
	rest.ContainerOverrides = nil
	if !reflect.DeepEqual(rest, types.TaskOverride{}) {
		t.Fatalf("overrides %+v: want one container's, nothing else", in.Overrides)
	}
	c := in.Overrides.ContainerOverrides[0]
	others := c
	others.Name, others.Environment = nil, nil
	if aws.ToString(c.Name) != sup || !reflect.DeepEqual(others, types.ContainerOverride{}) {
		t.Fatalf("container override %+v: want only %s's environment", c, sup)
	}
	defined := map[string]string{} // the supervisor's environment in its task definition
	for _, cd := range def["containerDefinitions"].([]map[string]any) {
		if cd["name"] == sup {
			for _, kv := range cd["environment"].([]map[string]string) {
				defined[kv["name"]] = kv["value"]
			}
		}
	}
	var got []string
	seen := map[string]bool{}
	for _, kv := range c.Environment {
		name, value := aws.ToString(kv.Name), aws.ToString(kv.Value)
		got = append(got, name+"="+value)
		if seen[name] || !slices.Contains([]string{"BASTION_TTL", "BASTION_MAX_TTL", "BASTION_IDLE_TIMEOUT"}, name) {
			t.Errorf("overrides %s (twice, or not the launcher's to set)", name)
		}
		seen[name] = true
		d, err := time.ParseDuration(value)
		switch name {
		case "BASTION_TTL":
			if err != nil || d <= 0 || d > 12*time.Hour {
				t.Errorf("BASTION_TTL %s is not within the stack's cap", value)
			}
		case "BASTION_MAX_TTL":
			if m, ok := defined[name]; ok {
				if dm, _ := time.ParseDuration(m); err != nil || d > dm {
					t.Errorf("BASTION_MAX_TTL %s is above the task definition's %s", value, m)
				}
			}
		}
	}
	if strings.Join(got, " ") != want {
		t.Errorf("environment %s, want %s", strings.Join(got, " "), want)
	}
}

// What ECS answers run with is printed safe for a terminal: run-task's
// failure reasons, and the reason of a task that stops before it runs.
func TestRunShowsNoTerminalControl(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	f.failures = []types.Failure{{Reason: aws.String("RESOURCE:MEMORY" + evil), Detail: aws.String(evil)}}
	out, errs, code := f.run(5*time.Second, "run")
	if code != 1 || !strings.Contains(errs, `run-task started nothing: RESOURCE:MEMORY\x1b]0;pwned`) {
		t.Fatalf("exit %d, want 1 and the failure as escapes:\n%s%s", code, out, errs)
	}
	terminalSafe(t, "run's output", out+errs)

	f.failures = nil
	f.started = func(arn string) ecsapi.Task {
		return ecsapi.Task{ARN: arn, ClusterARN: fakeCluster, LastStatus: "STOPPED", DesiredStatus: "STOPPED", StoppedReason: evil}
	}
	out, errs, code = f.run(5*time.Second, "run")
	if code != 1 || !strings.Contains(errs, `the task stopped before it ran: \x1b]0;pwned`) {
		t.Fatalf("exit %d, want 1 and the reason as escapes:\n%s%s", code, out, errs)
	}
	terminalSafe(t, "run's output", out+errs)
}

// A task definition ECS does not know is bad input, told by the SDK's
// typed ClientException (the fake answers ECS's code), not by its text.
func TestRunOfAMissingTaskDefinition(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	if _, errs, code := f.run(5*time.Second, "run", "--task-definition", "nope"); code != 2 || !strings.Contains(errs, `task definition "nope" not found`) || len(f.runTasks()) != 0 {
		t.Fatalf("exit %d, %d started: %s", code, len(f.runTasks()), errs)
	}
}

// --reason (or BASTION_REASON) is kept in the reason tag, as given; a value
// an ECS tag cannot hold, or one a terminal would act on, is bad input
// naming the flag and the value, and nothing starts, by run or connect.
func TestRunTagsTheReason(t *testing.T) {
	reasonTag := func(in *ecs.RunTaskInput) (string, bool) {
		for _, tag := range in.Tags {
			if aws.ToString(tag.Key) == "bastion-ttl-reason" {
				return aws.ToString(tag.Value), true
			}
		}
		return "", false
	}
	for _, tc := range []struct {
		name    string
		environ string // BASTION_REASON
		args    []string
		want    string // the tag's value; "" none
	}{
		{"none", "", nil, ""},
		{"--reason", "", []string{"--reason", "INC-4211: read the orders replica @alice"}, "INC-4211: read the orders replica @alice"},
		{"BASTION_REASON", "migrate db/orders", nil, "migrate db/orders"},
		{"--reason over BASTION_REASON", "migrate db/orders", []string{"--reason", "réparer la base"}, "réparer la base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
			if tc.environ != "" {
				f.env.Environ["BASTION_REASON"] = tc.environ
			}
			out, errs, code := f.run(5*time.Second, append([]string{"run", "--wait=false"}, tc.args...)...)
			runs := f.runTasks()
			if code != 0 || len(runs) != 1 {
				t.Fatalf("exit %d, %d started\n%s%s", code, len(runs), out, errs)
			}
			got, tagged := reasonTag(runs[0])
			if got != tc.want || tagged != (tc.want != "") {
				t.Errorf("reason tag %q (tagged %v), want %q", got, tagged, tc.want)
			}
		})
	}
	for _, bad := range []struct{ value, why string }{
		{"ticket #42", `has '#'`},
		{"line\nbreak", `has '\n'`},
		{"esc\x1b]0;pwned\x07", `has '\x1b'`},
		{"bidi\u202eevil", `has '\u202e'`},
		{"zero\u200bwidth", `has '\u200b'`},
		{strings.Repeat("a", 257), "is 257 characters; an ECS tag value holds at most 256"},
	} {
		f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
		for _, cmd := range [][]string{
			{"run", "--wait=false", "--reason", bad.value},
			{"connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)), "--reason", bad.value},
		} {
			out, errs, code := f.run(5*time.Second, cmd...)
			if code != 2 || len(f.runTasks()) != 0 || !strings.Contains(errs, fmt.Sprintf("--reason %q", bad.value)) || !strings.Contains(errs, bad.why) || !strings.Contains(errs, "nothing started") {
				t.Errorf("%s --reason %q: exit %d, %d started; want 2, none, naming the flag, the value and %q:\n%s%s", cmd[0], bad.value, code, len(f.runTasks()), bad.why, out, errs)
			}
			terminalSafe(t, cmd[0]+"'s refusal", out+errs)
		}
	}
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	f.env.Environ["BASTION_REASON"] = "a,b"
	if _, errs, code := f.run(5*time.Second, "run", "--wait=false"); code != 2 || len(f.runTasks()) != 0 || !strings.Contains(errs, `--reason "a,b" (or BASTION_REASON) has ','`) {
		t.Errorf("BASTION_REASON a,b: exit %d, want 2 naming it:\n%s", code, errs)
	}
}
