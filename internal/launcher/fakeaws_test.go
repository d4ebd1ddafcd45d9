package launcher

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// fakeAWS is the launcher's AWS in this process, for tests that run under
// -short: ECS is package ecsapi's endpoint through the real SDK, with
// RunTask added here (ecsapi has none: each input is recorded, and the
// task it starts is added to the endpoint); SSM is package ssmapi's; the
// stack, the caller and the plugin are small fakes.
type fakeAWS struct {
	t   *testing.T
	api *ecsapi.Server
	ssm *ssmapi.Server
	env Env

	mu   sync.Mutex
	runs []*ecs.RunTaskInput
	// started, when set, is the task a RunTask starts (a task that stops
	// at once, say); else a running one. failures, when set, is RunTask's
	// answer instead.
	started  func(arn string) ecsapi.Task
	failures []types.Failure
}

const (
	fakeCluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	fakeTaskDef = "arn:aws:ecs:eu-west-1:123456789012:task-definition/bastion:1"
)

// newFakeAWS is a deployed stack (cluster bastions, task definition
// bastion: the sidecar, MaxTTL 12h, IdleTimeout 15m) and a caller whose
// user ID is userID.
func newFakeAWS(t *testing.T, userID string) *fakeAWS {
	t.Helper()
	f := &fakeAWS{t: t, api: ecsapi.New(), ssm: &ssmapi.Server{}}
	f.api.AddCluster(fakeCluster)
	f.api.TaskDefinitions = map[string]map[string]any{}
	f.define("bastion", sidecarDef(map[string]any{"essential": true}, "12h"))
	ecsSrv := httptest.NewServer(f.api)
	t.Cleanup(ecsSrv.Close)
	ssmSrv := httptest.NewServer(f.ssm)
	t.Cleanup(ssmSrv.Close)
	f.ssm.URL = ssmSrv.URL
	creds := credentials.NewStaticCredentialsProvider("AKIDTEST", "test", "")
	f.env = Env{
		Environ: map[string]string{},
		Stdout:  io.Discard, Stderr: io.Discard,
		Clock:  clock.System{},
		Poll:   10 * time.Millisecond,
		ECS:    runTaskECS{ecs.New(ecs.Options{Region: testenv.Region, BaseEndpoint: aws.String(ecsSrv.URL), Credentials: creds}), f},
		Stacks: fakeStack{"ClusterName": "bastions", "TaskDefinition": "bastion", "MaxTTL": "12h", "IdleTimeout": "15m"},
		Caller: fakeCaller{arn: "arn:aws:sts::123456789012:assumed-role/developers/" + userID[strings.LastIndexByte(userID, ':')+1:], userID: userID},
		Connect: ConnectEnv{
			SSM:    ssm.New(ssm.Options{Region: testenv.Region, BaseEndpoint: aws.String(ssmSrv.URL), Credentials: creds}),
			Plugin: fakePlugin{}, Region: testenv.Region, SSMEndpoint: ssmSrv.URL,
			WorkDir: t.TempDir(), UserConfigDir: t.TempDir(), HomeDir: t.TempDir(),
			Reconnect: backoff.Policy{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond},
		},
	}
	return f
}

// define makes DescribeTaskDefinition answer def (ECS's JSON) for family,
// family:1 and its ARN.
func (f *fakeAWS) define(family string, def map[string]any) {
	arn := strings.Replace(fakeTaskDef, "/bastion:", "/"+family+":", 1)
	def["taskDefinitionArn"], def["family"], def["revision"], def["status"] = arn, family, 1, "ACTIVE"
	for _, name := range []string{family, family + ":1", arn} {
		f.api.TaskDefinitions[name] = def
	}
}

// sidecarDef is a bridge-mode bastion beside the supervisor's sidecar,
// whose fields are sup's and whose environment sets BASTION_MAX_TTL to
// maxTTL ("": not at all).
func sidecarDef(sup map[string]any, maxTTL string) map[string]any {
	env := []map[string]string{{"name": "BASTION_TERMINATE_URL", "value": "https://abc123defg.execute-api.eu-west-1.amazonaws.com/terminate"},
		{"name": "BASTION_FAILSAFE", "value": "exit"}, {"name": "BASTION_GRACE", "value": "2m"}}
	if maxTTL != "" {
		env = append(env, map[string]string{"name": "BASTION_MAX_TTL", "value": maxTTL})
	}
	sup["name"], sup["image"], sup["command"], sup["environment"] = "supervisor", "ghcr.io/bastion-ttl/supervisor:v0.1.0", []string{"watch"}, env
	return map[string]any{"networkMode": "bridge", "compatibilities": []string{"EC2", "FARGATE"}, "containerDefinitions": []map[string]any{
		{"name": "bastion", "image": "openssh-server", "essential": true, "portMappings": []map[string]any{{"containerPort": 2222}}},
		sup,
	}}
}

// healthCheckDef is the health-check variant: the bastion container runs
// supervisor check, with fields of its own (bastion), beside others.
func healthCheckDef(bastion map[string]any, maxTTL string, others ...map[string]any) map[string]any {
	env := []map[string]string{{"name": "BASTION_TERMINATE_URL", "value": "https://abc123defg.execute-api.eu-west-1.amazonaws.com/terminate"}}
	if maxTTL != "" {
		env = append(env, map[string]string{"name": "BASTION_MAX_TTL", "value": maxTTL})
	}
	bastion["name"], bastion["image"], bastion["environment"] = "bastion", "bastion-ssh-ttl:v0.1.0", env
	bastion["portMappings"] = []map[string]any{{"containerPort": 2222}}
	bastion["healthCheck"] = map[string]any{"command": []string{"CMD", "/usr/local/bin/supervisor", "check"}}
	return map[string]any{"networkMode": "bridge", "compatibilities": []string{"EC2", "FARGATE"}, "containerDefinitions": append([]map[string]any{bastion}, others...)}
}

// bastion adds a running bastion with ECS Exec, started 10 minutes ago
// with TTL ttl, owned by owner; its ARN.
func (f *fakeAWS) bastion(id, owner, ttl string) string {
	arn := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + id
	f.api.Add(ecsapi.Task{ARN: arn, ClusterARN: fakeCluster, StartedAt: time.Now().Add(-10 * time.Minute), TaskDefinitionARN: fakeTaskDef,
		Containers: []string{"bastion", "supervisor"}, ExecuteCommand: true, Tags: map[string]string{"bastion-ttl": ttl, "bastion-ttl-owner": owner}})
	return arn
}

func (f *fakeAWS) runTasks() []*ecs.RunTaskInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*ecs.RunTaskInput(nil), f.runs...)
}

// run is the command's stdout, stderr and exit code, Ctrl-C after within.
func (f *fakeAWS) run(within time.Duration, args ...string) (string, string, int) {
	out, errs := &testenv.Buffer{}, &testenv.Buffer{}
	env := f.env
	env.Stdout, env.Stderr = out, errs
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	code := exitCode(Run(ctx, args, env), errs)
	return out.String(), errs.String(), code
}

// runUntil is run, with the Ctrl-C as soon as stdout holds ready (a
// forward's line, say) rather than at within.
func (f *fakeAWS) runUntil(ready string, within time.Duration, args ...string) (string, string, int) {
	out, errs := &testenv.Buffer{}, &testenv.Buffer{}
	env := f.env
	env.Stdout, env.Stderr = out, errs
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	go func() {
		for ctx.Err() == nil && !strings.Contains(out.String(), ready) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	code := exitCode(Run(ctx, args, env), errs)
	return out.String(), errs.String(), code
}

// runTaskECS is the SDK's client with RunTask answered by the fake.
type runTaskECS struct {
	*ecs.Client
	f *fakeAWS
}

func (e runTaskECS) RunTask(_ context.Context, in *ecs.RunTaskInput, _ ...func(*ecs.Options)) (*ecs.RunTaskOutput, error) {
	f := e.f
	f.mu.Lock()
	f.runs = append(f.runs, in)
	n := len(f.runs)
	f.mu.Unlock()
	if f.failures != nil {
		return &ecs.RunTaskOutput{Failures: f.failures}, nil
	}
	arn := fmt.Sprintf("arn:aws:ecs:eu-west-1:123456789012:task/bastions/%032x", 0xfeed0000+n)
	task := ecsapi.Task{ARN: arn, ClusterARN: fakeCluster, StartedAt: time.Now(), TaskDefinitionARN: aws.ToString(in.TaskDefinition),
		Containers: []string{"bastion", "supervisor"}, ExecuteCommand: in.EnableExecuteCommand}
	if f.started != nil {
		task = f.started(arn)
	}
	task.Tags = map[string]string{}
	for _, tag := range in.Tags {
		task.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	f.api.Add(task)
	return &ecs.RunTaskOutput{Tasks: []types.Task{{TaskArn: aws.String(arn), LastStatus: aws.String("PROVISIONING")}}}, nil
}

// fakeStack is a deployed stack's outputs; nil: the stack does not exist.
type fakeStack map[string]string

func (s fakeStack) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	if s == nil || aws.ToString(in.StackName) != "bastion-ttl" {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + aws.ToString(in.StackName) + " does not exist"}
	}
	var outputs []cftypes.Output
	for k, v := range s {
		outputs = append(outputs, cftypes.Output{OutputKey: aws.String(k), OutputValue: aws.String(v)})
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cftypes.Stack{{Outputs: outputs}}}, nil
}

// fakeCaller is who sts get-caller-identity says calls.
type fakeCaller struct{ arn, userID string }

func (c fakeCaller) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Arn: aws.String(c.arn), UserId: aws.String(c.userID), Account: aws.String("123456789012")}, nil
}

// fakePlugin is a session-manager-plugin that says it listens, then holds
// the session until it is asked to stop.
type fakePlugin struct{}

func (fakePlugin) Version(context.Context) (string, error) { return "1.2.707.0", nil }

func (fakePlugin) Run(ctx context.Context, _, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "Waiting for connections...")
	<-ctx.Done()
	return nil
}

// evil is text anyone allowed StopTask (or a tag, were ECS to take it) can
// write: it sets the terminal's title, clears the screen, starts a C1 CSI,
// and reverses what follows.
const evil = "\x1b]0;pwned\x07\x1b[2J \u009b31m \xc2\x9b \u202egnp.exe\u2066"

// terminalSafe fails t if s holds what a terminal acts on (C0 but newline
// and tab, DEL, C1, bytes that are not UTF-8) or a bidi control. It is the
// tests' own judge, not package termtext's rule.
func terminalSafe(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s is not UTF-8: %q", what, s)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			t.Errorf("%s holds %U: %q", what, r, s)
			return
		}
	}
}

// exitCode is the launcher's exit code for err, printed to stderr as main does.
func exitCode(err error, stderr io.Writer) int { return cli.ExitCode(err, stderr, "bastion-ttl") }
