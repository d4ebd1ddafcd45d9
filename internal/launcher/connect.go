package launcher

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/localport"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// SSM is the Session Manager calls connect makes.
type SSM interface {
	StartSession(context.Context, *ssm.StartSessionInput, ...func(*ssm.Options)) (*ssm.StartSessionOutput, error)
	TerminateSession(context.Context, *ssm.TerminateSessionInput, ...func(*ssm.Options)) (*ssm.TerminateSessionOutput, error)
}

// ConnectEnv is what connect runs with beyond the other commands' Env.
type ConnectEnv struct {
	SSM    SSM
	Plugin Plugin // nil: the one on PATH
	// Region and Profile are the plugin's arguments (Profile may be "");
	// SSMEndpoint and ECSEndpoint the endpoint URLs it is given.
	Region, Profile          string
	SSMEndpoint, ECSEndpoint string
	Stdin                    io.Reader // a --shell session's input
	// WorkDir is where the search for bastion-ttl.yaml starts, upwards;
	// UserConfigDir the user's config directory (os.UserConfigDir).
	WorkDir, UserConfigDir string
	HomeDir                string          // os.UserHomeDir: the search goes no higher
	Reconnect              backoff.Policy  // between reconnects; zero: 1s doubling to 30s
	WarnBefore             []time.Duration // the warnings' marks before the deadline; nil: 10m and 1m
	ReuseLeft              time.Duration   // the least time left for a bastion to be reused; 0: 5m
}

type connectFlags struct {
	runFlags
	to, config  string
	localPort   int
	shell, stop bool
}

// connectCmd is bastion-ttl connect.
func connectCmd(env *Env) *cli.Command {
	var f connectFlags
	var fs *flag.FlagSet
	return &cli.Command{
		Name:      "connect",
		UsageLine: "connect [NAME] [--to HOST:PORT] [--local-port N] [--shell] [--stop] [--config FILE] [run's flags]",
		Short:     "reach what is behind your bastion, started if needed",
		Long: `Connect forwards a local port through your bastion to HOST:PORT (--to), to
the bastion container's own port (neither --to nor --shell), or opens a
shell in it (--shell), through ECS Exec and the session-manager-plugin. It
reuses your running bastion when it has ECS Exec and time left, else it
starts one as run does, with run's flags. NAME is a connection of the config
file (bastion-ttl.yaml, in the repository and the user's config directory),
whose values the flags override. Alone (or with only --config), it lists the
connections. See docs/connect.md.`,
		Flags: func(set *flag.FlagSet) error {
			fs = set
			err := f.register(fs, env.Environ)
			fs.StringVar(&f.to, "to", "", "HOST:PORT to forward a local port to, through the bastion (a database, say); without it (and --shell), the bastion container's first port mapping")
			fs.IntVar(&f.localPort, "local-port", 0, "the local port (default: the remote one)")
			fs.BoolVar(&f.shell, "shell", false, "an interactive shell in the bastion (ECS Exec) instead of a port forward")
			fs.BoolVar(&f.stop, "stop", false, "stop the bastion when the session ends (default: leave it to its idle timeout and TTL)")
			fs.StringVar(&f.config, "config", env.Environ["BASTION_CONFIG"], "the config file of named connections, read alone (default: the repository's "+ConfigName+" and the user's)")
			return err
		},
		Interspersed: true, // connect NAME --to ...
		Run: withAWS(env, func(ctx context.Context, args []string) error {
			if len(args) > 1 {
				return badf("connect takes one connection name, got %q", args)
			}
			set := map[string]bool{}
			fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
			return connectCommand(ctx, args, *env, f, set)
		}),
	}
}

func connectCommand(ctx context.Context, args []string, env Env, f connectFlags, set map[string]bool) error {
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	ce := env.Connect
	files, err := readConfigs(f.config, ce)
	if err != nil {
		return err
	}
	// Alone (or with only --config) it lists; any other flag asks for a
	// connection, to the bastion's own port when neither --to nor --shell.
	onlyConfig := len(set) == 0 || (len(set) == 1 && set["config"])
	if name == "" && f.to == "" && !f.shell && onlyConfig {
		return listConnections(env, files)
	}
	var named *Connection
	if name != "" {
		c, from, shadowed, ok := files.connection(name)
		if !ok {
			return files.unknown(name, ce.UserConfigDir)
		}
		if shadowed != nil {
			fmt.Fprintf(env.Stderr, "bastion-ttl: note: connection %s is the %s (%s), which shadows %s (%s)\n", name, whose(from.from), termtext.Safe(from.path), whose(shadowed.from), termtext.Safe(shadowed.path))
		}
		named = &c
		f.apply(c, set)
	}
	if f.shell && f.to != "" {
		return badf("--shell and --to: a session is a shell or a port forward, not both")
	}
	host, port := "", 0
	if f.to != "" {
		if host, port, err = splitTarget(f.to); err != nil {
			return badf("--to %v", err)
		}
	}
	if f.localPort < 0 || f.localPort > 65535 {
		return badf("--local-port %d is not a port (1-65535)", f.localPort)
	}
	plugin := ce.Plugin
	if plugin == nil {
		plugin = PathPlugin{}
	}
	version, err := plugin.Version(ctx)
	if errors.Is(err, ErrNoPlugin) {
		return badf("%v: %s; nothing started", err, pluginInstall)
	} else if err != nil {
		return badf("%v: reinstall it (%s); nothing started", err, pluginInstall)
	}
	if named != nil && named.Stack != "" && named.Cluster != "" && !set["cluster"] {
		if d, err := stackDefaults(ctx, env, f.stack); err == nil && d.cluster != "" && ecsarn.ClusterName(d.cluster) != ecsarn.ClusterName(named.Cluster) {
			return badf("connection %s: cluster %s is not the stack %s's ClusterName output (%s): name one of them", name, named.Cluster, f.stack, d.cluster)
		}
	}
	f.exec = true // the session is ECS Exec's
	plan, err := planLaunch(ctx, env, f.runFlags)
	if err != nil {
		return err
	}
	cluster := plan.cluster
	who, err := whoCalls(ctx, env)
	if err != nil {
		return err
	}
	bastions, err := list(ctx, env, cluster, plan.maxTTL)
	if err != nil {
		return err
	}
	reuse, task, notes, err := pickReusable(ctx, env, cluster, bastions, who.userID)
	if err != nil {
		return err
	}
	if reuse != nil && f.reason != "" && reuse.Reason != f.reason {
		notes = append(notes, fmt.Sprintf("your bastion %s was started for %q, not --reason %q: reused, its reason stays (a tag is set only at start)", reuse.TaskID, termtext.Safe(reuse.Reason), f.reason))
	}
	for _, n := range notes {
		fmt.Fprintln(env.Stderr, "bastion-ttl: note:", n)
	}
	def, sup := plan.def, plan.sup
	if reuse != nil {
		td, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: task.TaskDefinitionArn})
		if err != nil {
			return awsError("the task definition of "+reuse.TaskID, err)
		}
		def = td.TaskDefinition
		if sup, _, err = supervisorContainer(def, f.supervisor); err != nil {
			sup = nil
		}
	}
	container, ownPort := bastionContainer(def, sup)
	if !f.shell && f.to == "" {
		if ownPort == 0 {
			return badf("the bastion's task definition %s maps no port: pass --to HOST:PORT, or --shell", termtext.Safe(aws.ToString(def.TaskDefinitionArn)))
		}
		port = int(ownPort)
	}
	local := f.localPort
	if local == 0 {
		local = port
	}
	if !f.shell {
		if err := localport.Check(local); err != nil {
			return err
		}
	}
	c := &connection{env: env, ce: ce, plugin: plugin, version: version, cluster: cluster, container: container,
		host: host, port: port, local: local, shell: f.shell, stop: f.stop, who: who, maxTTL: plan.maxTTL}
	if reuse != nil {
		c.arn, c.deadline = reuse.TaskARN, *reuse.Deadline
		fmt.Fprintf(c.out(), "reusing your bastion %s in %s (stops at %s, %s left)\n", reuse.TaskID, cluster, when(c.deadline), lifetime.LeftText(c.deadline, env.Clock.Now()))
	} else {
		arn, err := plan.start(ctx, env)
		if err != nil {
			return err
		}
		c.arn, c.started = arn, true
		if task, err = waitUntilRunning(ctx, env, cluster, arn, plan.ttl); err != nil {
			return startedThen(arn, err)
		}
		if task.StartedAt != nil {
			c.deadline = task.StartedAt.Add(plan.ttl)
		}
	}
	if c.runtimeID, err = execReady(ctx, env, cluster, task, container); err != nil {
		if c.started {
			return startedThen(c.arn, err)
		}
		return cli.Usage(err.Error())
	}
	if err := c.run(ctx); err != nil {
		if c.started && !errors.As(err, new(errBastionStopped)) {
			return startedThen(c.arn, err)
		}
		return err
	}
	return nil
}

// apply is a named connection's values where no flag was given.
func (f *connectFlags) apply(c Connection, set map[string]bool) {
	str := func(flagName string, dst *string, v string) {
		if !set[flagName] && v != "" {
			*dst = v
		}
	}
	str("stack", &f.stack, c.Stack)
	str("cluster", &f.cluster, c.Cluster)
	str("task-definition", &f.taskDefinition, c.TaskDefinition)
	str("reason", &f.reason, c.Reason)
	// The config file's durations were checked when it was read.
	if d, err := time.ParseDuration(c.TTL); !set["ttl"] && err == nil {
		f.ttl = d
	}
	if d, err := time.ParseDuration(c.Idle); !set["idle"] && err == nil {
		f.idle = optDuration{d, true}
	}
	str("subnets", &f.subnets, strings.Join(c.Subnets, ","))
	str("security-groups", &f.securityGroups, strings.Join(c.SecurityGroups, ","))
	if !set["to"] && !set["shell"] {
		f.to, f.shell = c.To, c.Shell
	}
	if !set["local-port"] && c.LocalPort != 0 {
		f.localPort = c.LocalPort
	}
}

// listConnections lists every file's connections, each with where it
// comes from; one a file of higher rank has too is marked shadowed.
func listConnections(env Env, files configFiles) error {
	if len(files) == 0 {
		return badf("nothing to connect to: pass --to HOST:PORT or --shell, or name a connection of a %s (in the repository, or in %s): see docs/connect.md",
			ConfigName, filepath.Join(cmp.Or(env.Connect.UserConfigDir, "<config dir>"), "bastion-ttl"))
	}
	width := 0
	for _, f := range files {
		width = max(width, len(f.from)+1)
	}
	for _, f := range files {
		fmt.Fprintf(env.Stdout, "%-*s %s\n", width, f.from+":", termtext.Safe(f.path))
	}
	if len(files.names()) == 0 {
		_, err := fmt.Fprintf(env.Stdout, "no connections in %s\n", termtext.Safe(files.paths()))
		return err
	}
	fmt.Fprintln(env.Stdout, "connections (bastion-ttl connect NAME):")
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	for _, name := range files.names() {
		_, winner, _, _ := files.connection(name)
		for i, f := range files {
			c, ok := f.Connections[name]
			if !ok {
				continue
			}
			from := f.from
			if &files[i] != winner {
				from += " (shadowed)"
			}
			what := "the bastion's own port"
			switch {
			case c.Shell:
				what = "a shell in the bastion"
			case c.To != "":
				_, p, _ := splitTarget(c.To)
				what = fmt.Sprintf("localhost:%d -> %s", cmp.Or(c.LocalPort, p), c.To)
			}
			where := "stack " + cmp.Or(c.Stack, env.Environ["BASTION_STACK"], "bastion-ttl")
			if c.Cluster != "" {
				where = "cluster " + c.Cluster
			}
			// A repository's file is someone else's text, even cloned.
			line := fmt.Sprintf("  %s\t%s\t%s\t%s", name, from, termtext.Safe(what), termtext.Safe(where))
			if c.Description != "" {
				line += "\t" + termtext.Safe(c.Description)
			}
			fmt.Fprintln(tw, line)
		}
	}
	return tw.Flush()
}

// whose names a file's source in a sentence: "repository's", "yours".
func whose(from string) string {
	if from == fromYours {
		return from
	}
	return from + "'s"
}

// execReady waits (a bounded while) for the bastion container's ECS Exec
// agent, and returns the container's runtime ID, the session target's.
func execReady(ctx context.Context, env Env, cluster string, t types.Task, container string) (string, error) {
	poll := env.Poll
	if poll <= 0 {
		poll = 3 * time.Second
	}
	giveUp := env.Clock.Now().Add(min(60*poll, 2*time.Minute))
	id := taskID(aws.ToString(t.TaskArn))
	shown := termtext.Safe(container) // the task definition's text
	for {
		if !t.EnableExecuteCommand {
			return "", execOff(id, "it runs without ECS Exec (enableExecuteCommand false)")
		}
		why := fmt.Sprintf("no container %q in it", container)
		for _, c := range t.Containers {
			if aws.ToString(c.Name) != container {
				continue
			}
			agent := ""
			for _, a := range c.ManagedAgents {
				if a.Name == types.ManagedAgentNameExecuteCommandAgent {
					agent = aws.ToString(a.LastStatus)
				}
			}
			switch {
			case aws.ToString(c.RuntimeId) == "":
				why = fmt.Sprintf("its container %s has no runtime ID", shown)
			case agent == "":
				why = fmt.Sprintf("its container %s has no ExecuteCommandAgent", shown)
			case agent != "RUNNING":
				why = fmt.Sprintf("its container %s's ExecuteCommandAgent is %s", shown, termtext.Safe(agent))
			default:
				return aws.ToString(c.RuntimeId), nil
			}
		}
		if env.Clock.Now().After(giveUp) {
			return "", execOff(id, why)
		}
		if env.Clock.Sleep(ctx, poll) != nil {
			return "", fmt.Errorf("%w while waiting for ECS Exec in %s", errInterrupted, id)
		}
		out, err := env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{aws.ToString(t.TaskArn)}})
		if err != nil {
			return "", awsError("describe-tasks", err)
		}
		if len(out.Tasks) == 1 {
			t = out.Tasks[0]
		}
	}
}

func execOff(id, why string) error {
	return fmt.Errorf("the bastion %s cannot be connected to through ECS Exec: %s. Fix: run it with ECS Exec (connect does; run needs --exec), give the task role ssmmessages:CreateControlChannel, CreateDataChannel, OpenControlChannel and OpenDataChannel, and set pidMode task in the task definition so the idle timeout sees the sessions (docs/connect.md)", id, why)
}
