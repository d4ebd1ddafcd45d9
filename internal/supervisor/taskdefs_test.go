package supervisor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

// The example task definitions in examples/ are what users copy: every
// variable they set must be one the supervisor reads, with a value it
// accepts, and every command one it runs.

type taskDefinition struct {
	Family               string
	TaskRoleArn          string
	ContainerDefinitions []containerDefinition
}

type containerDefinition struct {
	Name        string
	Image       string
	Essential   *bool
	Command     []string
	Environment []keyValue
	HealthCheck *struct{ Command []string }
	// RestartPolicy on the supervisor's container would turn its fail-safe
	// exit into a restart.
	RestartPolicy *struct{ Enabled bool }
}

type keyValue struct{ Name, Value string }

type overrides struct {
	ContainerOverrides []struct {
		Name        string
		Environment []keyValue
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// supervisorVars is every variable the supervisor reads, from config's tags.
func supervisorVars() []string {
	var names []string
	typ := reflect.TypeFor[config]()
	for i := range typ.NumField() {
		if tag, ok := typ.Field(i).Tag.Lookup("env"); ok {
			names = append(names, strings.Split(tag, ",")[0])
		}
	}
	return names
}

func envMap(kvs []keyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Name] = kv.Value
	}
	return m
}

// checkSupervisorEnv asserts that env is a valid supervisor configuration
// made only of supervisor variables.
func checkSupervisorEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	known := supervisorVars()
	for name := range env {
		if strings.HasPrefix(name, "BASTION_") && !slices.Contains(known, name) {
			t.Errorf("%s: %s is not a supervisor variable (known: %v)", where, name, known)
		}
	}
	c, err := loadConfig(env, true)
	if err != nil {
		t.Errorf("%s: the supervisor rejects this configuration: %v", where, err)
		return
	}
	// The stack's MaxTTL, which examples/fill-task-definition.sh sets: the
	// template's default until then.
	if env["BASTION_MAX_TTL"] != "12h" {
		t.Errorf("%s: BASTION_MAX_TTL %q, want the stack's MaxTTL default 12h", where, env["BASTION_MAX_TTL"])
	}
	if c.url == nil || c.url.Path != "/terminate" {
		t.Errorf("%s: BASTION_TERMINATE_URL %q does not end in the API's /terminate route", where, c.TerminateURL)
	}
	// The region comes from the URL itself, not from the environment.
	if region, err := stopclient.SigningRegion(c.url, func(string) string { return "" }); err != nil || region == "" {
		t.Errorf("%s: no signing region in %q: %v", where, c.TerminateURL, err)
	}
}

var roleARN = regexp.MustCompile(`^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$`)

func TestExampleSidecarTaskDefinition(t *testing.T) {
	var td taskDefinition
	readJSON(t, "../../examples/sidecar-task-definition.json", &td)
	if !roleARN.MatchString(td.TaskRoleArn) {
		t.Errorf("taskRoleArn %q is not a role ARN", td.TaskRoleArn)
	}
	i := slices.IndexFunc(td.ContainerDefinitions, func(c containerDefinition) bool { return c.Name == "supervisor" })
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
	if cmd, _, err := parseCommand(sidecar.Command); err != nil || cmd != "watch" {
		t.Errorf("sidecar command %q: got %q, %v; want watch", sidecar.Command, cmd, err)
	}
	env := envMap(sidecar.Environment)
	checkSupervisorEnv(t, "supervisor container", env)
	if name := env["BASTION_CONTAINER"]; name != "" &&
		!slices.ContainsFunc(td.ContainerDefinitions, func(c containerDefinition) bool { return c.Name == name }) {
		t.Errorf("BASTION_CONTAINER %q names no container of the task", name)
	}

	var ov overrides
	readJSON(t, "../../examples/sidecar-overrides.json", &ov)
	checkOverrides(t, td, ov, env)
}

func TestExampleHealthCheckTaskDefinition(t *testing.T) {
	var td taskDefinition
	readJSON(t, "../../examples/healthcheck-task-definition.json", &td)
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
	if len(hc) < 2 || hc[0] != "CMD" {
		t.Fatalf("healthCheck.command %q: want exec form [CMD, <binary>, check]", hc)
	}
	if want := copiedSupervisorPath(t); hc[1] != want {
		t.Errorf("healthCheck runs %q, but healthcheck.Dockerfile copies the supervisor to %q", hc[1], want)
	}
	if cmd, _, err := parseCommand(hc[2:]); err != nil || cmd != "check" {
		t.Errorf("healthCheck command %q: got %q, %v; want check", hc, cmd, err)
	}
	env := envMap(bastion.Environment)
	checkSupervisorEnv(t, "bastion container", env)

	var ov overrides
	readJSON(t, "../../examples/healthcheck-overrides.json", &ov)
	checkOverrides(t, td, ov, env)
}

// copiedSupervisorPath is where healthcheck.Dockerfile puts the binary.
func copiedSupervisorPath(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "healthcheck.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^COPY --from=\S+ /supervisor (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("healthcheck.Dockerfile: no COPY --from=... /supervisor <path>")
	}
	return string(m[1])
}

// checkOverrides asserts that the run-task overrides name a container of
// the task and, merged over its environment, still make a valid config
// whose TTL is the override's.
func checkOverrides(t *testing.T, td taskDefinition, ov overrides, base map[string]string) {
	t.Helper()
	if len(ov.ContainerOverrides) != 1 {
		t.Fatalf("want one container override, got %d", len(ov.ContainerOverrides))
	}
	o := ov.ContainerOverrides[0]
	i := slices.IndexFunc(td.ContainerDefinitions, func(c containerDefinition) bool { return c.Name == o.Name })
	if i < 0 {
		t.Fatalf("override names container %q, which the task does not have", o.Name)
	}
	if !reflect.DeepEqual(envMap(td.ContainerDefinitions[i].Environment), base) {
		t.Fatalf("override targets %q, not the container running the supervisor", o.Name)
	}
	merged := map[string]string{}
	for k, v := range base {
		merged[k] = v
	}
	for k, v := range envMap(o.Environment) {
		merged[k] = v
	}
	checkSupervisorEnv(t, "overridden "+o.Name, merged)
	before, err1 := loadConfig(base, true)
	after, err2 := loadConfig(merged, true)
	if err1 == nil && err2 == nil && after.TTL == before.TTL {
		t.Errorf("the override does not change BASTION_TTL (%s)", after.TTL)
	}
}
