package launcher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
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
	Clock                  clock.Clock     // the deadline warnings' timers; nil: the system's
	Reconnect              backoff.Policy  // between reconnects; zero: 1s doubling to 30s
	WarnBefore             []time.Duration // the warnings' marks before the deadline; nil: 10m and 1m
	ReuseLeft              time.Duration   // the least time left for a bastion to be reused; 0: 5m
}

// minLeftToReuse is the least time a bastion must have left to be reused
// (ConnectEnv.ReuseLeft may say less): less, and the session would end
// before it is of use.
const minLeftToReuse = 5 * time.Minute

// reconnectsInARow is how many sessions in a row may fail fast before
// connect gives up (the bastion still runs to its deadline).
const reconnectsInARow = 5

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
		if err := checkLocalPort(local); err != nil {
			return err
		}
	}
	c := &connection{env: env, ce: ce, plugin: plugin, version: version, cluster: cluster, container: container,
		host: host, port: port, local: local, shell: f.shell, stop: f.stop, who: who, maxTTL: plan.maxTTL}
	if reuse != nil {
		c.arn, c.deadline = reuse.TaskARN, *reuse.Deadline
		fmt.Fprintf(c.out(), "reusing your bastion %s in %s (stops at %s, %s left)\n", reuse.TaskID, cluster, when(c.deadline), lifetime.LeftText(c.deadline, env.Now()))
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

// pickReusable is the caller's own running bastion with the most time left
// (at least minLeftToReuse) that was started with ECS Exec; nil when there
// is none. Ownership is the owner tag equal to the caller's user ID byte for
// byte, which the launcher policy lets nobody write but the caller: never a
// bastion of someone else, nor one whose tag holds an ARN or a like session
// name. A user ID no tag can hold is refused (ownerOK): its tag could only
// be someone else's.
func pickReusable(ctx context.Context, env Env, cluster string, bastions []Bastion, userID string) (*Bastion, types.Task, []string, error) {
	if err := ownerOK(userID); err != nil {
		return nil, types.Task{}, nil, err
	}
	now := env.Now()
	least := env.Connect.ReuseLeft
	if least <= 0 {
		least = minLeftToReuse
	}
	var mine []Bastion
	for _, b := range bastions {
		if b.Owner == userID && b.Status == "RUNNING" && b.Deadline != nil && b.Deadline.Sub(now) >= least {
			mine = append(mine, b)
		}
	}
	if len(mine) == 0 {
		return nil, types.Task{}, nil, nil
	}
	slices.SortFunc(mine, func(a, b Bastion) int { return b.Deadline.Compare(*a.Deadline) })
	mine = mine[:min(len(mine), 100)]
	var arns []string
	for _, b := range mine {
		arns = append(arns, b.TaskARN)
	}
	d, err := env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
	if err != nil {
		return nil, types.Task{}, nil, awsError("describe-tasks", err)
	}
	byARN := map[string]types.Task{}
	for _, t := range d.Tasks {
		byARN[aws.ToString(t.TaskArn)] = t
	}
	var notes []string
	for _, b := range mine {
		t, ok := byARN[b.TaskARN]
		if ok && t.EnableExecuteCommand {
			return &b, t, notes, nil
		}
		notes = append(notes, fmt.Sprintf("your bastion %s has no ECS Exec (started without --exec): not reused", b.TaskID))
	}
	return nil, types.Task{}, notes, nil
}

// markReuse marks the bastion a connect by the caller would reuse, and says
// so in a line for ls; "" when it cannot tell who calls.
func markReuse(ctx context.Context, env Env, cluster string, bastions []Bastion) string {
	if env.Caller == nil {
		return ""
	}
	who, err := whoCalls(ctx, env)
	if err != nil {
		return ""
	}
	if err := ownerOK(who.userID); err != nil {
		return fmt.Sprintf("bastion-ttl connect would refuse: your user ID %q %v", who.userID, ttltag.CheckOwner(who.userID))
	}
	b, _, _, err := pickReusable(ctx, env, cluster, bastions, who.userID)
	if err != nil {
		return ""
	}
	if b == nil {
		return fmt.Sprintf("bastion-ttl connect would start a bastion: none of yours here has ECS Exec and %s left", minLeftToReuse)
	}
	for i := range bastions {
		bastions[i].ConnectReuses = bastions[i].TaskARN == b.TaskARN
	}
	return fmt.Sprintf("bastion-ttl connect would reuse %s (yours, %s left)", b.TaskID, b.Left)
}

// execReady waits (a bounded while) for the bastion container's ECS Exec
// agent, and returns the container's runtime ID, the session target's.
func execReady(ctx context.Context, env Env, cluster string, t types.Task, container string) (string, error) {
	poll := env.Poll
	if poll <= 0 {
		poll = 3 * time.Second
	}
	giveUp := env.Now().Add(min(60*poll, 2*time.Minute))
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
		if env.Now().After(giveUp) {
			return "", execOff(id, why)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w while waiting for ECS Exec in %s", errInterrupted, id)
		case <-time.After(poll):
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

// errBastionStopped ends a connection whose bastion stopped.
type errBastionStopped struct{ id, reason string }

func (e errBastionStopped) Error() string {
	return fmt.Sprintf("the bastion %s stopped (%s); the connection is closed", e.id, e.reason)
}

// connection is one connect's sessions to one bastion, until the person
// leaves or the bastion stops.
type connection struct {
	env                                Env
	ce                                 ConnectEnv
	plugin                             Plugin
	version                            string
	who                                caller
	cluster, arn, container, runtimeID string
	mu                                 sync.Mutex
	deadline                           time.Time     // zero: unknown; under mu once connected
	rearm                              chan struct{} // the deadline moved: warn anew
	maxTTL                             time.Duration // the cap the tag is read under, as ls and the sweeper read it
	host                               string
	port, local                        int
	shell, stop, started               bool
}

// out is where connect's own lines go: stdout, unless a shell has it.
func (c *connection) out() io.Writer {
	if c.shell {
		return c.env.Stderr
	}
	return c.env.Stdout
}

func (c *connection) target() string {
	return "ecs:" + ecsarn.ClusterName(c.cluster) + "_" + taskID(c.arn) + "_" + c.runtimeID
}

func when(t time.Time) string { return t.UTC().Format("15:04:05Z") }

func (c *connection) stopsAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline
}

func (c *connection) run(ctx context.Context) error {
	c.rearm = make(chan struct{}, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.warn(wctx)
	stopped := make(chan string, 1)
	go c.watch(wctx, stopped)
	policy := c.ce.Reconnect
	if policy.Base <= 0 {
		policy = backoff.Policy{Base: time.Second, Max: 30 * time.Second}
	}
	fails := 0
	for {
		began := time.Now()
		exitErr, err := c.session(ctx, stopped)
		switch {
		case errors.Is(err, errInterrupted):
			return c.leave()
		case errors.As(err, new(errBastionStopped)):
			return err
		case errors.Is(err, ErrNoPlugin):
			return badf("%v: %s", err, pluginInstall)
		case err == nil && exitErr == nil && c.shell:
			return c.leave() // the person left the shell
		}
		why := "the plugin exited"
		if err != nil {
			why = err.Error()
		} else if exitErr != nil {
			why = "the plugin: " + exitErr.Error()
		}
		if reason, gone := c.gone(ctx); gone {
			return c.stoppedErr(reason)
		}
		if time.Since(began) > 30*time.Second {
			fails = 0
		}
		if fails >= reconnectsInARow {
			return fmt.Errorf("%d sessions in a row ended at once (last: %s); the bastion %s keeps running to its deadline", fails+1, why, taskID(c.arn))
		}
		delay := policy.Delay(fails)
		fails++
		fmt.Fprintf(c.out(), "the session ended (%s) while the bastion runs: reconnecting in %s\n", why, delay.Round(10*time.Millisecond))
		select {
		case <-ctx.Done():
			return c.leave()
		case reason := <-stopped:
			return c.stoppedErr(reason)
		case <-time.After(delay):
		}
	}
}

// session opens one session, runs the plugin on it until it exits, the
// person interrupts, or the bastion stops, and then terminates it. It
// returns the plugin's exit error apart from its own.
func (c *connection) session(ctx context.Context, stopped <-chan string) (exitErr, err error) {
	if ctx.Err() != nil {
		return nil, errInterrupted
	}
	id, args, extra, err := c.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		return nil, err
	}
	defer c.terminate(ctx, id)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	stdin := c.ce.Stdin    // inherited, as the AWS CLI leaves it to the plugin
	stdout := c.env.Stderr // the plugin's chatter, apart from connect's lines
	ready := make(chan struct{})
	if c.shell {
		stdout = c.env.Stdout
		close(ready)
	} else {
		stdout = &readyWriter{w: c.env.Stderr, ready: ready, marker: "Waiting for connections"}
	}
	go func() { done <- c.plugin.Run(pctx, args, extra, stdin, stdout, c.env.Stderr) }()
	// A missing plugin is ours, whenever it shows; an interrupt is ours once
	// the plugin was ready (or 10 s have passed): before, its exit is the
	// session's answer.
	wait := time.After(10 * time.Second)
	for {
		select {
		case <-ready:
			c.sayReady()
			ready, wait = nil, nil
		case <-wait:
			c.sayReady()
			ready, wait = nil, nil
		case e := <-done:
			if errors.Is(e, ErrNoPlugin) {
				return nil, e
			}
			if ready == nil && ctx.Err() != nil {
				return nil, errInterrupted
			}
			return e, nil
		case <-ctx.Done():
			cancel()
			<-done
			return nil, errInterrupted
		case reason := <-stopped:
			cancel()
			<-done
			return nil, c.stoppedErr(reason)
		}
	}
}

func (c *connection) sayReady() {
	stops := "stops TTL after its start"
	if d := c.stopsAt(); !d.IsZero() {
		stops = fmt.Sprintf("stops at %s, %s left", when(d), lifetime.LeftText(d, c.env.Now()))
	}
	id := taskID(c.arn)
	switch {
	case c.shell:
		fmt.Fprintf(c.out(), "shell in %s, container %s (%s); exit leaves it\n", id, termtext.Safe(c.container), stops)
	case c.host != "":
		fmt.Fprintf(c.out(), "localhost:%d -> %s through %s (%s)\n", c.local, net.JoinHostPort(c.host, strconv.Itoa(c.port)), id, stops)
	default:
		fmt.Fprintf(c.out(), "localhost:%d -> %s's port %d (%s)\n", c.local, id, c.port, stops)
	}
}

// open starts a session as the AWS CLI does, and returns the plugin's
// arguments: a port forward is ssm:StartSession's, a shell ecs:ExecuteCommand's.
func (c *connection) open(ctx context.Context) (id string, args, extra []string, err error) {
	type answer struct {
		SessionID  string `json:"SessionId"`
		TokenValue string `json:"TokenValue"`
		StreamURL  string `json:"StreamUrl"`
	}
	if c.shell {
		out, err := c.env.ECS.ExecuteCommand(ctx, &ecs.ExecuteCommandInput{Cluster: aws.String(c.cluster), Task: aws.String(c.arn),
			Container: aws.String(c.container), Command: aws.String("/bin/sh"), Interactive: true})
		if err != nil {
			return "", nil, nil, awsError("ecs execute-command", err)
		}
		if out.Session == nil {
			return "", nil, nil, errors.New("ecs execute-command answered no session")
		}
		a, _ := json.Marshal(answer{aws.ToString(out.Session.SessionId), aws.ToString(out.Session.TokenValue), aws.ToString(out.Session.StreamUrl)})
		req, _ := json.Marshal(map[string]string{"Target": c.target()})
		args, extra := pluginArgs(c.version, a, req, c.ce.Region, c.ce.Profile, c.ce.ECSEndpoint)
		return aws.ToString(out.Session.SessionId), args, extra, nil
	}
	doc := "AWS-StartPortForwardingSession"
	params := map[string][]string{"portNumber": {strconv.Itoa(c.port)}, "localPortNumber": {strconv.Itoa(c.local)}}
	if c.host != "" {
		doc = "AWS-StartPortForwardingSessionToRemoteHost"
		params["host"] = []string{c.host}
	}
	out, err := c.ce.SSM.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(c.target()), DocumentName: aws.String(doc), Parameters: params})
	if err != nil {
		return "", nil, nil, awsError("ssm start-session", err)
	}
	a, _ := json.Marshal(answer{aws.ToString(out.SessionId), aws.ToString(out.TokenValue), aws.ToString(out.StreamUrl)})
	req, _ := json.Marshal(map[string]any{"Target": c.target(), "DocumentName": doc, "Parameters": params})
	args, extra = pluginArgs(c.version, a, req, c.ce.Region, c.ce.Profile, c.ce.SSMEndpoint)
	return aws.ToString(out.SessionId), args, extra, nil
}

// terminate ends a session the plugin may have left open (killed, or
// never started), even after Ctrl-C.
func (c *connection) terminate(ctx context.Context, id string) {
	if c.ce.SSM == nil || id == "" {
		return
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, _ = c.ce.SSM.TerminateSession(tctx, &ssm.TerminateSessionInput{SessionId: aws.String(id)})
}

// watch says when the bastion stops: once, with the reason ECS gives.
func (c *connection) watch(ctx context.Context, stopped chan<- string) {
	every := 5 * c.env.Poll
	if every <= 0 {
		every = 15 * time.Second
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if reason, gone := c.gone(ctx); gone {
			stopped <- reason
			return
		}
	}
}

// gone reports whether the bastion stopped (or is stopping), and why. A
// running one's TTL tag is read too, by the rule ls and the sweeper read it
// (ttltag.Lifetime under the cap): an extension (or the API's cap) moves
// the deadline, which connect then tells and warns of anew.
func (c *connection) gone(ctx context.Context) (string, bool) {
	out, err := c.env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(c.cluster), Tasks: []string{c.arn}, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil {
		return "", false // unknown: the session itself tells
	}
	if len(out.Tasks) == 0 {
		return "ECS no longer knows it", true
	}
	t := out.Tasks[0]
	if aws.ToString(t.DesiredStatus) == "STOPPED" || aws.ToString(t.LastStatus) == "STOPPED" {
		return cmp.Or(strings.Trim(stopReasons(t), "; "), "no reason given"), true
	}
	value, marked := ttltag.Find(t.Tags)
	life, _ := ttltag.Lifetime(value, aws.ToTime(t.StartedAt), c.maxTTL)
	if !marked || life.TTL <= 0 || t.StartedAt == nil {
		return "", false
	}
	d := life.Deadline()
	c.mu.Lock()
	moved := !d.Equal(c.deadline)
	c.deadline = d
	c.mu.Unlock()
	if moved {
		fmt.Fprintf(c.out(), "the bastion's TTL is now %s: it stops at %s, %s left\n", life.TTL, when(d), lifetime.LeftText(d, c.env.Now()))
		select {
		case c.rearm <- struct{}{}:
		default:
		}
	}
	return "", false
}

func (c *connection) stoppedErr(reason string) error {
	return errBastionStopped{taskID(c.arn), reason}
}

// warn says when the deadline is near, at each mark before it; when the
// deadline moves, at the marks before the new one.
func (c *connection) warn(ctx context.Context) {
	for {
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-c.rearm:
				cancel()
			case <-sctx.Done():
			}
		}()
		c.warnBefore(sctx, c.stopsAt())
		rearmed := sctx.Err() != nil && ctx.Err() == nil
		cancel()
		if !rearmed {
			select {
			case <-c.rearm:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (c *connection) warnBefore(ctx context.Context, deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	clk := c.ce.Clock
	if clk == nil {
		clk = clock.System{}
	}
	marks := slices.Clone(c.ce.WarnBefore)
	if marks == nil {
		marks = []time.Duration{10 * time.Minute, time.Minute}
	}
	slices.SortFunc(marks, func(a, b time.Duration) int { return int(b - a) })
	for _, m := range marks {
		wait := deadline.Add(-m).Sub(clk.Now())
		if wait < 0 {
			continue // past that mark already: the ready line said what is left
		}
		if clk.Sleep(ctx, wait) != nil {
			return
		}
		fmt.Fprintf(c.out(), "warning: the bastion %s stops in %s (at %s)\n", taskID(c.arn), lifetime.LeftText(deadline, clk.Now()), when(deadline))
	}
}

// leave ends connect as the person asked: the bastion keeps running to its
// idle timeout and TTL, unless --stop.
func (c *connection) leave() error {
	id := taskID(c.arn)
	if !c.stop {
		stops := "its TTL"
		if d := c.stopsAt(); !d.IsZero() {
			stops = when(d)
		}
		fmt.Fprintf(c.out(), "session ended; the bastion %s keeps running until %s, or its idle timeout (bastion-ttl stop %s ends it now)\n", id, stops, id)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.env.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(c.cluster), Task: aws.String(c.arn),
		Reason: aws.String(lifetime.CutStopReason("bastion-ttl: stopped by " + c.who.arn + " (connect --stop)"))}); err != nil {
		return fmt.Errorf("session ended, then stop-task %s: %s; it keeps its TTL", id, termtext.Safe(err.Error()))
	}
	fmt.Fprintf(c.out(), "session ended; stopping %s\n", id)
	return nil
}

// readyWriter passes the plugin's output on, and closes ready once the
// plugin says it listens.
type readyWriter struct {
	mu     sync.Mutex
	w      io.Writer
	seen   string
	ready  chan struct{}
	marker string
	done   bool
}

func (r *readyWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.seen += string(p)
		if strings.Contains(r.seen, r.marker) {
			r.done, r.seen = true, ""
			close(r.ready)
		} else if len(r.seen) > 4096 {
			r.seen = r.seen[len(r.seen)-256:]
		}
	}
	return r.w.Write(p)
}
