package launcher

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/dbauth"
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
	Stdin                    io.Reader // a --shell session's input, and --exec's client's
	// Credentials sign --iam-auth's RDS token.
	Credentials aws.CredentialsProvider
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
	to, config, iamAuth, engine string
	localPort                   int
	shell, stop, client, token  bool
}

// connectCmd is bastion-ttl connect.
func connectCmd(env *Env) *cli.Command {
	var f connectFlags
	var fs *flag.FlagSet
	return &cli.Command{
		Name:      "connect",
		UsageLine: "connect [NAME|GROUP...] [--to HOST:PORT] [--local-port N] [--shell] [--exec -- CLIENT ARGS...] [--iam-auth USER] [--print-token] [--stop] [--config FILE] [run's flags]",
		Short:     "reach what is behind your bastion, started if needed",
		Long: `Connect forwards a local port through your bastion to HOST:PORT (--to), to
the bastion container's own port (neither --to nor --shell), or opens a
shell in it (--shell), through ECS Exec and the session-manager-plugin. It
reuses your running bastion when it has ECS Exec and time left, else it
starts one as run does, with run's flags. NAME is a connection of the config
file (bastion-ttl.yaml, in the repository and the user's config directory),
whose values the flags override; several NAMEs, or a GROUP of the file, open
one forward each through one bastion. A local port in use is refused before
anything is asked of AWS; a connection's port is remembered for the next
time. --exec starts CLIENT once the forwards are ready, with their addresses
in its environment, and ends with its exit code; --iam-auth makes it an RDS
IAM token for the database. Alone (or with only --config), it lists the
connections. See docs/connect.md.`,
		Flags: func(set *flag.FlagSet) error {
			fs = set
			err := f.register(fs, env.Environ)
			fs.StringVar(&f.to, "to", "", "HOST:PORT to forward a local port to, through the bastion (a database, say); without it (and --shell), the bastion container's first port mapping")
			fs.IntVar(&f.localPort, "local-port", 0, "the local port (default: the one remembered from the last time, else the remote one when free)")
			fs.BoolVar(&f.shell, "shell", false, "an interactive shell in the bastion (ECS Exec) instead of a port forward")
			fs.BoolVar(&f.stop, "stop", false, "stop the bastion when the session ends (default: leave it to its idle timeout and TTL)")
			fs.BoolVar(&f.client, "exec", false, "start the client after -- (or the connection's exec:) once the forwards are ready, and end with its exit code")
			fs.StringVar(&f.iamAuth, "iam-auth", "", "give the client an RDS IAM token for this database user (PGPASSWORD, MYSQL_PWD), made for the real endpoint")
			fs.BoolVar(&f.token, "print-token", false, "print the RDS IAM token (--iam-auth) once the forwards are ready, for a client connect does not start")
			fs.StringVar(&f.engine, "engine", "", "postgres, mysql or redis: which client variables --exec sets (default: from the remote port)")
			fs.StringVar(&f.config, "config", env.Environ["BASTION_CONFIG"], "the config file of named connections, read alone (default: the repository's "+ConfigName+" and the user's)")
			return err
		},
		Interspersed: true, // connect NAME --to ...
		RunWithRest: func(ctx context.Context, args, rest []string) error {
			set := map[string]bool{}
			fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
			return withAWS(env, func(ctx context.Context, args []string) error {
				return connectCommand(ctx, args, rest, *env, f, set)
			})(ctx, args)
		},
	}
}

// named is a connection of the config file, by its name, and where it
// comes from (fromRepository, fromYours, fromFlag).
type named struct {
	name, from string
	Connection
}

// resolve is the connections names ask for, groups expanded, each once.
func resolve(files configFiles, names []string, stderr io.Writer, userDir string) ([]named, error) {
	var out []named
	for _, name := range names {
		members := []string{name}
		if _, _, _, ok := files.connection(name); !ok {
			g, isGroup := files.group(name)
			if !isGroup {
				return nil, files.unknown(name, userDir)
			}
			members = g
		}
		for _, m := range members {
			c, from, shadowed, ok := files.connection(m)
			if !ok {
				return nil, badf("group %s names %s, which no file has (%s)", name, m, termtext.Safe(files.paths()))
			}
			if slices.ContainsFunc(out, func(n named) bool { return n.name == m }) {
				continue
			}
			if shadowed != nil {
				fmt.Fprintf(stderr, "bastion-ttl: note: connection %s is the %s (%s), which shadows %s (%s)\n", m, whose(from.from), termtext.Safe(from.path), whose(shadowed.from), termtext.Safe(shadowed.path))
			}
			out = append(out, named{m, from.from, c})
		}
	}
	return out, nil
}

// together checks that connections can share one connect: one bastion
// (its stack, cluster and task definition), port forwards only, and no
// flag that names one forward's target.
func together(conns []named, f connectFlags, set map[string]bool) error {
	if len(conns) < 2 {
		return nil
	}
	for _, fl := range []string{"to", "local-port", "shell"} {
		if set[fl] {
			return badf("--%s with %d connections: it would name one forward of several; set to:, local-port: in the file", fl, len(conns))
		}
	}
	first := conns[0]
	for _, c := range conns {
		if c.Shell {
			return badf("connection %s is a shell, which has the terminal: connect it alone", c.name)
		}
		for _, v := range []struct{ what, a, b string }{
			{"stack", cmp.Or(first.Stack, f.stack), cmp.Or(c.Stack, f.stack)}, {"cluster", first.Cluster, c.Cluster}, {"task-definition", first.TaskDefinition, c.TaskDefinition},
		} {
			if v.a != v.b && !set[v.what] {
				return badf("connections %s and %s name different %ss (%q, %q): one connect goes through one bastion", first.name, c.name, v.what, v.a, v.b)
			}
		}
	}
	return nil
}

func connectCommand(ctx context.Context, names, rest []string, env Env, f connectFlags, set map[string]bool) error {
	ce := env.Connect
	files, err := readConfigs(f.config, ce)
	if err != nil {
		return err
	}
	// Alone (or with only --config) it lists; any other flag asks for a
	// connection, to the bastion's own port when neither --to nor --shell.
	onlyConfig := len(set) == 0 || (len(set) == 1 && set["config"])
	if len(names) == 0 && f.to == "" && !f.shell && onlyConfig && rest == nil {
		return listConnections(env, files)
	}
	conns, err := resolve(files, names, env.Stderr, ce.UserConfigDir)
	if err != nil {
		return err
	}
	if err := together(conns, f, set); err != nil {
		return err
	}
	if len(conns) > 0 {
		f.apply(conns[0].Connection, set)
	}
	if f.shell && f.to != "" {
		return badf("--shell and --to: a session is a shell or a port forward, not both")
	}
	if f.localPort < 0 || f.localPort > 65535 {
		return badf("--local-port %d is not a port (1-65535)", f.localPort)
	}
	forwards, wants, err := plannedForwards(conns, f, set)
	if err != nil {
		return err
	}
	client, login, err := clientOf(conns, f, rest, forwards, ce)
	if err != nil {
		return err
	}
	// Before any AWS request: a local port in use is refused now.
	// No home and no XDG_STATE_HOME: nothing is remembered.
	state, _ := localport.StatePath(env.Environ, ce.HomeDir)
	if err := choosePorts(env, state, forwards, wants, func(f *forward) bool { return f.port != 0 }); err != nil {
		return err
	}
	plugin := ce.Plugin
	if plugin == nil {
		plugin = PathPlugin{OwnGroup: client != nil}
	}
	version, err := plugin.Version(ctx)
	if errors.Is(err, ErrNoPlugin) {
		return badf("%v: %s; nothing started", err, pluginInstall)
	} else if err != nil {
		return badf("%v: reinstall it (%s); nothing started", err, pluginInstall)
	}
	if len(conns) > 0 && conns[0].Stack != "" && conns[0].Cluster != "" && !set["cluster"] {
		if d, err := stackDefaults(ctx, env, f.stack); err == nil && d.cluster != "" && ecsarn.ClusterName(d.cluster) != ecsarn.ClusterName(conns[0].Cluster) {
			return badf("connection %s: cluster %s is not the stack %s's ClusterName output (%s): name one of them", conns[0].name, conns[0].Cluster, f.stack, d.cluster)
		}
	}
	f.runFlags.exec = true // the session is ECS Exec's
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
	// A forward to the bastion's own port learns it from the task
	// definition: its local port is chosen now, still before any start.
	toOwn := map[*forward]bool{}
	for i, fw := range forwards {
		if fw.port == 0 {
			if ownPort == 0 {
				return badf("the bastion's task definition %s maps no port: pass --to HOST:PORT, or --shell", termtext.Safe(aws.ToString(def.TaskDefinitionArn)))
			}
			toOwn[fw], fw.port, wants[i].Remote = true, int(ownPort), int(ownPort)
		}
	}
	if err := choosePorts(env, state, forwards, wants, func(fw *forward) bool { return toOwn[fw] }); err != nil {
		return err
	}
	c := &connection{env: env, ce: ce, plugin: plugin, version: version, cluster: cluster, container: container,
		forwards: forwards, client: client, shell: f.shell, stop: f.stop, who: who, maxTTL: plan.maxTTL}
	if f.token {
		c.printLogin = &login
	}
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
	remember(env, state, forwards, wants)
	if err := c.run(ctx); err != nil {
		if c.started && !errors.As(err, new(errBastionStopped)) && !isPassed(err) {
			return startedThen(c.arn, err)
		}
		return err
	}
	return nil
}

// plannedForwards is a forward per connection (one for --to or the
// bastion's own port; none for a shell), with what localport.Choose needs
// of each. A forward to the bastion's own port has port 0 until the task
// definition is read.
func plannedForwards(conns []named, f connectFlags, set map[string]bool) ([]*forward, []localport.Want, error) {
	if f.shell {
		return nil, nil, nil
	}
	type spec struct {
		name, to, key, from string
		local               int
	}
	var specs []spec
	switch {
	case len(conns) > 1:
		for _, c := range conns {
			specs = append(specs, spec{c.name, c.To, c.name, ConfigName + "'s local-port", c.LocalPort})
		}
	default:
		sp := spec{to: f.to, local: f.localPort, from: localport.FromFlag}
		if len(conns) == 1 {
			sp.name, sp.key = conns[0].name, conns[0].name
			if !set["local-port"] {
				sp.from = ConfigName + "'s local-port"
			}
		}
		if sp.key == "" {
			sp.key = localport.KeyTo(cmp.Or(f.to, "the bastion's own port"))
		}
		specs = append(specs, sp)
	}
	var forwards []*forward
	var wants []localport.Want
	for _, sp := range specs {
		host, port := "", 0
		if sp.to != "" {
			var err error
			if host, port, err = splitTarget(sp.to); err != nil {
				return nil, nil, badf("--to %v", err)
			}
		}
		forwards = append(forwards, newForward(sp.name, host, port, sp.local))
		wants = append(wants, localport.Want{Name: sp.name, Key: sp.key, Fixed: sp.local, FixedFrom: sp.from, Remote: port})
	}
	return forwards, wants, nil
}

// choosePorts gives the forwards which (known: their remote port is
// known) their local ports, refusing one in use (localport.Choose).
func choosePorts(env Env, state string, forwards []*forward, wants []localport.Want, which func(*forward) bool) error {
	var ws []localport.Want
	var fs []*forward
	for i, fw := range forwards {
		if which(fw) {
			ws, fs = append(ws, wants[i]), append(fs, fw)
		}
	}
	if len(ws) == 0 {
		return nil
	}
	var mem localport.Memory
	if state != "" {
		var note string
		if mem, note = localport.Load(state); note != "" {
			fmt.Fprintln(env.Stderr, "bastion-ttl: note:", note)
		}
	}
	// The ports the other forwards were given already: not to be given twice.
	for _, fw := range forwards {
		if !which(fw) && fw.local != 0 {
			ws = append(ws, localport.Want{Name: fw.name, Fixed: fw.local, FixedFrom: "chosen for it already", Remote: fw.port})
		}
	}
	ports, err := localport.Choose(ws, mem)
	if err != nil {
		return err
	}
	for i, fw := range fs {
		fw.local = ports[i]
	}
	return nil
}

// remember saves the forwards' local ports for the next connect, once
// their bastion is reached: a connect refused or interrupted before
// remembers nothing.
func remember(env Env, state string, forwards []*forward, wants []localport.Want) {
	if state == "" || len(forwards) == 0 {
		return
	}
	ports := make([]int, len(forwards))
	for i, fw := range forwards {
		ports[i] = fw.local
	}
	if err := localport.Save(state, wants, ports); err != nil {
		fmt.Fprintln(env.Stderr, "bastion-ttl: note: the local ports are not remembered:", err)
	}
}

// clientOf is --exec's client (nil: none) and the first forward's login,
// checked before any AWS request: the program is found, and an IAM login
// has a database to sign for.
func clientOf(conns []named, f connectFlags, rest []string, forwards []*forward, ce ConnectEnv) (*client, login, error) {
	var first Connection
	if len(conns) > 0 {
		first = conns[0].Connection
	}
	l := login{user: cmp.Or(f.iamAuth, first.IAMAuth), creds: ce.Credentials, region: ce.Region}
	if f.shell && (f.client || rest != nil || l.user != "" || f.token) {
		return nil, l, badf("--shell with --exec or --iam-auth: those need a port forward")
	}
	if len(forwards) > 0 {
		l.engine = dbauth.EngineFor(cmp.Or(f.engine, first.Engine), forwards[0].port)
	}
	if f.engine != "" && dbauth.EngineFor(f.engine, 0) == dbauth.Other {
		return nil, l, badf("--engine %q is not postgres, mysql or redis", f.engine)
	}
	if l.user != "" {
		if err := dbauth.CheckUser(l.user); err != nil {
			return nil, l, badf("--iam-auth: %v", err)
		}
		if forwards[0].host == "" {
			return nil, l, badf("--iam-auth %s needs a database to sign for: --to HOST:PORT (its real endpoint)", l.user)
		}
		if _, err := dbauth.CheckEndpoint(net.JoinHostPort(forwards[0].host, strconv.Itoa(forwards[0].port))); err != nil {
			return nil, l, badf("--iam-auth %s: %v", l.user, errors.Unwrap(err))
		}
		if l.engine != dbauth.Postgres && l.engine != dbauth.MySQL {
			return nil, l, badf("--iam-auth is for postgres and mysql, and %s's engine is %s: pass --engine, or set engine: in the connection", forwards[0].host, l.engine)
		}
	} else if f.token {
		return nil, l, badf("--print-token prints an RDS IAM token: name its database user with --iam-auth USER")
	}
	if rest != nil && !f.client {
		return nil, l, badf("%q after --: to start a client, say --exec -- CLIENT ARGS...", rest)
	}
	// The file's exec: runs only when asked (--exec): a repository's file
	// is a teammate's text, and connect NAME alone starts no program.
	if !f.client {
		return nil, l, nil
	}
	argv := rest
	if len(argv) == 0 && len(first.Exec) > 0 {
		if len(conns) > 0 && conns[0].from == fromRepository {
			return nil, l, badf("connection %s's exec: is the repository's, which connect does not run (a teammate's text): pass the client after --exec --, or put the connection in your own %s", conns[0].name, ConfigName)
		}
		argv = first.Exec
	}
	if len(argv) == 0 {
		return nil, l, badf("--exec needs a client: --exec -- psql ..., or exec: in the connection")
	}
	names := map[string]string{}
	for _, fw := range forwards {
		if other, ok := names[envName(fw.name)]; ok && fw.name != "" {
			return nil, l, badf("connections %s and %s would both be BASTION_TTL_LOCAL_ADDR_%s: rename one", other, fw.name, envName(fw.name))
		}
		names[envName(fw.name)] = fw.name
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, l, badf("--exec %s: %v; nothing started", termtext.Safe(argv[0]), errors.Unwrap(err))
	}
	return &client{argv: argv, login: l}, l, nil
}

// isPassed reports whether err is a client's exit code passed on.
func isPassed(err error) bool {
	var ee *cli.ExitError
	return errors.As(err, &ee) && ee.Err == nil
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
	if err := tw.Flush(); err != nil {
		return err
	}
	return listGroups(env, files)
}

// listGroups lists the files' groups (those a file of higher rank has too
// marked shadowed), after the connections.
func listGroups(env Env, files configFiles) error {
	var names []string
	for _, f := range files {
		names = append(names, slices.Collect(maps.Keys(f.Groups))...)
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	fmt.Fprintln(env.Stdout, "groups (bastion-ttl connect GROUP: one bastion, a forward each):")
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	seen := map[string]bool{}
	for _, name := range slices.Compact(names) {
		for _, f := range files {
			g, ok := f.Groups[name]
			if !ok {
				continue
			}
			from := f.from
			if seen[name] {
				from += " (shadowed)"
			}
			seen[name] = true
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, from, termtext.Safe(strings.Join(g, ", ")))
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
