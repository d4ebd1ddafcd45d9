// Package launcher is the bastion-ttl command, for the people who need a
// bastion: run one (the supervisor's TTL and the sweeper's tag set to the
// same value, so they always agree), list the running ones, stop them. It
// runs on laptops, so it uses the SDK's whole credential chain (profiles,
// SSO, the environment), unlike the supervisor.
package launcher

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

const usage = `usage: bastion-ttl <command> [flags]

commands:
  run   start a bastion: bastion-ttl run [--ttl 2h] [--max-ttl 12h] [--idle 15m] [--cluster C] [--task-definition TD]
        [--subnets a,b] [--security-groups g] [--public-ip] [--exec] [--launch-type FARGATE|EC2]
        [--supervisor-container NAME] [--wait=true]
  connect  reach what is behind your bastion, started if needed: bastion-ttl connect [NAME] [--to HOST:PORT]
        [--local-port N] [--shell] [--stop] [--config FILE] and run's flags (without --to or --shell:
        the bastion's own port); alone, it lists the connections of the config file (bastion-ttl.yaml)
  ls    list the running bastions: bastion-ttl ls [--cluster C] [--json]
  stop  stop bastions: bastion-ttl stop [--cluster C] [--force] TASK...
  version

Every command takes --stack NAME (default bastion-ttl, or BASTION_STACK): the
deployed stack whose outputs give the defaults (cluster, task definition,
subnets, security groups, the cap). When it cannot be read, run starts
nothing unless --max-ttl (or BASTION_MAX_TTL) gives the cap. Flags win over BASTION_CLUSTER,
BASTION_TASK_DEFINITION, BASTION_SUBNETS, BASTION_SECURITY_GROUPS,
BASTION_LAUNCH_TYPE, BASTION_EXEC and BASTION_SUPERVISOR_CONTAINER, which
win over the stack. AWS credentials and region: the SDK's usual chain
(AWS_PROFILE, SSO, environment).`

// StartedBy is startedBy of every task the launcher runs (its tags are
// package ttltag's).
const StartedBy = "bastion-ttl"

// ECS is the ECS calls the launcher makes.
type ECS interface {
	RunTask(context.Context, *ecs.RunTaskInput, ...func(*ecs.Options)) (*ecs.RunTaskOutput, error)
	DescribeTasks(context.Context, *ecs.DescribeTasksInput, ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
	ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	StopTask(context.Context, *ecs.StopTaskInput, ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
	DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	DescribeClusters(context.Context, *ecs.DescribeClustersInput, ...func(*ecs.Options)) (*ecs.DescribeClustersOutput, error)
	ExecuteCommand(context.Context, *ecs.ExecuteCommandInput, ...func(*ecs.Options)) (*ecs.ExecuteCommandOutput, error)
}

// Stacks reads the stack's outputs.
type Stacks interface {
	DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// Caller says who runs the command.
type Caller interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Env is what a command runs with.
type Env struct {
	Environ        map[string]string
	Stdout, Stderr io.Writer
	Now            func() time.Time
	Poll           time.Duration // between looks while waiting; 0: 3 s
	ECS            ECS
	Stacks         Stacks
	Caller         Caller
	Connect        ConnectEnv // what connect needs beyond the others
}

// usageError is bad input: exit 2, nothing started.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func badf(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// ExitCode is the process's exit code for Run's error, printed to stderr:
// 0, 1 (it failed), 2 (bad input, nothing done), 130 (interrupted).
func ExitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "bastion-ttl:", safeLines(err.Error()))
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, errInterrupted):
		return 130
	}
	return 1
}

// safeLines is an error's text made safe for a terminal, line by line and
// cell by cell: the usage texts' own newlines and tabs stay, anything else
// that came from AWS and was missed on its way in does not reach the
// terminal raw.
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		cells := strings.Split(line, "\t")
		for j := range cells {
			cells[j] = termtext.Safe(cells[j])
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n")
}

var errInterrupted = errors.New("interrupted")

// Run runs one command.
func Run(ctx context.Context, args []string, env Env) error {
	if env.Now == nil {
		env.Now = time.Now
	}
	if len(args) == 0 {
		return badf("no command\n%s", usage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return runCommand(ctx, args, env)
	case "ls":
		return lsCommand(ctx, args, env)
	case "stop":
		return stopCommand(ctx, args, env)
	case "connect":
		return connectCommand(ctx, args, env)
	case "help", "-h", "--help":
		_, err := fmt.Fprintln(env.Stdout, usage)
		return err
	case "version":
		_, err := fmt.Fprintln(env.Stdout, "bastion-ttl", buildinfo.Read())
		return err
	}
	return badf("unknown command %q (use run, connect, ls or stop)", cmd)
}

// common are the flags every command takes.
type common struct {
	stack, cluster string
}

func newFlags(name string, env Env, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.stack, "stack", cmp.Or(env.Environ["BASTION_STACK"], "bastion-ttl"), "the deployed stack whose outputs give the defaults")
	fs.StringVar(&c.cluster, "cluster", env.Environ["BASTION_CLUSTER"], "the ECS cluster")
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		return usageError{fmt.Sprintf("bastion-ttl %s flags:\n%s", fs.Name(), b.String())}
	}
	if err != nil {
		return badf("%s: %v (bastion-ttl help)", fs.Name(), err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// caller is who runs the command: the ARN, for the stop reason people read,
// and the user ID (<RoleId>:<session> of a role, a user's ID), the owner
// tag's value. The launcher policy admits no other owner value, because IAM
// can compare a tag only with ${aws:userid}: nobody can tag a bastion as
// someone else's.
type caller struct{ arn, userID string }

func whoCalls(ctx context.Context, env Env) (caller, error) {
	out, err := env.Caller.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return caller{}, awsError("who you are (sts get-caller-identity)", err)
	}
	return caller{arn: aws.ToString(out.Arn), userID: aws.ToString(out.UserId)}, nil
}

// Usage is a bad-input error (exit 2) of the command's own wiring.
func Usage(msg string) error { return usageError{msg} }
