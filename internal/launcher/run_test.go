package launcher

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
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
	// The health check has no idle timeout: no override for it.
	if env := overrides(time.Hour, 12*time.Hour, "15m", true); len(env) != 2 || aws.ToString(env[1].Name) != "BASTION_MAX_TTL" || aws.ToString(env[1].Value) != "12h0m0s" {
		t.Errorf("health-check overrides %v", env)
	}
	if env := overrides(time.Hour, 12*time.Hour, "0", false); len(env) != 3 || aws.ToString(env[2].Value) != "0" {
		t.Errorf("idle off is sent: %v", env)
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
