// Package examples_test checks what people copy from examples/: the task
// definitions and overrides against the built supervisor and the AWS CLI,
// the scripts against the CLI, the policies and rules as AWS would take
// them, and the profile.d hook's banner and prompt. The tests run in
// examples/, as the scripts' own paths expect.
package examples_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// The examples point at what the stack creates: the role output and the
// URL output's route (TestExamplesConfigureTheSupervisor runs the supervisor on their settings).
func TestExamplesUseTheStackOutputs(t *testing.T) {
	for _, name := range []string{"sidecar-task-definition.json", "healthcheck-task-definition.json", "job-task-definition.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var td struct {
			TaskRoleArn          string
			ContainerDefinitions []struct {
				Environment []struct{ Name, Value string }
			}
		}
		if err := json.Unmarshal(b, &td); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(td.TaskRoleArn, ":role/") || !strings.Contains(td.TaskRoleArn, "BastionTaskRole") {
			t.Errorf("%s: taskRoleArn %q is not the stack's BastionTaskRoleArn", name, td.TaskRoleArn)
		}
		urls := 0
		for _, c := range td.ContainerDefinitions {
			for _, e := range c.Environment {
				if e.Name == "BASTION_TERMINATE_URL" {
					urls++
					if !strings.HasPrefix(e.Value, "https://") || !strings.HasSuffix(e.Value, ".amazonaws.com/terminate") {
						t.Errorf("%s: BASTION_TERMINATE_URL %q has not the TerminateUrl output's form", name, e.Value)
					}
				}
			}
		}
		if urls != 1 {
			t.Errorf("%s: %d containers set BASTION_TERMINATE_URL, want 1", name, urls)
		}
	}
}

// The examples go through the AWS CLI against moto_server: the CLI checks
// every request against AWS's own models, which a hand-written check would
// miss (a misspelt key, a string where a list goes).
func TestExamplesPassTheAWSCLI(t *testing.T) {
	aws := testenv.Need(t, "aws", "pip install awscli")
	endpoint := testenv.Moto(t)
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=eu-west-1", "AWS_ENDPOINT_URL="+endpoint, "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	run := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "Parameter validation failed") || strings.Contains(string(out), "Unknown options") {
			t.Fatalf("%s %s: the request does not fit AWS's model:\n%s", name, strings.Join(args, " "), out)
		}
		if err != nil {
			t.Logf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(t, aws, "ecs", "create-cluster", "--cluster-name", "bastions")
	for _, td := range []string{"sidecar-task-definition.json", "healthcheck-task-definition.json", "job-task-definition.json"} {
		t.Run(td, func(t *testing.T) {
			out := run(t, aws, "ecs", "register-task-definition", "--cli-input-json", "file://"+td,
				"--query", "taskDefinition.status", "--output", "text")
			if strings.TrimSpace(out) != "ACTIVE" {
				t.Fatalf("register-task-definition: %s", out)
			}
		})
	}
	t.Run("examples/fill-task-definition.sh", func(t *testing.T) {
		// The getting started path's step 3, as the README runs it.
		cmd := exec.Command("bash", "fill-task-definition.sh")
		cmd.Env = append(env, "PATH="+pathWith(aws), "ROLE_ARN=arn:aws:iam::123456789012:role/bastion-ttl-BastionTaskRole-1A2B",
			"TERMINATE_URL=https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/terminate", "LOG_GROUP=/ecs/bastion-ttl", "KEYS_URL=https://github.com/ops.keys", "MAX_TTL=8h",
			"EXECUTION_ROLE_ARN=arn:aws:iam::123456789012:role/bastion-ttl-BastionExecutionRole-1A2B")
		fillEnv := cmd.Env
		filled, err := cmd.Output()
		if err != nil {
			t.Fatalf("fill-task-definition.sh: %v", err)
		}
		for _, want := range []string{`"taskRoleArn": "arn:aws:iam::123456789012:role/bastion-ttl-BastionTaskRole-1A2B"`,
			`"value": "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/terminate"`, `"awslogs-group": "/ecs/bastion-ttl"`,
			`"awslogs-region": "eu-west-1"`, `"value": "https://github.com/ops.keys"`, `"executionRoleArn": "arn:aws:iam::123456789012:role/bastion-ttl-BastionExecutionRole-1A2B"`,
			"\"name\": \"BASTION_MAX_TTL\",\n          \"value\": \"8h\""} {
			if !strings.Contains(string(filled), want) {
				t.Errorf("filled task definition lacks %s", want)
			}
		}
		path := filepath.Join(t.TempDir(), "bastion.json")
		if err := os.WriteFile(path, filled, 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t, aws, "ecs", "register-task-definition", "--cli-input-json", "file://"+path, "--query", "taskDefinition.status", "--output", "text")
		if strings.TrimSpace(out) != "ACTIVE" {
			t.Fatalf("register-task-definition: %s", out)
		}

		// A restart policy on the supervisor's container is refused: its
		// fail-safe exit would restart it instead of stopping the task.
		src, _ := os.ReadFile("sidecar-task-definition.json")
		withPolicy := strings.Replace(string(src), `"command": [`, `"restartPolicy": {"enabled": true, "ignoredExitCodes": [0]}, "command": [`, 1)
		if err := os.WriteFile(path, []byte(withPolicy), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command("bash", "fill-task-definition.sh")
		cmd.Env = append(fillEnv, "TASK_DEFINITION="+path)
		refused, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(refused), "container supervisor runs the supervisor and has a restart policy") {
			t.Fatalf("a restart policy on the supervisor: %v\n%s", err, refused)
		}

		// So is a supervisor's container that is not essential: ECS stops a
		// task only when an essential container exits. Left out, essential
		// is ECS's default, true.
		for _, tc := range []struct{ from, old, new, refused string }{
			{"sidecar-task-definition.json", `"essential": true,
      "command": [`, `"essential": false,
      "command": [`, "container supervisor runs the supervisor and is not essential"},
			{"healthcheck-task-definition.json", `"essential": true`, `"essential": false`, "container bastion runs the supervisor and is not essential"},
			{"sidecar-task-definition.json", `"essential": true,
      "command": [`, `"command": [`, ""},
			{"healthcheck-task-definition.json", `"essential": true,`, ``, ""},
		} {
			src, _ := os.ReadFile(tc.from)
			changed := strings.Replace(string(src), tc.old, tc.new, 1)
			if changed == string(src) {
				t.Fatalf("%s has no %s", tc.from, tc.old)
			}
			if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd = exec.Command("bash", "fill-task-definition.sh")
			cmd.Env = append(fillEnv, "TASK_DEFINITION="+path)
			out, err := cmd.CombinedOutput()
			if tc.refused == "" && err != nil || tc.refused != "" && (err == nil || !strings.Contains(string(out), tc.refused)) {
				t.Errorf("%s with %s: %v, want refused %q\n%s", tc.from, tc.new, err, tc.refused, out)
			}
		}
	})
	// The private setting's endpoints, in a VPC made in moto: by default
	// with private DNS on for every interface endpoint, and with
	// --no-private-dns on all but execute-api, whose private DNS would send
	// every public API call from the VPC to the endpoint.
	for i, mode := range []struct {
		args   []string
		apiDNS string
	}{{nil, "True"}, {[]string{"--no-private-dns"}, "False"}} {
		t.Run(strings.TrimSpace("examples/private-endpoints.sh "+strings.Join(mode.args, " ")), func(t *testing.T) {
			cidr := fmt.Sprintf("10.%d.0.0/16", 9+i)
			vpc := strings.TrimSpace(run(t, aws, "ec2", "create-vpc", "--cidr-block", cidr, "--query", "Vpc.VpcId", "--output", "text"))
			subnet := strings.TrimSpace(run(t, aws, "ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", strings.Replace(cidr, ".0.0/16", ".1.0/24", 1), "--query", "Subnet.SubnetId", "--output", "text"))
			sg := strings.TrimSpace(run(t, aws, "ec2", "create-security-group", "--vpc-id", vpc, "--group-name", "bastion-endpoints", "--description", "443 from the bastions", "--query", "GroupId", "--output", "text"))
			rt := strings.TrimSpace(run(t, aws, "ec2", "create-route-table", "--vpc-id", vpc, "--query", "RouteTable.RouteTableId", "--output", "text"))
			cmd := exec.Command("bash", append([]string{"private-endpoints.sh"}, mode.args...)...)
			cmd.Env = append(env, "PATH="+pathWith(aws), "VPC="+vpc, "SUBNETS="+subnet, "SECURITY_GROUP="+sg, "ROUTE_TABLE="+rt)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			id := strings.TrimSpace(string(out))
			if err != nil || !strings.HasPrefix(id, "vpce-") || strings.ContainsAny(id, " \n") {
				t.Fatalf("private-endpoints.sh %v: %v\nstdout: %s\nstderr: %s", mode.args, err, out, stderr.String())
			}
			if !strings.Contains(stderr.String(), "private DNS is") {
				t.Errorf("the script does not say what its private DNS choice does: %s", stderr.String())
			}
			listed := run(t, aws, "ec2", "describe-vpc-endpoints", "--filters", "Name=vpc-id,Values="+vpc,
				"--query", "VpcEndpoints[].[ServiceName,VpcEndpointType,PrivateDnsEnabled,VpcEndpointId]", "--output", "text")
			found := map[string][]string{}
			for _, line := range strings.Split(strings.TrimSpace(listed), "\n") {
				f := strings.Fields(line)
				if len(f) == 4 {
					found[strings.TrimPrefix(f[0], "com.amazonaws.eu-west-1.")] = f[1:]
				}
			}
			for _, service := range []string{"ecr.api", "ecr.dkr", "logs", "s3", "execute-api"} {
				got, ok := found[service]
				if !ok {
					t.Errorf("no %s endpoint: %s", service, listed)
					continue
				}
				want := "True"
				switch service {
				case "s3":
					continue // a gateway endpoint: no private DNS to choose
				case "execute-api":
					want = mode.apiDNS
					if got[2] != id {
						t.Errorf("the script printed %s, the execute-api endpoint is %s", id, got[2])
					}
				}
				if got[1] != want {
					t.Errorf("%s endpoint: private DNS %s, want %s", service, got[1], want)
				}
			}
		})
	}
	t.Run("examples/private-endpoints.sh --bad-flag", func(t *testing.T) {
		cmd := exec.Command("bash", "private-endpoints.sh", "--bad-flag")
		cmd.Env = append(env, "PATH="+pathWith(aws))
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--no-private-dns") {
			t.Errorf("an unknown flag: %v\n%s", err, out)
		}
	})
	t.Run("examples/launcher-policy.json", func(t *testing.T) {
		// The policy of the people who launch bastions, as the getting
		// started path fills it in.
		b, err := os.ReadFile("launcher-policy.json")
		if err != nil {
			t.Fatal(err)
		}
		filled := strings.NewReplacer("LEDGER_TABLE_ARN", "arn:aws:dynamodb:eu-west-1:123456789012:table/bastion-ttl-LedgerTable-EXAMPLE",
			"REGION", "eu-west-1", "ACCOUNT", "123456789012", "CLUSTER", "bastions", "STACK", "bastion-ttl", "FAMILY", "bastion-ssh",
			"TASK_ROLE_ARN", "arn:aws:iam::123456789012:role/bastion-ttl-BastionTaskRole-EXAMPLE",
			"EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/bastion-ttl-BastionExecutionRole-EXAMPLE",
			"LEDGER_TABLE_ARN", "arn:aws:dynamodb:eu-west-1:123456789012:table/bastion-ttl-LedgerTable-EXAMPLE").Replace(string(b))
		path := filepath.Join(t.TempDir(), "policy.json")
		if err := os.WriteFile(path, []byte(filled), 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t, aws, "iam", "create-policy", "--policy-name", "bastion-launcher", "--policy-document", "file://"+path, "--query", "Policy.Arn", "--output", "text")
		if !strings.Contains(out, ":policy/bastion-launcher") {
			t.Fatalf("create-policy: %s", out)
		}
	})
	t.Run("examples/audit-rule.json", func(t *testing.T) {
		// The audit trail's EventBridge rule, as docs/operations.md creates it.
		out := run(t, aws, "events", "put-rule", "--name", "bastion-ttl-stops", "--event-pattern", "file://audit-rule.json",
			"--query", "RuleArn", "--output", "text")
		if !strings.Contains(out, ":rule/bastion-ttl-stops") {
			t.Fatalf("put-rule: %s", out)
		}
		out = run(t, aws, "events", "describe-rule", "--name", "bastion-ttl-stops", "--query", "EventPattern", "--output", "text")
		if !strings.Contains(out, `"prefix"`) || !strings.Contains(out, "bastion-ttl") {
			t.Fatalf("describe-rule: %s", out)
		}
	})
	t.Run("examples/run-task.sh", func(t *testing.T) {
		// moto cannot run awsvpc tasks (it answers 500); what is checked
		// here is that the CLI accepts every argument the script passes.
		cmd := exec.Command("bash", "run-task.sh")
		cmd.Env = append(env, "CLUSTER=bastions", "SUBNET=subnet-0123456789abcdef0", "SECURITY_GROUP=sg-0123456789abcdef0", "PATH="+pathWith(aws))
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "Parameter validation failed") || strings.Contains(string(out), "Unknown options") ||
			strings.Contains(string(out), "Error parsing parameter") {
			t.Fatalf("run-task.sh: the request does not fit AWS's model:\n%s", out)
		}
	})
}

// pathWith is PATH with the directory of bin first.
func pathWith(bin string) string {
	return bin[:strings.LastIndex(bin, "/")] + ":" + os.Getenv("PATH")
}

// examples/profile.d/bastion-ttl.sh: the login banner and the prompt, with
// a stand-in supervisor that answers `status --short` as the real one does
// (internal/supervisor tests its lines), far from the deadline and within
// the warning.
func TestProfileBannerAndPrompt(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		testenv.Skipped(t, "bash not found; install it with: apt-get install bash")
	}
	bin := t.TempDir()
	stub := "#!/bin/sh\n[ \"$1 $2\" = \"status --short\" ] && echo \"$SHORT\"\n"
	if err := os.WriteFile(filepath.Join(bin, "supervisor"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	for short, tc := range map[string]struct{ want, not []string }{
		"1h2m3s left, stops at 12:00:01Z (ttl)": {
			want: []string{"bastion-ttl: 1h2m3s left, stops at 12:00:01Z (ttl)\n", `"supervisor extend 30m" asks for more time`, "prompt: [1h2m3s left] "},
			not:  []string{"***", "\a"},
		},
		"deadline unknown: no sidecar answers at 127.0.0.1:8311, and BASTION_TTL is not set here": {
			want: []string{"bastion-ttl: deadline unknown: no sidecar answers at 127.0.0.1:8311, and BASTION_TTL is not set here; this bastion still stops at its TTL\n",
				"prompt: [deadline unknown] "},
			not: []string{"***", "\a", " left"},
		},
		"WARNING: 8m20s left, stops at 12:00:01Z (idle)": {
			want: []string{"\a*** bastion-ttl: WARNING: 8m20s left, stops at 12:00:01Z (idle); \"supervisor extend 30m\" for more\n", "prompt: [8m20s left] "},
		},
	} {
		cmd := exec.Command(bash, "--norc", "--noprofile", "-i", "-c",
			`. profile.d/bastion-ttl.sh; eval "$PROMPT_COMMAND"; echo "prompt: ${PS1@P}"`)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "TERM=dumb", "SHORT=" + short}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range tc.want {
			if !strings.Contains(string(out), want) {
				t.Errorf("%q: output lacks %q:\n%s", short, want, out)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(string(out), not) {
				t.Errorf("%q: output has %q:\n%s", short, not, out)
			}
		}
	}
}

// supervisorBin is the supervisor built from ../supervisor (none under -short).
var supervisorBin string

func TestMain(m *testing.M) { os.Exit(testenv.MainWithCommand(m, "../supervisor", &supervisorBin)) }

type taskDefinition struct {
	ContainerDefinitions []struct {
		Name        string
		Environment []keyValue
	}
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
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The example task definitions, with their run-task overrides merged, are
// configurations the built supervisor accepts: its check, given each
// example's environment as ECS would (and the task's metadata and
// credentials, which ECS adds), exits 0 a minute after the start, where a
// bad variable exits 2 naming it. The sidecar's watch reads the same
// configuration; check ends at once, and asks the API for nothing before
// the deadline. Every BASTION_ variable they set is one supervisor help
// lists (one it ignores would be a typo). A cap between the definition's TTL and the override's shows
// that the override's is the one the supervisor reads.
func TestExamplesConfigureTheSupervisor(t *testing.T) {
	testenv.RealTime(t) // runs the built binary
	for _, ex := range []struct{ definition, overrides string }{
		{"sidecar-task-definition.json", "sidecar-overrides.json"},
		{"healthcheck-task-definition.json", "healthcheck-overrides.json"},
		{"job-task-definition.json", "sidecar-overrides.json"}, // its sidecar is the bastion's
	} {
		t.Run(ex.definition, func(t *testing.T) {
			var td taskDefinition
			var ov overrides
			readJSON(t, ex.definition, &td)
			readJSON(t, ex.overrides, &ov)
			var names []string
			base := map[string]string{}
			for _, c := range td.ContainerDefinitions {
				names = append(names, c.Name)
				if slices.ContainsFunc(c.Environment, func(kv keyValue) bool { return kv.Name == "BASTION_TERMINATE_URL" }) {
					for _, kv := range c.Environment {
						base[kv.Name] = kv.Value
					}
				}
			}
			if len(base) == 0 {
				t.Fatal("no container sets BASTION_TERMINATE_URL")
			}
			if len(ov.ContainerOverrides) != 1 {
				t.Fatalf("want one container override, got %d", len(ov.ContainerOverrides))
			}
			merged := maps.Clone(base)
			for _, kv := range ov.ContainerOverrides[0].Environment {
				merged[kv.Name] = kv.Value
			}
			known := supervisorVariables(t)
			for name := range merged {
				if strings.HasPrefix(name, "BASTION_") && !slices.Contains(known, name) {
					t.Errorf("%s is not a variable the supervisor reads (supervisor help lists %v)", name, known)
				}
			}
			meta := metadataServer(t, names, time.Now().Add(-time.Minute))
			check := func(env map[string]string) (int, string) {
				t.Helper()
				cmd := exec.Command(supervisorBin, "check")
				cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + t.TempDir(), "ECS_CONTAINER_METADATA_URI_V4=" + meta,
					"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=example"}
				for k, v := range env {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatal(err)
				}
				return cmd.ProcessState.ExitCode(), string(out)
			}
			for what, env := range map[string]map[string]string{"the definition": base, "with the overrides": merged} {
				if code, out := check(env); code != 0 {
					t.Errorf("%s: supervisor check exited %d:\n%s", what, code, out)
				}
			}
			// The cap at the lower of the two TTLs: the other is refused.
			baseTTL, err1 := time.ParseDuration(base["BASTION_TTL"])
			overTTL, err2 := time.ParseDuration(merged["BASTION_TTL"])
			if err1 != nil || err2 != nil || baseTTL == overTTL {
				t.Fatalf("BASTION_TTL %q, overridden %q: want two different durations", base["BASTION_TTL"], merged["BASTION_TTL"])
			}
			longer := merged
			if baseTTL > overTTL {
				longer = base
			}
			capped := maps.Clone(longer)
			capped["BASTION_MAX_TTL"] = min(baseTTL, overTTL).String()
			if code, out := check(capped); code != 2 || !strings.Contains(out, "BASTION_TTL=") || !strings.Contains(out, "BASTION_MAX_TTL") {
				t.Errorf("the longer TTL above BASTION_MAX_TTL: exit %d, want 2 naming BASTION_TTL:\n%s", code, out)
			}
		})
	}
}

// supervisorVariables are the variables supervisor help lists.
func supervisorVariables(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(supervisorBin, "help").Output()
	if err != nil {
		t.Fatalf("supervisor help: %v", err)
	}
	_, table, _ := strings.Cut(string(out), "configuration (environment):")
	var names []string
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "BASTION_") {
			names = append(names, f[0])
		}
	}
	if len(names) < 5 {
		t.Fatalf("supervisor help lists %v: no variable table", names)
	}
	return names
}

// metadataServer serves the task metadata (v4) of a running task with the
// containers named, started at start.
func metadataServer(t *testing.T, containers []string, start time.Time) string {
	t.Helper()
	at := start.UTC().Format(time.RFC3339Nano)
	var cs []map[string]any
	for i, name := range containers {
		cs = append(cs, map[string]any{"Name": name, "DockerId": fmt.Sprintf("%064x", i+1), "KnownStatus": "RUNNING", "StartedAt": at})
	}
	doc, _ := json.Marshal(map[string]any{
		"Cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions", "TaskARN": "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef",
		"KnownStatus": "RUNNING", "PullStartedAt": at, "Containers": cs, "LaunchType": "FARGATE",
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/task") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
