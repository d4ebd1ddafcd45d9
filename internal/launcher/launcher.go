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
	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
)

// footer ends the help: what every command shares.
const footer = `Every command but version takes --stack NAME (default bastion-ttl, or
BASTION_STACK): the deployed stack whose outputs give the defaults (cluster,
task definition, subnets, security groups, the cap). When it cannot be read,
run starts nothing unless --max-ttl (or BASTION_MAX_TTL) gives the cap. Flags
win over BASTION_CLUSTER, BASTION_TASK_DEFINITION, BASTION_SUBNETS,
BASTION_SECURITY_GROUPS, BASTION_LAUNCH_TYPE, BASTION_EXEC,
BASTION_SUPERVISOR_CONTAINER and BASTION_REASON, which win over the stack. AWS credentials and
region: the SDK's usual chain (AWS_PROFILE, SSO, environment).

exit codes: 0 done, 1 failed, 2 bad input (nothing started or stopped), 130 interrupted`

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
	Clock          clock.Clock   // every reading of the time and every wait; nil: the system's
	Poll           time.Duration // between looks while waiting; 0: 3 s
	ECS            ECS
	Stacks         Stacks
	Caller         Caller
	Connect        ConnectEnv     // what connect needs beyond the others
	Ledger         ledger.Querier // the ledger's reader: history, rightsize
	// LoadAWS, when set, fills in the AWS clients (ECS, Stacks, Caller,
	// Connect's) before a command that calls AWS runs: help, -h and
	// version need no credentials or region.
	LoadAWS func(ctx context.Context, env *Env) error
}

// errInterrupted is Ctrl-C: exit 130.
var errInterrupted error = &cli.ExitError{Code: 130, Err: errors.New("interrupted")}

// badf is bad input: exit 2, nothing started.
func badf(format string, args ...any) error { return cli.Usagef(format, args...) }

// Run runs one command of the table (commands): run, connect, ls, stop,
// history, rightsize, version, and help. Its error's exit code is cli.ExitCode's: 0, 1 (it
// failed), 2 (bad input, nothing done), 130 (interrupted).
func Run(ctx context.Context, args []string, env Env) error {
	if env.Clock == nil {
		env.Clock = clock.System{}
	}
	p := &cli.Program{Name: "bastion-ttl", Commands: commands(&env), Footer: footer, Stdout: env.Stdout}
	return p.Run(ctx, args)
}

// commands is the table: help lists them in this order.
func commands(env *Env) []*cli.Command {
	return []*cli.Command{runCmd(env), connectCmd(env), extendCmd(env), lsCmd(env), stopCmd(env), historyCmd(env), rightsizeCmd(env), {
		Name: "version", UsageLine: "version", Short: "print the version, commit and Go version",
		Run: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return badf("version takes no arguments, got %q", args)
			}
			_, err := fmt.Fprintln(env.Stdout, "bastion-ttl", buildinfo.Read())
			return err
		},
	}}
}

// withAWS is run, after env.LoadAWS (when set) gave env its AWS clients.
func withAWS(env *Env, run func(ctx context.Context, args []string) error) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if env.LoadAWS != nil {
			if err := env.LoadAWS(ctx, env); err != nil {
				return err
			}
		}
		return run(ctx, args)
	}
}

// common are the flags every command takes.
type common struct {
	stack, cluster string
}

func (c *common) register(fs *flag.FlagSet, environ map[string]string) {
	fs.StringVar(&c.stack, "stack", cmp.Or(environ["BASTION_STACK"], "bastion-ttl"), "the deployed stack whose outputs give the defaults")
	fs.StringVar(&c.cluster, "cluster", environ["BASTION_CLUSTER"], "the ECS cluster")
}

// optDuration is a duration flag that may be unset ("" in help): set says
// it was given, by the flag or its environment variable.
type optDuration struct {
	d   time.Duration
	set bool
}

func (o *optDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration such as 15m or 2h")
	}
	*o = optDuration{d, true}
	return nil
}

// fromEnv is the environment variable name's value, the flag's default; a
// bad value names the variable and the value.
func (o *optDuration) fromEnv(environ map[string]string, name string) error {
	v, ok := environ[name]
	if !ok || v == "" {
		return nil
	}
	if err := o.Set(v); err != nil {
		return badf("%s %q is %v", name, v, err)
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
