package bastionttl_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

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
	for _, td := range []string{"examples/sidecar-task-definition.json", "examples/healthcheck-task-definition.json"} {
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
		cmd := exec.Command("bash", "examples/fill-task-definition.sh")
		cmd.Env = append(env, "PATH="+pathWith(aws), "ROLE_ARN=arn:aws:iam::123456789012:role/bastion-ttl-BastionTaskRole-1A2B",
			"TERMINATE_URL=https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/terminate", "LOG_GROUP=/ecs/bastion-ttl", "KEYS_URL=https://github.com/ops.keys", "MAX_TTL=8h")
		fillEnv := cmd.Env
		filled, err := cmd.Output()
		if err != nil {
			t.Fatalf("fill-task-definition.sh: %v", err)
		}
		for _, want := range []string{`"taskRoleArn": "arn:aws:iam::123456789012:role/bastion-ttl-BastionTaskRole-1A2B"`,
			`"value": "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/terminate"`, `"awslogs-group": "/ecs/bastion-ttl"`,
			`"awslogs-region": "eu-west-1"`, `"value": "https://github.com/ops.keys"`, `"executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"`,
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
		src, _ := os.ReadFile("examples/sidecar-task-definition.json")
		withPolicy := strings.Replace(string(src), `"command": [`, `"restartPolicy": {"enabled": true, "ignoredExitCodes": [0]}, "command": [`, 1)
		if err := os.WriteFile(path, []byte(withPolicy), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command("bash", "examples/fill-task-definition.sh")
		cmd.Env = append(fillEnv, "TASK_DEFINITION="+path)
		refused, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(refused), "container supervisor runs the supervisor and has a restart policy") {
			t.Fatalf("a restart policy on the supervisor: %v\n%s", err, refused)
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
			cmd := exec.Command("bash", append([]string{"examples/private-endpoints.sh"}, mode.args...)...)
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
		cmd := exec.Command("bash", "examples/private-endpoints.sh", "--bad-flag")
		cmd.Env = append(env, "PATH="+pathWith(aws))
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--no-private-dns") {
			t.Errorf("an unknown flag: %v\n%s", err, out)
		}
	})
	t.Run("examples/launcher-policy.json", func(t *testing.T) {
		// The policy of the people who launch bastions, as the getting
		// started path fills it in.
		b, err := os.ReadFile("examples/launcher-policy.json")
		if err != nil {
			t.Fatal(err)
		}
		filled := strings.NewReplacer("REGION", "eu-west-1", "ACCOUNT", "123456789012", "CLUSTER", "bastions", "STACK", "bastion-ttl",
			"TASK_ROLE_ARN", "arn:aws:iam::123456789012:role/bastion-ttl-BastionTaskRole-EXAMPLE",
			"EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole").Replace(string(b))
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
		out := run(t, aws, "events", "put-rule", "--name", "bastion-ttl-stops", "--event-pattern", "file://examples/audit-rule.json",
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
		cmd := exec.Command("bash", "examples/run-task.sh")
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
