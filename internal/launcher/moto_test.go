package launcher

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// motoEnv is an Env whose clients are the real SDK's against moto_server
// (through the mending proxy), with a stack named bastion-ttl whose outputs
// give the defaults, a cluster, and the bastion's task definition.
func motoEnv(t *testing.T) (Env, *ecs.Client) {
	t.Helper()
	return motoEnvBehind(t, func(endpoint string) string { return endpoint })
}

// motoEnvBehind is motoEnv with every call sent to front(moto's endpoint)
// instead: a layer that adds what moto lacks.
func motoEnvBehind(t *testing.T, front func(string) string) (Env, *ecs.Client) {
	t.Helper()
	endpoint, _ := testenv.MotoECS(t)
	endpoint = front(endpoint)
	client := testenv.ECSClient(endpoint)
	creds := credentials.NewStaticCredentialsProvider("AKIDTEST", "test", "")
	cfn := cloudformation.New(cloudformation.Options{Region: testenv.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	caller := sts.New(sts.Options{Region: testenv.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	ctx := context.Background()
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("bastions")}); err != nil {
		t.Fatal(err)
	}
	// moto cannot run awsvpc tasks (and makes FARGATE task definitions
	// awsvpc): a bridge-mode bastion, run with --launch-type FARGATE.
	register := func(family string, sidecar bool) {
		defs := []types.ContainerDefinition{{
			Name: aws.String("bastion"), Image: aws.String("openssh-server"), Memory: aws.Int32(256), Essential: aws.Bool(true),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(2222)}},
		}}
		if sidecar {
			defs = append(defs, types.ContainerDefinition{Name: aws.String("supervisor"), Image: aws.String("ghcr.io/bastion-ttl/supervisor:v0.1.0"),
				Memory: aws.Int32(64), Essential: aws.Bool(true), Command: []string{"watch"}})
		}
		if _, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family), NetworkMode: types.NetworkModeBridge,
			ContainerDefinitions: defs}); err != nil {
			t.Fatal(err)
		}
	}
	register("bastion", true)
	register("plain-ssh", false)
	stack := `{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
		"Outputs": {"ClusterName": {"Value": "bastions"}, "TaskDefinition": {"Value": "bastion"}, "MaxTTL": {"Value": "12h"}, "IdleTimeout": {"Value": "15m"}}}`
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("bastion-ttl"), TemplateBody: aws.String(stack)}); err != nil {
		t.Fatal(err)
	}
	return Env{Environ: map[string]string{"BASTION_LAUNCH_TYPE": "FARGATE"}, ECS: client, Stacks: cfn, Caller: caller, Poll: 50 * time.Millisecond}, client
}

// theTask is the cluster bastions' one task, described, and its tags.
func theTask(t *testing.T, client *ecs.Client) (string, types.Task, map[string]string) {
	t.Helper()
	listed, err := client.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String("bastions")})
	if err != nil || len(listed.TaskArns) != 1 {
		t.Fatalf("tasks %v, %v", listed, err)
	}
	arn := listed.TaskArns[0]
	task := testenv.Describe(t, client, "bastions", []string{arn})[arn]
	tags := map[string]string{}
	for _, tag := range task.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return arn, task, tags
}

func runCLI(env Env, args ...string) (string, string, int) {
	// Safe for concurrent writes, as os.Stderr is: a plugin's stdout and
	// stderr are copied to it at once.
	out, errs := &testenv.Buffer{}, &testenv.Buffer{}
	env.Stdout, env.Stderr = out, errs
	code := exitCode(Run(context.Background(), args, env), errs)
	return out.String(), errs.String(), code
}

// run -> ls -> stop with no flags but the TTL: the stack gives the rest.
func TestRunLsStop(t *testing.T) {
	env, client := motoEnv(t)
	out, errs, code := runCLI(env, "run", "--ttl", "2h")
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errs)
	}
	if !strings.HasPrefix(out, "started ") || !strings.Contains(out, " in bastions: TTL 2h0m0s, idle timeout 15m0s\n") || !strings.Contains(out, "RUNNING\n") ||
		!strings.Contains(out, "stops ") || !strings.Contains(out, "connect:") {
		t.Fatalf("run said:\n%s", out)
	}
	id := strings.Fields(out)[1]
	arn, task, tags := theTask(t, client)
	// The owner is the caller's user ID, the one value the launcher policy
	// lets a caller write (aws:RequestTag/bastion-ttl-owner = ${aws:userid}).
	me, err := env.Caller.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(me.UserId) == "" {
		t.Fatalf("get-caller-identity: %v %+v", err, me)
	}
	if tags[ttltag.Key] != "2h0m0s" || tags[ttltag.OwnerKey] != aws.ToString(me.UserId) || aws.ToString(task.StartedBy) != StartedBy || taskID(arn) != id {
		t.Fatalf("task %s: tags %v (owner: want the user ID %q), startedBy %q", arn, tags, aws.ToString(me.UserId), aws.ToString(task.StartedBy))
	}
	ov := task.Overrides.ContainerOverrides
	if len(ov) != 1 || aws.ToString(ov[0].Name) != "supervisor" || len(ov[0].Environment) != 3 ||
		aws.ToString(ov[0].Environment[0].Value) != "2h0m0s" || aws.ToString(ov[0].Environment[1].Value) != "12h0m0s" ||
		aws.ToString(ov[0].Environment[2].Value) != "15m0s" {
		t.Fatalf("overrides %+v: the supervisor's BASTION_TTL must be the tag's, its BASTION_MAX_TTL the stack's", ov)
	}

	// An untagged task of the cluster is not a bastion.
	other := testenv.RunTasks(t, client, "bastions", 1)[0]
	out, errs, code = runCLI(env, "ls")
	if code != 0 || !strings.Contains(out, id) || strings.Contains(out, taskID(other)) || !strings.HasPrefix(out, "TASK ") {
		t.Fatalf("ls: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = runCLI(env, "ls", "--json")
	var listedJSON []Bastion
	if err := json.Unmarshal([]byte(out), &listedJSON); err != nil || len(listedJSON) != 1 || listedJSON[0].TTL != "2h0m0s" || listedJSON[0].TaskID != id {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}

	_, errs, code = runCLI(env, "stop", taskID(other))
	if code != 2 || !strings.Contains(errs, "has no bastion-ttl tag") {
		t.Fatalf("stop of an untagged task: exit %d, %s", code, errs)
	}
	if got := testenv.Describe(t, client, "bastions", []string{other})[other]; aws.ToString(got.DesiredStatus) != "RUNNING" {
		t.Fatal("a refused stop stopped the task")
	}
	out, errs, code = runCLI(env, "stop", id)
	if code != 0 || out != "stopping "+id+"\n" {
		t.Fatalf("stop: exit %d\n%s%s", code, out, errs)
	}
	got := testenv.Describe(t, client, "bastions", []string{arn})[arn]
	if aws.ToString(got.DesiredStatus) != "STOPPED" || !strings.HasPrefix(aws.ToString(got.StoppedReason), "bastion-ttl: stopped by arn:aws:") {
		t.Fatalf("stopped: %s, reason %q", aws.ToString(got.DesiredStatus), aws.ToString(got.StoppedReason))
	}
	if _, _, code := runCLI(env, "stop", "--force", taskID(other)); code != 0 {
		t.Fatalf("stop --force: exit %d", code)
	}

	// With --cluster, --task-definition and --max-ttl it needs no stack at
	// all, and says it could not read one.
	// (testenv.RunTasks registered bastion:2, without a supervisor.)
	out, errs, code = runCLI(env, "run", "--stack", "none-deployed", "--cluster", "bastions", "--task-definition", "bastion:1", "--ttl", "30m", "--max-ttl", "2h", "--wait=false")
	if code != 0 || !strings.Contains(out, "in bastions: TTL 30m0s\n") || !strings.Contains(errs, "cannot read the stack's MaxTTL (the stack none-deployed does not exist); checking against --max-ttl 2h0m0s") {
		t.Fatalf("run without a stack: exit %d\n%s%s", code, out, errs)
	}
}

// Bad input: a one-line error naming what is wrong, exit 2, nothing started.
func TestBadInputStartsNothing(t *testing.T) {
	env, client := motoEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown task definition", []string{"run", "--task-definition", "nope"}, `task definition "nope" not found`},
		{"ttl not a duration", []string{"run", "--ttl", "forever"}, `invalid value "forever" for flag -ttl`},
		{"ttl above the cap", []string{"run", "--ttl", "13h"}, "above the stack's cap, MaxTTL 12h0m0s"},
		{"no such cluster", []string{"run", "--cluster", "nope"}, `cluster "nope" does not exist`},
		{"no supervisor in the task definition", []string{"run", "--task-definition", "plain-ssh"}, "no container runs the supervisor"},
		{"no stack, no flags", []string{"run", "--stack", "missing"}, "no cluster: pass --cluster, set BASTION_CLUSTER, or deploy it in the stack missing, which does not exist"},
		{"no stack, so no cap to check against", []string{"run", "--stack", "missing", "--cluster", "bastions", "--task-definition", "bastion"},
			"cannot read the stack's MaxTTL (the stack missing does not exist): pass --max-ttl"},
		{"max ttl not a duration", []string{"run", "--stack", "missing", "--cluster", "bastions", "--task-definition", "bastion", "--max-ttl", "soon"},
			`invalid value "soon" for flag -max-ttl`},
		{"no stack, ttl above --max-ttl", []string{"run", "--stack", "missing", "--cluster", "bastions", "--task-definition", "bastion", "--max-ttl", "1h"},
			"above the stack's cap, MaxTTL 1h0m0s"},
		{"idle not a duration", []string{"run", "--idle", "soon"}, `invalid value "soon" for flag -idle`},
		{"stop nothing", []string{"stop"}, "stop takes 1 to 100 tasks to stop"},
		{"stop an unknown task", []string{"stop", "0123456789abcdef0123456789abcdef"}, "not tasks of bastions"},
		{"ls of a missing cluster", []string{"ls", "--cluster", "nope"}, `cluster "nope" does not exist`},
		{"unknown command", []string{"launch"}, `unknown command "launch"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCLI(env, tc.args...)
			if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Fatalf("exit %d, want 2 and one line with %q:\n%s%s", code, tc.want, out, errs)
			}
		})
	}
	listed, err := client.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String("bastions")})
	if err != nil || len(listed.TaskArns) != 0 {
		t.Fatalf("bad input started %v (%v)", listed.TaskArns, err)
	}
}

// Without credentials the command says so in one line, and does nothing.
func TestMissingCredentials(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	none := MarkCredentials(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errFailedToRetrieve
	}))
	env := Env{Environ: map[string]string{},
		ECS:    ecs.New(ecs.Options{Region: testenv.Region, BaseEndpoint: aws.String(endpoint), Credentials: none}),
		Stacks: cloudformation.New(cloudformation.Options{Region: testenv.Region, BaseEndpoint: aws.String(endpoint), Credentials: none}),
		Caller: sts.New(sts.Options{Region: testenv.Region, BaseEndpoint: aws.String(endpoint), Credentials: none})}
	_ = client
	_, errs, code := runCLI(env, "ls")
	if code != 2 || !strings.Contains(errs, "no usable AWS credentials") || !strings.Contains(errs, "AWS_PROFILE") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

var errFailedToRetrieve = errorString("failed to retrieve credentials: no profile, no SSO session, no environment")

type errorString string

func (e errorString) Error() string { return string(e) }

// A job is any family the stack allows, run as a bastion is: the example
// job's task definition (examples/job-task-definition.json, made bridge
// mode, which moto runs), started with a TTL and a reason, tagged, its
// sidecar given the TTL and the cap, and its idle timeout kept off (the
// stack's IdleTimeout is for bastions).
func TestRunAJob(t *testing.T) {
	env, client := motoEnv(t)
	raw, err := os.ReadFile("../../examples/job-task-definition.json")
	if err != nil {
		t.Fatal(err)
	}
	var in ecs.RegisterTaskDefinitionInput
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	in.NetworkMode, in.RequiresCompatibilities = types.NetworkModeBridge, nil
	for i := range in.ContainerDefinitions {
		in.ContainerDefinitions[i].Memory = aws.Int32(128)
	}
	if _, err := client.RegisterTaskDefinition(context.Background(), &in); err != nil {
		t.Fatal(err)
	}
	family := aws.ToString(in.Family)
	out, errs, code := runCLI(env, "run", "--task-definition", family, "--ttl", "2h", "--reason", "nightly report: rerun for 2026-12-01")
	if code != 0 || !strings.Contains(out, " in bastions: TTL 2h0m0s, no idle timeout\n") || !strings.Contains(out, "RUNNING\n") {
		t.Fatalf("run: exit %d\n%s%s", code, out, errs)
	}
	arn, task, tags := theTask(t, client)
	if !strings.Contains(aws.ToString(task.TaskDefinitionArn), ":task-definition/"+family+":") || tags[ttltag.Key] != "2h0m0s" ||
		tags[ttltag.ReasonKey] != "nightly report: rerun for 2026-12-01" || tags[ttltag.OwnerKey] == "" {
		t.Fatalf("task %s of %s: tags %v", arn, aws.ToString(task.TaskDefinitionArn), tags)
	}
	var env2 []string
	for _, o := range task.Overrides.ContainerOverrides {
		if aws.ToString(o.Name) != "supervisor" {
			t.Errorf("an override of %s", aws.ToString(o.Name))
		}
		for _, kv := range o.Environment {
			env2 = append(env2, aws.ToString(kv.Name)+"="+aws.ToString(kv.Value))
		}
	}
	if got := strings.Join(env2, " "); got != "BASTION_TTL=2h0m0s BASTION_MAX_TTL=12h0m0s BASTION_IDLE_TIMEOUT=0s" {
		t.Errorf("the supervisor's overrides %s, want the TTL, the cap and idleness off", got)
	}
	out, _, _ = runCLI(env, "ls", "--json")
	var ls []Bastion
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 || ls[0].Reason != "nightly report: rerun for 2026-12-01" {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
}
