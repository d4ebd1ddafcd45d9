package launcher

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

type runFlags struct {
	common
	taskDefinition, subnets, securityGroups, launchType, supervisor string
	reason                                                          string // "": no reason tag
	ttl                                                             time.Duration
	maxTTL, idle                                                    optDuration // unset: the stack's
	publicIP, exec, wait                                            bool
}

// runCmd is bastion-ttl run.
func runCmd(env *Env) *cli.Command {
	var f runFlags
	return &cli.Command{
		Name:      "run",
		UsageLine: "run [--ttl 2h] [--idle 15m] [--max-ttl 12h] [--cluster C] [--task-definition TD] [flags]",
		Short:     "start a bastion, and wait until it runs",
		Long: `Run starts a bastion whose supervisor stops it at its TTL: the supervisor's
TTL and the sweeper's tag are set to the same value, so they agree. It
starts nothing when the TTL is above the stack's MaxTTL, or when the task
definition's supervisor would not stop the task. With --wait (the default)
it waits until the task runs, then says how to connect.`,
		Flags: func(fs *flag.FlagSet) error {
			err := f.register(fs, env.Environ)
			fs.BoolVar(&f.exec, "exec", env.Environ["BASTION_EXEC"] == "true", "enable ECS Exec (the task role needs ssmmessages:*)")
			fs.BoolVar(&f.wait, "wait", true, "wait until it runs, then say how to connect")
			return err
		},
		Run: withAWS(env, func(ctx context.Context, args []string) error { return runCommand(ctx, args, *env, f) }),
	}
}

func runCommand(ctx context.Context, args []string, env Env, f runFlags) error {
	if len(args) > 0 {
		return badf("run takes no arguments, got %q", args)
	}
	p, err := planLaunch(ctx, env, f)
	if err != nil {
		return err
	}
	arn, err := p.start(ctx, env)
	if err != nil || !f.wait {
		return err
	}
	// From here a bastion runs: a failure says so, and is not bad input.
	if err := waitRunning(ctx, env, p.cluster, arn, p.ttl, p.def, p.sup); err != nil {
		return startedThen(arn, err)
	}
	return nil
}

// startedThen is a failure after a start: it names the task, which keeps
// its TTL, and is not bad input.
func startedThen(arn string, err error) error {
	if errors.Is(err, errInterrupted) {
		return err
	}
	if cli.IsUsage(err) {
		err = errors.New(err.Error())
	}
	return fmt.Errorf("%s started (it keeps its TTL), then: %w", taskID(arn), err)
}

// register adds run's flags (and the common ones), which connect takes
// too; a bad BASTION_MAX_TTL is bad input.
func (f *runFlags) register(fs *flag.FlagSet, environ map[string]string) error {
	f.common.register(fs, environ)
	fs.StringVar(&f.taskDefinition, "task-definition", environ["BASTION_TASK_DEFINITION"], "the bastion's task definition (family[:revision] or ARN)")
	fs.DurationVar(&f.ttl, "ttl", 2*time.Hour, "how long the bastion lives")
	err := f.maxTTL.fromEnv(environ, "BASTION_MAX_TTL")
	fs.Var(&f.maxTTL, "max-ttl", "the stack's MaxTTL, to check --ttl against when the stack cannot be read (default: BASTION_MAX_TTL)")
	fs.Var(&f.idle, "idle", "stop after this long without a session, 0 for never (default: the stack's IdleTimeout, unless the task definition sets 0, as a job's does; else the task definition's); ECS Exec sessions are seen only with the task definition's pidMode task, and without it (with --exec) they count as always in use: only the TTL ends the bastion")
	fs.StringVar(&f.subnets, "subnets", environ["BASTION_SUBNETS"], "comma-separated subnet IDs (awsvpc)")
	fs.StringVar(&f.securityGroups, "security-groups", environ["BASTION_SECURITY_GROUPS"], "comma-separated security group IDs (awsvpc)")
	fs.BoolVar(&f.publicIP, "public-ip", false, "give the task a public IP (a public subnet without NAT)")
	fs.StringVar(&f.launchType, "launch-type", environ["BASTION_LAUNCH_TYPE"], "FARGATE or EC2 (default: the cluster's capacity providers, else FARGATE when the task definition is compatible)")
	fs.StringVar(&f.supervisor, "supervisor-container", environ["BASTION_SUPERVISOR_CONTAINER"], "the container that runs the supervisor (default: found in the task definition)")
	fs.StringVar(&f.reason, "reason", environ["BASTION_REASON"], "why you start it (a ticket, a task), kept in its "+ttltag.ReasonKey+" tag and the ledger: up to 256 letters, numbers, spaces and _ . : / = + - @")
	return err
}

// launch is a checked RunTask, ready to start.
type launch struct {
	in          *ecs.RunTaskInput
	cluster     string
	ttl         time.Duration
	maxTTL      time.Duration // the cap the TTL was checked against
	idle        optDuration   // unset: the supervisor's own
	def         *types.TaskDefinition
	sup         *string
	healthCheck bool
}

// planLaunch checks everything a start needs, and starts nothing: bad
// input is found before any task runs.
func planLaunch(ctx context.Context, env Env, f runFlags) (*launch, error) {
	ttl := f.ttl
	if ttl <= 0 {
		return nil, badf("--ttl %s is not a positive duration such as 2h or 90m", ttl)
	}
	if err := ttltag.CheckReason(f.reason); err != nil {
		return nil, badf("--reason %q (or BASTION_REASON) %v: it is kept in an ECS tag; nothing started", f.reason, err)
	}
	// The stack gives what flags and the environment leave out; with both
	// the cluster and the task definition given, it is asked only for the
	// cap.
	d, err := stackDefaults(ctx, env, f.stack)
	if err != nil && (f.cluster == "" || f.taskDefinition == "") {
		return nil, err
	}
	stackErr := err
	f.cluster = cmp.Or(f.cluster, d.cluster)
	f.taskDefinition = cmp.Or(f.taskDefinition, d.taskDefinition)
	if err := need(f.cluster, "cluster", "BASTION_CLUSTER", "ClusterName", f.stack, d); err != nil {
		return nil, err
	}
	if err := need(f.taskDefinition, "task-definition", "BASTION_TASK_DEFINITION", "TaskDefinition", f.stack, d); err != nil {
		return nil, err
	}
	maxTTL, note, err := capToCheck(d, stackErr, f.stack, f.maxTTL)
	if err != nil {
		return nil, err
	}
	if ttl > maxTTL {
		return nil, badf("--ttl %s is above the stack's cap, MaxTTL %s: the sweeper would stop the bastion at the cap", ttl, maxTTL)
	}
	if note != "" {
		fmt.Fprintln(env.Stderr, "bastion-ttl: note:", note)
	}
	idle := f.idle
	if i := idle.d; idle.set && (i < 0 || i != 0 && i < time.Second) {
		return nil, badf("--idle %s is not 0 (off) or a duration of at least 1s, such as 15m", i)
	}
	cl, err := describeCluster(ctx, env, f.cluster)
	if err != nil {
		return nil, err
	}
	td, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(f.taskDefinition)})
	if err != nil {
		if ce := (*types.ClientException)(nil); errors.As(err, &ce) {
			return nil, badf("task definition %q not found: register one (examples/sidecar-task-definition.json) or pass --task-definition", f.taskDefinition)
		}
		return nil, awsError("the task definition "+f.taskDefinition, err)
	}
	def := td.TaskDefinition
	if def.Status == types.TaskDefinitionStatusInactive {
		return nil, badf("task definition %s is INACTIVE (deregistered): register it again or pass another", termtext.Safe(aws.ToString(def.TaskDefinitionArn)))
	}
	sup, healthCheck, err := supervisorContainer(def, f.supervisor)
	if err != nil {
		return nil, badf("task definition %s: %v", f.taskDefinition, err)
	}
	if err := restartPolicyDefeatsFailSafe(def, aws.ToString(sup), healthCheck); err != nil {
		return nil, badf("task definition %s: %v", f.taskDefinition, err)
	}
	if err := notEssential(def, aws.ToString(sup), healthCheck); err != nil {
		return nil, badf("task definition %s: %v", f.taskDefinition, err)
	}
	supMax, err := supervisorCap(def, aws.ToString(sup), maxTTL, d.maxTTL > 0)
	if err != nil {
		return nil, badf("task definition %s: %v", f.taskDefinition, err)
	}
	if !idle.set && d.idleTimeout != "" {
		// A definition whose supervisor turns idleness off (a job's) keeps
		// it off: the stack's IdleTimeout is a default for bastions.
		if idleOff(def, aws.ToString(sup)) {
			idle = optDuration{0, true}
		} else if err := idle.Set(d.idleTimeout); err != nil {
			return nil, badf("the stack %s's output IdleTimeout %q is %v", f.stack, d.idleTimeout, err)
		} else if i := idle.d; i < 0 || i != 0 && i < time.Second {
			return nil, badf("the stack %s's output IdleTimeout %q is not 0 (off) or a duration of at least 1s", f.stack, d.idleTimeout)
		}
	}
	switch {
	case supMax > 0 && ttl > supMax:
		return nil, badf("--ttl %s is above BASTION_MAX_TTL %s, which task definition %s gives the supervisor's container %q: the supervisor would refuse it; pass a shorter --ttl", ttl, supMax, f.taskDefinition, aws.ToString(sup))
	case supMax == 0:
		fmt.Fprintf(env.Stderr, "bastion-ttl: note: task definition %s gives the supervisor's container %q no BASTION_MAX_TTL and the stack's MaxTTL is not known: none is sent, the supervisor keeps its own default (and refuses a TTL above it)\n", f.taskDefinition, aws.ToString(sup))
	}
	in := &ecs.RunTaskInput{
		Cluster:        aws.String(f.cluster),
		TaskDefinition: def.TaskDefinitionArn,
		Count:          aws.Int32(1),
		StartedBy:      aws.String(StartedBy),
		// The supervisor's TTL and the sweeper's tag: one value, so they agree.
		Overrides:            supervisorOverride(sup, ttl, supMax, idle, healthCheck),
		Tags:                 []types.Tag{{Key: aws.String(ttltag.Key), Value: aws.String(ttl.String())}},
		EnableExecuteCommand: f.exec,
	}
	if f.reason != "" {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(ttltag.ReasonKey), Value: aws.String(f.reason)})
	}
	if who, err := whoCalls(ctx, env); err == nil {
		if err := ownerOK(who.userID); err != nil {
			return nil, err
		}
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(ttltag.OwnerKey), Value: aws.String(who.userID)})
	} else if cli.IsUsage(err) {
		return nil, err
	}
	switch strings.ToUpper(f.launchType) {
	case "":
		// The cluster's capacity providers (FARGATE_SPOT, say) when it has a
		// default strategy; a launch type would override them.
		fargate := slices.Contains(def.RequiresCompatibilities, types.CompatibilityFargate) || slices.Contains(def.Compatibilities, types.CompatibilityFargate)
		if len(cl.DefaultCapacityProviderStrategy) == 0 && fargate {
			in.LaunchType = types.LaunchTypeFargate
		}
	case "FARGATE":
		in.LaunchType = types.LaunchTypeFargate
	case "EC2":
		in.LaunchType = types.LaunchTypeEc2
	default:
		return nil, badf("--launch-type %q: use FARGATE or EC2", f.launchType)
	}
	if def.NetworkMode == types.NetworkModeAwsvpc {
		subnets, groups := or2(splitList(f.subnets), d.subnets), or2(splitList(f.securityGroups), d.securityGroups)
		if len(subnets) == 0 {
			return nil, badf("task definition %s uses awsvpc: pass --subnets (or set BASTION_SUBNETS, or the stack's Subnets output)", f.taskDefinition)
		}
		assign := types.AssignPublicIpDisabled
		if f.publicIP {
			assign = types.AssignPublicIpEnabled
		}
		in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: subnets, SecurityGroups: groups, AssignPublicIp: assign,
		}}
	}
	return &launch{in: in, cluster: f.cluster, ttl: ttl, maxTTL: maxTTL, idle: idle, def: def, sup: sup, healthCheck: healthCheck}, nil
}

// start runs the task and says so; it returns the task's ARN.
func (l *launch) start(ctx context.Context, env Env) (string, error) {
	in, ttl, idle := l.in, l.ttl, l.idle
	out, err := env.ECS.RunTask(ctx, in)
	if err != nil {
		if ctx.Err() != nil { // Ctrl-C: the request may have reached ECS
			return "", fmt.Errorf("%w during run-task: a bastion may have started; bastion-ttl ls shows it", errInterrupted)
		}
		return "", awsError("run-task", err)
	}
	if len(out.Failures) > 0 || len(out.Tasks) == 0 {
		var why []string
		for _, fl := range out.Failures {
			why = append(why, termtext.Safe(aws.ToString(fl.Reason)+" "+aws.ToString(fl.Detail)))
		}
		return "", fmt.Errorf("run-task started nothing: %s", strings.Join(why, "; "))
	}
	task := out.Tasks[0]
	arn := aws.ToString(task.TaskArn)
	fmt.Fprintf(env.Stdout, "started %s in %s: TTL %s", taskID(arn), l.cluster, ttl)
	switch {
	case l.healthCheck:
	case idle.set && idle.d == 0:
		fmt.Fprint(env.Stdout, ", no idle timeout")
	case idle.set:
		fmt.Fprintf(env.Stdout, ", idle timeout %s", idle.d)
	}
	fmt.Fprintln(env.Stdout)
	return arn, nil
}

func or2(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// capToCheck is the stack's MaxTTL, which the TTL must not pass: the
// stack's output, else --max-ttl (or BASTION_MAX_TTL). With neither, the
// launch is refused: a TTL that the sweeper cuts short would tell people
// a deadline that is not theirs.
func capToCheck(d defaults, stackErr error, stack string, flagValue optDuration) (maxTTL time.Duration, note string, err error) {
	if d.maxTTL > 0 {
		return d.maxTTL, "", nil
	}
	why := fmt.Sprintf("the stack %s does not exist", stack)
	switch {
	case stackErr != nil:
		why = stackErr.Error()
	case d.found:
		why = fmt.Sprintf("the stack %s has no MaxTTL output", stack)
	}
	if !flagValue.set {
		return 0, "", badf("cannot read the stack's MaxTTL (%s): pass --max-ttl with the stack's MaxTTL, or --stack; nothing started", why)
	}
	m := flagValue.d
	if m <= 0 {
		return 0, "", badf("--max-ttl %s is not a positive duration such as 12h", m)
	}
	return m, fmt.Sprintf("cannot read the stack's MaxTTL (%s); checking against --max-ttl %s", why, m), nil
}

// restartPolicyDefeatsFailSafe refuses a restart policy on the container
// whose exit is the supervisor's fail-safe: ECS would restart the
// container instead of stopping the task. The sidecar exits 1 (fail-safe)
// or 2 (configuration): a policy that ignores both still stops the task.
// The health check's fail-safe is a SIGTERM to its container's PID 1,
// whose exit code nothing fixes: no restart policy there.
func restartPolicyDefeatsFailSafe(def *types.TaskDefinition, sup string, healthCheck bool) error {
	for _, c := range def.ContainerDefinitions {
		rp := c.RestartPolicy
		if aws.ToString(c.Name) != sup || rp == nil || !aws.ToBool(rp.Enabled) {
			continue
		}
		if healthCheck {
			return fmt.Errorf("container %q runs the health check and has a restart policy: its fail-safe (SIGTERM to the container) would restart it, not stop the task; remove restartPolicy from it", sup)
		}
		if !slices.Contains(rp.IgnoredExitCodes, 1) || !slices.Contains(rp.IgnoredExitCodes, 2) {
			return fmt.Errorf("the supervisor's container %q has a restart policy: its fail-safe exit would restart it, not stop the task; remove restartPolicy from it, or add 1 and 2 to its ignoredExitCodes", sup)
		}
	}
	return nil
}

// overrideVars are the only variables run and connect ever override, and
// only in the supervisor's container: its TTL (at most the cap), its cap
// (at most its task definition's) and its idle timeout. Never a command,
// another container, or another variable (BASTION_FAILSAFE, BASTION_GRACE,
// BASTION_DRY_RUN, BASTION_TERMINATE_URL...): those keep the task
// definition's values, which its author chose for the fail-safe.
var overrideVars = []string{"BASTION_TTL", "BASTION_MAX_TTL", "BASTION_IDLE_TIMEOUT"}

// supervisorOverride is the one override of a launch: the supervisor's
// environment, the TTL (the sweeper's tag holds the same value, so they
// agree) and the cap (maxTTL; 0: none sent, the task definition's stands).
// The idle timeout is the sidecar's alone: the health check has none.
func supervisorOverride(sup *string, ttl, maxTTL time.Duration, idle optDuration, healthCheck bool) *types.TaskOverride {
	env := []types.KeyValuePair{{Name: aws.String(overrideVars[0]), Value: aws.String(ttl.String())}}
	if maxTTL > 0 {
		env = append(env, types.KeyValuePair{Name: aws.String(overrideVars[1]), Value: aws.String(maxTTL.String())})
	}
	if idle.set && !healthCheck {
		env = append(env, types.KeyValuePair{Name: aws.String(overrideVars[2]), Value: aws.String(idle.d.String())})
	}
	return &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: sup, Environment: env}}}
}

// supervisorCap is the BASTION_MAX_TTL to send the supervisor, given the
// cap the TTL was checked against. An override may lower the cap the task
// definition gives the supervisor, never raise it: a --max-ttl typed when
// the stack cannot be read is anyone's word. Without a value in the task
// definition, the stack's cap is sent (the sweeper's own), a typed one is
// not (0): the supervisor keeps its default.
func supervisorCap(def *types.TaskDefinition, sup string, checked time.Duration, fromStack bool) (time.Duration, error) {
	for _, c := range def.ContainerDefinitions {
		if aws.ToString(c.Name) != sup {
			continue
		}
		for _, kv := range c.Environment {
			if aws.ToString(kv.Name) != "BASTION_MAX_TTL" {
				continue
			}
			v := aws.ToString(kv.Value)
			m, err := time.ParseDuration(v)
			if err != nil || m <= 0 {
				return 0, fmt.Errorf("container %q sets BASTION_MAX_TTL %q, not a positive duration such as 12h: the supervisor would refuse to start; set it to the stack's MaxTTL and register the task definition again", sup, v)
			}
			return min(m, checked), nil
		}
	}
	if fromStack {
		return checked, nil
	}
	return 0, nil
}

// idleOff says whether the task definition sets the supervisor's
// BASTION_IDLE_TIMEOUT to 0 (off), as a job's does.
func idleOff(def *types.TaskDefinition, sup string) bool {
	for _, c := range def.ContainerDefinitions {
		if aws.ToString(c.Name) != sup {
			continue
		}
		for _, kv := range c.Environment {
			if aws.ToString(kv.Name) == "BASTION_IDLE_TIMEOUT" {
				d, err := time.ParseDuration(aws.ToString(kv.Value))
				return aws.ToString(kv.Value) == "0" || err == nil && d == 0
			}
		}
	}
	return false
}

// notEssential refuses a supervisor whose fail-safe would stop nothing:
// ECS stops a task when an essential container exits, and only then. The
// sidecar's fail-safe exit (1) and its exit on bad configuration (2) must
// be an essential container's; the health check's fail-safe is SIGTERM to
// its container's PID 1, so that container must be essential.
func notEssential(def *types.TaskDefinition, sup string, healthCheck bool) error {
	for _, c := range def.ContainerDefinitions {
		// nil is essential: ECS's default when a registration leaves the
		// field out ("if the essential parameter is omitted, the container
		// is assumed to be essential"), which DescribeTaskDefinition fills
		// in; an answer without it is read by ECS the same way.
		if aws.ToString(c.Name) != sup || c.Essential == nil || *c.Essential {
			continue
		}
		if healthCheck {
			return fmt.Errorf("container %q runs the supervisor's health check and is not essential (essential: false): the fail-safe's SIGTERM to its PID 1 would end that container, not the task; set \"essential\": true on it and register the task definition again", sup)
		}
		return fmt.Errorf("the supervisor's container %q is not essential (essential: false): its fail-safe exit, and its exit 2 on bad configuration, would stop nothing; set \"essential\": true on it and register the task definition again", sup)
	}
	return nil
}

// ownerOK refuses a user ID the owner tag cannot hold verbatim (bad input:
// the caller can only change it by another session name). Never a value
// mapped to fit: that could be someone else's ID, and connect would reuse
// their bastion.
func ownerOK(userID string) error {
	if err := ttltag.CheckOwner(userID); err != nil {
		return badf("your user ID %q (sts get-caller-identity) %v, and a bastion's %s tag is its owner's user ID exactly; nothing started: use a role session name of letters, digits and _ . : / = + - @ (aws sts assume-role --role-session-name, or your identity provider's session name)", userID, err, ttltag.OwnerKey)
	}
	return nil
}

// describeCluster refuses a cluster ECS does not know, before anything starts.
func describeCluster(ctx context.Context, env Env, cluster string) (types.Cluster, error) {
	out, err := env.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{cluster}})
	if err != nil {
		return types.Cluster{}, awsError("the cluster "+cluster, err)
	}
	for _, c := range out.Clusters {
		if aws.ToString(c.Status) == "ACTIVE" {
			return c, nil
		}
	}
	return types.Cluster{}, badf("cluster %q does not exist (or is not active) in this account and region: pass --cluster, or check AWS_PROFILE and AWS_REGION", cluster)
}

// supervisorContainer is the container that runs the supervisor, and
// whether as the health check: named, else the one whose environment has
// BASTION_TERMINATE_URL, else one whose command is watch (or empty, on the
// supervisor's image, whose CMD is watch), else one whose health check runs
// supervisor check.
func supervisorContainer(def *types.TaskDefinition, named string) (*string, bool, error) {
	isCheck := func(c types.ContainerDefinition) bool {
		return c.HealthCheck != nil && strings.Contains(strings.Join(c.HealthCheck.Command, " "), "supervisor check")
	}
	if named != "" {
		for _, c := range def.ContainerDefinitions {
			if aws.ToString(c.Name) == named {
				return c.Name, isCheck(c), nil
			}
		}
		return nil, false, fmt.Errorf("no container %q (--supervisor-container)", named)
	}
	for _, c := range def.ContainerDefinitions {
		for _, kv := range c.Environment {
			if aws.ToString(kv.Name) == "BASTION_TERMINATE_URL" {
				return c.Name, isCheck(c), nil
			}
		}
	}
	for _, c := range def.ContainerDefinitions {
		cmd := c.Command
		onImage := strings.Contains(aws.ToString(c.Image), "bastion-ttl/supervisor") || strings.Contains(aws.ToString(c.Image), "bastion-ttl-supervisor")
		if (len(cmd) > 0 && cmd[len(cmd)-1] == "watch" && (len(cmd) == 1 || strings.HasSuffix(cmd[0], "supervisor"))) || (len(cmd) == 0 && onImage) {
			return c.Name, false, nil
		}
	}
	for _, c := range def.ContainerDefinitions {
		if isCheck(c) {
			return c.Name, true, nil
		}
	}
	return nil, false, errors.New("no container runs the supervisor (one with BASTION_TERMINATE_URL, a command of watch, or a health check running supervisor check): its TTL cannot be set; name it with --supervisor-container")
}

// taskID is the task's ID, as printed too: an ID ECS made is unchanged by
// termtext.Safe, and an answer that is not one does not reach a terminal raw.
func taskID(arn string) string { return termtext.Safe(ecsarn.TaskID(arn)) }
