// scripts/acceptance.sh, the acceptance test for a real account: its plan
// mode names every AWS call and makes none, and against moto_server it
// runs what moto serves and deletes everything it made, also when a step
// fails.
package bastionttl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// The calls the plan must name, in this order: the real run's, then its
// cleanup, last made first.
var acceptancePlan = []string{
	"aws sts get-caller-identity",
	"aws ec2 describe-vpcs",
	"aws ec2 describe-subnets",
	"aws ec2 create-security-group",
	"aws ecs create-cluster",
	"aws s3api create-bucket",
	"sam build",
	"sam deploy --stack-name bastion-ttl-acc-plan",
	"aws cloudformation describe-stacks",
	"aws cloudformation describe-stack-resource --stack-name bastion-ttl-acc-plan --logical-resource-id TerminateFunction",
	"aws cloudformation describe-stack-resource --stack-name bastion-ttl-acc-plan --logical-resource-id SweepFunction",
	"aws ecs register-task-definition", // the example, filled in
	"aws ecs register-task-definition", // the unsupervised task's
	"aws ecs run-task --cluster bastion-ttl-acc-plan",
	"aws ecs tag-resource",
	"aws ecs describe-tasks",
	"aws iam create-role --role-name bastion-ttl-acc-plan-launcher",
	"aws iam attach-role-policy --role-name bastion-ttl-acc-plan-launcher --policy-arn arn:aws:iam::111122223333:policy/bastion-ttl-acc-plan-launcher",
	"retry 6 aws sts assume-role --role-arn arn:aws:iam::111122223333:role/bastion-ttl-acc-plan-launcher",
	// The bastion started, and a stop refused, with the launcher role's credentials alone.
	"as_launcher go run ./cmd/bastion-ttl run --stack bastion-ttl-acc-plan --cluster bastion-ttl-acc-plan --task-definition",
	"as_launcher aws ecs stop-task --cluster bastion-ttl-acc-plan --task",
	"aws ecs describe-tasks", // the unsupervised task still runs
	"aws iam get-role",
	"aws lambda invoke --function-name bastion-ttl-acc-plan-TerminateFunction",
	"aws ecs describe-tasks", // still running
	"aws ecs describe-tasks", // stopped: reason, startedAt, stoppedAt
	"aws lambda invoke --function-name bastion-ttl-acc-plan-SweepFunction",
	"aws ecs describe-tasks",
	"aws ecs stop-task",
	"aws ecs wait tasks-stopped",
	"aws iam detach-role-policy --role-name bastion-ttl-acc-plan-launcher",
	"aws iam delete-role --role-name bastion-ttl-acc-plan-launcher",
	"aws ecs stop-task",
	"aws ecs wait tasks-stopped",
	"aws ecs deregister-task-definition",
	"aws ecs deregister-task-definition",
	"aws cloudformation delete-stack --stack-name bastion-ttl-acc-plan",
	"aws cloudformation wait stack-delete-complete",
	"aws s3 rb",
	"aws ecs delete-cluster",
	"aws ec2 delete-security-group",
}

// fakeTools puts aws, sam and go stand-ins first on PATH that record any
// call and fail: the plan must make none.
func fakeTools(t *testing.T) (path, calls string) {
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	for _, tool := range []string{"aws", "sam"} {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >>" + calls + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH"), calls
}

func TestAcceptancePlan(t *testing.T) {
	testenv.Need(t, "jq", "apt-get install jq")
	testenv.Need(t, "make", "apt-get install make")
	path, calls := fakeTools(t)
	cmd := exec.Command("make", "--no-print-directory", "acceptance", "PLAN=1")
	cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir(), "ACCEPTANCE_NAME=bastion-ttl-acc-plan", "AWS_REGION=eu-west-1"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make acceptance PLAN=1: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(calls); err == nil {
		t.Errorf("the plan called:\n%s", b)
	}
	lines := strings.Split(string(out), "\n")
	at := 0
	for _, want := range acceptancePlan {
		for at < len(lines) && !strings.HasPrefix(lines[at], want) {
			at++
		}
		if at == len(lines) {
			t.Fatalf("the plan does not name %q (in order):\n%s", want, out)
		}
		at++
	}
	if !strings.Contains(string(out), "PLAN done: none of these calls was made") {
		t.Errorf("no closing line:\n%s", out)
	}
}

// runAgainstMoto runs the script in moto mode and returns its output and
// whether it succeeded, and an aws CLI pointed at the same moto.
func runAgainstMoto(t *testing.T, name string, extra ...string) (string, bool, func(args ...string) (string, error)) {
	t.Helper()
	testenv.RealTime(t)
	awsCLI := testenv.Need(t, "aws", "pip install awscli")
	testenv.Need(t, "jq", "apt-get install jq")
	moto := testenv.Moto(t)
	env := append(os.Environ(), "AWS_ENDPOINT_URL="+moto, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION="+testenv.Region, "AWS_DEFAULT_REGION="+testenv.Region, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "ACCEPTANCE_NAME="+name)
	cmd := exec.Command("bash", "scripts/acceptance.sh", "--moto")
	cmd.Env = append(env, extra...)
	out, err := cmd.CombinedOutput()
	aws := func(args ...string) (string, error) {
		c := exec.Command(awsCLI, args...)
		c.Env = env
		b, err := c.CombinedOutput()
		return strings.TrimSpace(string(b)), err
	}
	return string(out), err == nil, aws
}

// checkNothingLeft fails t for anything the run made that is still there.
func checkNothingLeft(t *testing.T, name string, aws func(args ...string) (string, error)) {
	t.Helper()
	if out, _ := aws("ecs", "describe-clusters", "--clusters", name, "--query", "clusters[?status=='ACTIVE'].clusterName", "--output", "text"); out != "" {
		t.Errorf("cluster left: %s", out)
	}
	if out, err := aws("iam", "get-role", "--role-name", name+"-exec"); err == nil || !strings.Contains(out, "NoSuchEntity") {
		t.Errorf("role left: %s", out)
	}
	if out, _ := aws("ec2", "describe-security-groups", "--filters", "Name=group-name,Values="+name, "--query", "SecurityGroups[].GroupId", "--output", "text"); out != "" {
		t.Errorf("security group left: %s", out)
	}
	if out, _ := aws("s3api", "list-buckets", "--query", "Buckets[].Name", "--output", "text"); strings.Contains(out, name) {
		t.Errorf("bucket left: %s", out)
	}
	for _, family := range []string{name + "-bastion", name + "-unsupervised"} {
		if out, _ := aws("ecs", "list-task-definitions", "--family-prefix", family, "--status", "ACTIVE", "--query", "taskDefinitionArns", "--output", "text"); out != "" {
			t.Errorf("task definition left: %s", out)
		}
	}
}

func TestAcceptanceAgainstMoto(t *testing.T) {
	const name = "bastion-ttl-acc-moto"
	out, ok, aws := runAgainstMoto(t, name)
	if !ok || !strings.Contains(out, "PASS acceptance (moto): "+name) {
		t.Fatalf("the moto run failed:\n%s", out)
	}
	for _, want := range []string{"ok   cluster " + name, "tagged bastion-ttl=1m", "stop-task: ", "skip sam build and sam deploy", "done aws ecs delete-cluster --cluster " + name} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("a step or a cleanup failed:\n%s", out)
	}
	checkNothingLeft(t, name, aws)
}

// A step that fails still leaves nothing behind: the task it started is
// stopped, and everything made before it is deleted.
func TestAcceptanceCleansUpAfterAFailure(t *testing.T) {
	const name = "bastion-ttl-acc-fail"
	out, ok, aws := runAgainstMoto(t, name, "ACCEPTANCE_FAIL_AFTER=unsupervised-task")
	if ok || !strings.Contains(out, "FAIL after unsupervised-task") || !strings.Contains(out, "the run failed") {
		t.Fatalf("the run did not fail as asked:\n%s", out)
	}
	if !strings.Contains(out, "done stop_task ") || strings.Contains(out, "FAIL cleanup") {
		t.Errorf("the cleanup did not stop the task, or failed:\n%s", out)
	}
	checkNothingLeft(t, name, aws)
}
