package examples_test

import (
	"net/url"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

// The task definitions' shape, which the supervisor's promise relies on: an
// essential sidecar running watch, or a health check running check, neither
// restarted by ECS (a restart would turn the fail-safe exit into a new
// life), the override aimed at the container that holds the configuration.
// TestExamplesConfigureTheSupervisor runs the built supervisor on the same
// files.

// container is a container definition with what these checks read.
type container struct {
	Name          string
	Essential     *bool
	Command       []string
	Environment   []keyValue
	HealthCheck   *struct{ Command []string }
	RestartPolicy *struct{ Enabled bool }
}

type shapedTaskDefinition struct {
	TaskRoleArn          string
	ContainerDefinitions []container
}

var roleARN = regexp.MustCompile(`^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$`)

func TestExampleSidecarTaskDefinition(t *testing.T) {
	var td shapedTaskDefinition
	readJSON(t, "sidecar-task-definition.json", &td)
	if !roleARN.MatchString(td.TaskRoleArn) {
		t.Errorf("taskRoleArn %q is not a role ARN", td.TaskRoleArn)
	}
	i := slices.IndexFunc(td.ContainerDefinitions, func(c container) bool { return c.Name == "supervisor" })
	if i < 0 {
		t.Fatal("no container named supervisor")
	}
	sidecar := td.ContainerDefinitions[i]
	if sidecar.Essential == nil || !*sidecar.Essential {
		t.Error("the supervisor sidecar must be essential: its fail-safe exit is what stops the task")
	}
	if sidecar.RestartPolicy != nil && sidecar.RestartPolicy.Enabled {
		t.Error("the supervisor sidecar has a restart policy: its fail-safe exit would restart it, not stop the task")
	}
	if !slices.Equal(sidecar.Command, []string{"watch"}) {
		t.Errorf("sidecar command %q, want [watch]", sidecar.Command)
	}
	env := envOf(sidecar)
	checkStackSettings(t, "supervisor container", env)
	if name := env["BASTION_CONTAINER"]; name != "" &&
		!slices.ContainsFunc(td.ContainerDefinitions, func(c container) bool { return c.Name == name }) {
		t.Errorf("BASTION_CONTAINER %q names no container of the task", name)
	}
	checkOverrideTarget(t, td, "sidecar-overrides.json", sidecar.Name)
}

// The job's task definition (docs/jobs.md): the job container essential,
// so that the task ends with the job; the bastion's sidecar beside it,
// with idleness and the control endpoint off (a job has no sessions, and
// nobody runs supervisor extend in it), its clock the job's start.
func TestExampleJobTaskDefinition(t *testing.T) {
	var td shapedTaskDefinition
	readJSON(t, "job-task-definition.json", &td)
	if !roleARN.MatchString(td.TaskRoleArn) {
		t.Errorf("taskRoleArn %q is not a role ARN", td.TaskRoleArn)
	}
	var job, sidecar *container
	for i, c := range td.ContainerDefinitions {
		switch c.Name {
		case "supervisor":
			sidecar = &td.ContainerDefinitions[i]
		case "job":
			job = &td.ContainerDefinitions[i]
		}
	}
	if job == nil || sidecar == nil || len(td.ContainerDefinitions) != 2 {
		t.Fatalf("want the containers job and supervisor, got %d", len(td.ContainerDefinitions))
	}
	for _, c := range []*container{job, sidecar} {
		if c.Essential == nil || !*c.Essential {
			t.Errorf("%s must be essential: the job's exit ends the task, and so does the supervisor's fail-safe", c.Name)
		}
		if c.RestartPolicy != nil && c.RestartPolicy.Enabled {
			t.Errorf("%s has a restart policy", c.Name)
		}
	}
	if !slices.Equal(sidecar.Command, []string{"watch"}) {
		t.Errorf("sidecar command %q, want [watch]", sidecar.Command)
	}
	env := envOf(*sidecar)
	checkStackSettings(t, "supervisor container", env)
	for name, want := range map[string]string{"BASTION_CONTAINER": "job", "BASTION_IDLE_TIMEOUT": "0", "BASTION_CONTROL_ADDR": "off"} {
		if env[name] != want {
			t.Errorf("%s %q, want %q", name, env[name], want)
		}
	}
	// The sidecar is the bastion example's, with what a job does not need turned off.
	var bastion shapedTaskDefinition
	readJSON(t, "sidecar-task-definition.json", &bastion)
	i := slices.IndexFunc(bastion.ContainerDefinitions, func(c container) bool { return c.Name == "supervisor" })
	for name, value := range envOf(bastion.ContainerDefinitions[i]) {
		if name != "BASTION_CONTAINER" && name != "BASTION_IDLE_TIMEOUT" && env[name] != value {
			t.Errorf("%s %q, the bastion example's is %q", name, env[name], value)
		}
	}
	checkOverrideTarget(t, td, "sidecar-overrides.json", sidecar.Name)
}

func TestExampleHealthCheckTaskDefinition(t *testing.T) {
	var td shapedTaskDefinition
	readJSON(t, "healthcheck-task-definition.json", &td)
	if !roleARN.MatchString(td.TaskRoleArn) {
		t.Errorf("taskRoleArn %q is not a role ARN", td.TaskRoleArn)
	}
	if len(td.ContainerDefinitions) != 1 {
		t.Fatalf("want the bastion container alone, got %d containers", len(td.ContainerDefinitions))
	}
	bastion := td.ContainerDefinitions[0]
	if bastion.HealthCheck == nil {
		t.Fatal("no healthCheck")
	}
	if bastion.RestartPolicy != nil && bastion.RestartPolicy.Enabled {
		t.Error("the health check's container has a restart policy: the check's fail-safe would restart it, not stop the task")
	}
	hc := bastion.HealthCheck.Command
	if want := []string{"CMD", copiedSupervisorPath(t), "check"}; !slices.Equal(hc, want) {
		t.Errorf("healthCheck.command %q, want the exec form %q (the path healthcheck.Dockerfile copies the supervisor to)", hc, want)
	}
	checkStackSettings(t, "bastion container", envOf(bastion))
	checkOverrideTarget(t, td, "healthcheck-overrides.json", bastion.Name)
}

// checkStackSettings asserts what examples/fill-task-definition.sh fills in
// from the stack: MaxTTL's default, and a URL on the API's route whose host
// names the region to sign for (no AWS_REGION needed).
func checkStackSettings(t *testing.T, where string, env map[string]string) {
	t.Helper()
	if env["BASTION_MAX_TTL"] != "12h" {
		t.Errorf("%s: BASTION_MAX_TTL %q, want the stack's MaxTTL default 12h", where, env["BASTION_MAX_TTL"])
	}
	u, err := url.Parse(env["BASTION_TERMINATE_URL"])
	if err != nil || u.Path != "/terminate" {
		t.Errorf("%s: BASTION_TERMINATE_URL %q does not end in the API's /terminate route", where, env["BASTION_TERMINATE_URL"])
		return
	}
	if region, err := stopclient.SigningRegion(u, func(string) string { return "" }); err != nil || region == "" {
		t.Errorf("%s: no signing region in %q: %v", where, u, err)
	}
}

// checkOverrideTarget asserts that the run-task overrides name the
// container that holds the supervisor's configuration (want).
func checkOverrideTarget(t *testing.T, td shapedTaskDefinition, path, want string) {
	t.Helper()
	var ov overrides
	readJSON(t, path, &ov)
	if len(ov.ContainerOverrides) != 1 {
		t.Fatalf("%s: want one container override, got %d", path, len(ov.ContainerOverrides))
	}
	if got := ov.ContainerOverrides[0].Name; got != want {
		t.Errorf("%s: the override targets %q, not %q, the container running the supervisor", path, got, want)
	}
}

func envOf(c container) map[string]string {
	m := map[string]string{}
	for _, kv := range c.Environment {
		m[kv.Name] = kv.Value
	}
	return m
}

// copiedSupervisorPath is where healthcheck.Dockerfile puts the binary.
func copiedSupervisorPath(t *testing.T) string {
	b, err := os.ReadFile("healthcheck.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^COPY --from=\S+ /supervisor (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("healthcheck.Dockerfile: no COPY --from=... /supervisor <path>")
	}
	return string(m[1])
}
