package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/pong"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmplugin"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

var (
	pluginOnce sync.Once
	pluginDir  string
	pluginErr  error
)

// standInPlugin builds the stand-in session-manager-plugin (once) and puts
// its directory first on PATH, as an installed plugin is; the test's
// log of what it was given is returned.
func standInPlugin(t *testing.T) (logPath string) {
	t.Helper()
	testenv.RealTime(t)
	pluginOnce.Do(func() {
		pluginDir, pluginErr = os.MkdirTemp("", "plugin")
		if pluginErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, PluginName), "./internal/localaws/ssmplugin/session-manager-plugin")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginErr = fmt.Errorf("build the stand-in plugin: %v\n%s", err, out)
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	t.Setenv("PATH", pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	logPath = filepath.Join(t.TempDir(), "plugin.log")
	t.Setenv(ssmplugin.EnvLog, logPath)
	t.Setenv(ssmplugin.EnvVersion, "")
	t.Setenv(ssmplugin.EnvExitOnce, "")
	return logPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

// rig is moto behind the ECS Exec layer, the SSM stand-in, and an Env for
// connect against them.
type rig struct {
	env    Env
	ecs    *ecs.Client
	layer  *ecsapi.ExecLayer
	ssm    *ssmapi.Server
	ecsURL string
	me     string // the caller's user ID
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{ssm: &ssmapi.Server{}}
	ssmSrv := httptest.NewServer(r.ssm)
	t.Cleanup(ssmSrv.Close)
	r.ssm.URL = ssmSrv.URL
	r.layer = &ecsapi.ExecLayer{Now: time.Now, Open: func(target string) (string, string, string) {
		s := r.ssm.Open(target, "", nil)
		return s.ID, r.ssm.StreamURL(s.ID), s.Token
	}}
	env, client := motoEnvBehind(t, func(endpoint string) string {
		u, _ := url.Parse(endpoint)
		r.layer.Next = httputil.NewSingleHostReverseProxy(u)
		srv := httptest.NewServer(r.layer)
		t.Cleanup(srv.Close)
		r.ecsURL = srv.URL
		return srv.URL
	})
	// SSM connects only to a task that runs, as the agent in it answers.
	r.ssm.CheckTarget = func(target string) error {
		id := strings.Split(strings.TrimPrefix(target, "ecs:bastions_"), "_")[0]
		d, err := client.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String("bastions"), Tasks: []string{id}})
		if err != nil || len(d.Tasks) != 1 || aws.ToString(d.Tasks[0].DesiredStatus) != "RUNNING" {
			return errors.New("the task does not run")
		}
		return nil
	}
	env.Connect = ConnectEnv{
		SSM:         ssm.New(ssm.Options{Region: testenv.Region, BaseEndpoint: aws.String(ssmSrv.URL), Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test", "")}),
		Region:      testenv.Region,
		SSMEndpoint: ssmSrv.URL, ECSEndpoint: r.ecsURL,
		WorkDir:   t.TempDir(),
		Reconnect: backoff.Policy{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	}
	env.Stdout, env.Stderr = io.Discard, io.Discard
	r.env, r.ecs = env, client
	me, err := env.Caller.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	r.me = aws.ToString(me.UserId)
	return r
}

// bastion runs a bastion as someone's (owner tag value), with or without ECS Exec.
func (r *rig) bastion(t *testing.T, owner, ttl string, exec bool) string {
	t.Helper()
	tags := []types.Tag{{Key: aws.String(ttltag.Key), Value: aws.String(ttl)}}
	if owner != "" {
		tags = append(tags, types.Tag{Key: aws.String(ttltag.OwnerKey), Value: aws.String(owner)})
	}
	out, err := r.ecs.RunTask(context.Background(), &ecs.RunTaskInput{Cluster: aws.String("bastions"), TaskDefinition: aws.String("bastion"),
		StartedBy: aws.String(StartedBy), Tags: tags, EnableExecuteCommand: exec, LaunchType: types.LaunchTypeFargate})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("run-task: %v", err)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

func (r *rig) running(t *testing.T) []string {
	t.Helper()
	l, err := r.ecs.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String("bastions"), DesiredStatus: types.DesiredStatusRunning})
	if err != nil {
		t.Fatal(err)
	}
	return l.TaskArns
}

// connecting is a connect running in the background, as a person's terminal has it.
type connecting struct {
	out, errs *testenv.Buffer
	cancel    context.CancelFunc // Ctrl-C
	done      chan int
}

func (r *rig) connect(t *testing.T, args ...string) *connecting {
	t.Helper()
	return startConnect(t, r.env, args...)
}

// startConnect runs connect with args on env in the background.
func startConnect(t *testing.T, env Env, args ...string) *connecting {
	t.Helper()
	c := &connecting{out: &testenv.Buffer{}, errs: &testenv.Buffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	t.Cleanup(cancel)
	env.Stdout, env.Stderr = c.out, c.errs
	go func() {
		err := Run(ctx, append([]string{"connect"}, args...), env)
		c.done <- exitCode(err, c.errs)
	}()
	return c
}

// until waits for want in stdout, or fails with what was said.
func (c *connecting) until(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(c.out.String(), want) < n {
		select {
		case code := <-c.done:
			c.done <- code
			t.Fatalf("connect exited %d before saying %q:\n%s\nstderr:\n%s", code, want, c.out.String(), c.errs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect did not say %q:\n%s\nstderr:\n%s", want, c.out.String(), c.errs.String())
		}
	}
}

func (c *connecting) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-c.done:
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("connect did not exit:\n%s\nstderr:\n%s", c.out.String(), c.errs.String())
	}
	return -1
}

// database is a local TCP server that answers each line with "pong: <line>".
func database(t *testing.T) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go pong.Serve(ln)
	return "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
}

// exchange sends a line through the forwarded local port and reads the answer.
func exchange(t *testing.T, local int, line string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(local), 5*time.Second)
	if err != nil {
		t.Fatalf("dial the forwarded port: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(conn, line)
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || got != "pong: "+line+"\n" {
		t.Fatalf("through the forward: %q, %v; want the database's pong", got, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(testenv.FreeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

func pluginLog(t *testing.T, path string) []ssmplugin.Started {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the plugin's log: %v", err)
	}
	var out []ssmplugin.Started
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var s ssmplugin.Started
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// The whole path from a laptop: connect starts a bastion (none of the
// caller's runs), waits for it, forwards a local port through the stand-in
// plugin to a real TCP server, bytes move both ways; Ctrl-C ends the
// session, exits 0 and leaves the bastion running.
func TestConnectStartsForwardsAndLeaves(t *testing.T) {
	logPath := standInPlugin(t)
	r := newRig(t)
	host, dbPort := database(t)
	local := freePort(t)
	c := r.connect(t, "--to", fmt.Sprintf("%s:%d", host, dbPort), "--local-port", strconv.Itoa(local), "--ttl", "1h")
	c.until(t, fmt.Sprintf("localhost:%d -> %s:%d through ", local, host, dbPort), 1)
	exchange(t, local, "select 1")
	exchange(t, local, "select 2")
	out := c.out.String()
	tasks := r.running(t)
	if len(tasks) != 1 || !strings.Contains(out, "started "+taskID(tasks[0])+" in bastions: TTL 1h0m0s") || !strings.Contains(out, "RUNNING") ||
		!(strings.Contains(out, ", 1h left)") || strings.Contains(out, ", 59m left)")) {
		t.Fatalf("tasks %v; connect said:\n%s", tasks, out)
	}
	arn := tasks[0]
	c.cancel() // Ctrl-C
	if code := c.exit(t); code != 0 {
		t.Fatalf("Ctrl-C: exit %d, want 0\n%s%s", code, c.out.String(), c.errs.String())
	}
	if !strings.Contains(c.out.String(), "session ended; the bastion "+taskID(arn)+" keeps running until ") {
		t.Fatalf("after Ctrl-C:\n%s", c.out.String())
	}
	if got := testenv.Describe(t, r.ecs, "bastions", []string{arn})[arn]; aws.ToString(got.DesiredStatus) != "RUNNING" || !got.EnableExecuteCommand {
		t.Fatalf("the bastion after Ctrl-C: %s, exec %v: want it left running, with ECS Exec", aws.ToString(got.DesiredStatus), got.EnableExecuteCommand)
	}
	sessions := r.ssm.Sessions()
	if len(sessions) != 1 || !sessions[0].Terminated || r.ssm.Calls()["TerminateSession"] != 1 {
		t.Fatalf("sessions %+v: want one, terminated", sessions)
	}
	// What the plugin was given, as the AWS CLI gives it to a plugin newer than 1.2.497.0.
	logged := pluginLog(t, logPath)
	want := fmt.Sprintf("ecs:bastions_%s_%s", taskID(arn), ecsapi.RuntimeID(arn, "bastion"))
	if len(logged) != 1 {
		t.Fatalf("plugin starts %+v", logged)
	}
	l := logged[0]
	if l.Form != "env" || l.SessionID != sessions[0].ID || l.Region != testenv.Region || l.Operation != "StartSession" || l.Endpoint != r.env.Connect.SSMEndpoint ||
		l.Target != want || l.Document != "AWS-StartPortForwardingSessionToRemoteHost" ||
		fmt.Sprint(l.Params) != fmt.Sprintf("map[host:[%s] localPortNumber:[%d] portNumber:[%d]]", host, local, dbPort) {
		t.Fatalf("the plugin was given %+v; want target %s", l, want)
	}
}

// --shell: ECS Exec's session (ecs:ExecuteCommand), handed to the plugin
// with the request {"Target": ...} and ECS's endpoint.
func TestConnectShell(t *testing.T) {
	logPath := standInPlugin(t)
	r := newRig(t)
	r.env.Connect.Stdin = strings.NewReader("echo hello from the laptop\n")
	c := r.connect(t, "--shell")
	if code := c.exit(t); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, c.out.String(), c.errs.String())
	}
	arn := r.running(t)[0]
	if !strings.Contains(c.out.String(), "echo hello from the laptop") || !strings.Contains(c.errs.String(), "shell in "+taskID(arn)+", container bastion (stops at ") {
		t.Fatalf("the shell:\n%s\nstderr:\n%s", c.out.String(), c.errs.String())
	}
	l := pluginLog(t, logPath)
	if len(l) != 1 || l[0].Document != "" || l[0].Endpoint != r.ecsURL || l[0].Target != fmt.Sprintf("ecs:bastions_%s_%s", taskID(arn), ecsapi.RuntimeID(arn, "bastion")) || l[0].Params != nil {
		t.Fatalf("the plugin was given %+v", l)
	}
	if r.ssm.Calls()["StartSession"] != 0 || len(r.ssm.Sessions()) != 1 {
		t.Fatalf("a shell is ECS Exec's session, not StartSession's: %v", r.ssm.Calls())
	}
}

// A bastion whose ECS Exec agent never runs: connect says which task it
// started, that it keeps its TTL, and how to fix the task definition.
func TestConnectWithoutECSExecSaysHowToFix(t *testing.T) {
	standInPlugin(t)
	r := newRig(t)
	r.layer.NoAgent = true
	out, errs, code := runCLI(r.env, "connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)))
	arn := r.running(t)
	if code != 1 || len(arn) != 1 || !strings.Contains(errs, taskID(arn[0])+" started (it keeps its TTL), then: the bastion "+taskID(arn[0])+" cannot be connected to through ECS Exec: its container bastion has no ExecuteCommandAgent") ||
		!strings.Contains(errs, "ssmmessages:CreateControlChannel") || !strings.Contains(errs, "pidMode task") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}

// Bad input: one line, exit 2, nothing started.
func TestConnectBadInputStartsNothing(t *testing.T) {
	standInPlugin(t)
	r := newRig(t)
	busyPort := strconv.Itoa(heldPort(t))
	cfg := filepath.Join(r.env.Connect.WorkDir, ConfigName)
	writeFile(t, cfg, "connections:\n  db:\n    to: db.internal:5432\n  elsewhere:\n    stack: bastion-ttl\n    cluster: other\n    to: db.internal:5432\n"+
		"  box:\n    shell: true\n  cache:\n    to: cache.internal:6379\n    local-port: "+busyPort+"\n  own:\n    local-port: 2222\n  db2:\n    to: db2.internal:5432\n    local-port: 2222\n"+
		"groups:\n  morning: [db, cache]\n  broken: [db, gone]\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown connection", []string{"nope"}, `no connection "nope" in ` + cfg + " (it has: box, cache, db, db2, elsewhere, own)"},
		{"--to not host:port", []string{"--to", "db.internal"}, `--to "db.internal" is not HOST:PORT`},
		{"--to with a bad port", []string{"--to", "db.internal:99999"}, `port "99999" is not 1-65535`},
		{"local port in use", []string{"--to", "db.internal:5432", "--local-port", busyPort}, "local port " + busyPort + " for --to db.internal:5432 (--local-port) is in use by pid " + strconv.Itoa(os.Getpid()) + " ("},
		{"cluster neither --cluster nor the stack's", []string{"elsewhere"}, "connection elsewhere: cluster other is not the stack bastion-ttl's ClusterName output (bastions)"},
		{"cluster that does not exist", []string{"--to", "db.internal:5432", "--cluster", "nope"}, `cluster "nope" does not exist`},
		{"ttl above the cap", []string{"db", "--ttl", "13h"}, "above the stack's cap, MaxTTL 12h0m0s"},
		{"shell and to", []string{"--shell", "--to", "db.internal:5432"}, "--shell and --to"},
		{"two bastions", []string{"db", "elsewhere"}, `connections db and elsewhere name different clusters ("", "other"): one connect goes through one bastion`},
		{"a shell among forwards", []string{"db", "box"}, "connection box is a shell, which has the terminal: connect it alone"},
		{"--local-port with two", []string{"db", "own", "--local-port", "7000"}, "--local-port with 2 connections"},
		{"a group's port in use", []string{"morning"}, "local port " + busyPort + " for cache (bastion-ttl.yaml's local-port) is in use by pid " + strconv.Itoa(os.Getpid())},
		{"a group of a connection no file has", []string{"broken"}, "group broken names gone, which no file has"},
		{"two forwards, one port", []string{"db2", "own"}, "local port 2222 is wanted by both db2 (bastion-ttl.yaml's local-port) and own"},
		{"a client without --exec", []string{"db", "--", "psql"}, `["psql"] after --: to start a client, say --exec -- CLIENT ARGS...`},
		{"--exec without a client", []string{"db", "--exec"}, "--exec needs a client"},
		{"--exec of a program not found", []string{"db", "--exec", "--", "no-such-client-here"}, "--exec no-such-client-here: executable file not found in $PATH; nothing started"},
		{"--print-token without a user", []string{"db", "--print-token"}, "--print-token prints an RDS IAM token: name its database user with --iam-auth USER"},
		{"--iam-auth to the bastion's own port", []string{"own", "--iam-auth", "app"}, "--iam-auth app needs a database to sign for"},
		{"--iam-auth with a bad user", []string{"db", "--iam-auth", "app user"}, "--iam-auth: "},
		{"--shell with --iam-auth", []string{"--shell", "--iam-auth", "app"}, "--shell with --exec or --iam-auth: those need a port forward"},
		{"--shell with --print-token", []string{"--shell", "--print-token"}, "--shell with --exec or --iam-auth: those need a port forward"},
		{"--engine unknown", []string{"db", "--engine", "oracle"}, `--engine "oracle" is not postgres, mysql or redis`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCLI(r.env, append([]string{"connect"}, tc.args...)...)
			if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Fatalf("exit %d, want 2 and one line with %q:\n%s%s", code, tc.want, out, errs)
			}
		})
	}
	t.Run("plugin missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, errs, code := runCLI(r.env, "connect", "db")
		if code != 2 || !strings.Contains(errs, "session-manager-plugin is not on PATH: install AWS's Session Manager plugin: https://docs.aws.amazon.com/") ||
			!strings.HasSuffix(strings.TrimSpace(errs), "nothing started") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	if got := r.running(t); len(got) != 0 {
		t.Fatalf("bad input started %v", got)
	}
	if r.ssm.Calls()["StartSession"] != 0 {
		t.Fatal("bad input opened a session")
	}
}

// A bastion-ttl.yaml planted where others may write (a shared directory
// above the repository, or in the repository a file others may write or
// another user owns) never redirects orders-db to the planter's host:
// above the repository's root it is not read, and the user's own orders-db
// is forwarded to; in the repository it is refused in one line naming it,
// exit 2, nothing started.
func TestConnectIgnoresAPlantedConfig(t *testing.T) {
	logPath := standInPlugin(t)
	r := newRig(t)
	host, dbPort := database(t)
	planter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer planter.Close()
	var stolen sync.WaitGroup
	stolen.Add(1)
	go func() {
		defer stolen.Done()
		if c, err := planter.Accept(); err == nil {
			c.Close()
			t.Errorf("the planted file's host was connected to")
		}
	}()
	local := freePort(t)
	r.env.Connect.UserConfigDir = filepath.Join(t.TempDir(), "config")
	writeFile(t, filepath.Join(r.env.Connect.UserConfigDir, "bastion-ttl", ConfigName),
		fmt.Sprintf("connections:\n  orders-db:\n    to: %s:%d\n    local-port: %d\n", host, dbPort, local))
	planted := fmt.Sprintf("connections:\n  orders-db:\n    to: %s\n    local-port: %d\n", planter.Addr(), freePort(t))

	// connectFrom plants the file at dir (under a shared directory that
	// holds the repository), then runs connect orders-db from the
	// repository's services/api.
	connectFrom := func(t *testing.T, dir string, mode os.FileMode, owner int) (*connecting, string) {
		t.Helper()
		shared := t.TempDir()
		if err := os.Chmod(shared, 0o777); err != nil {
			t.Fatal(err)
		}
		repo := filepath.Join(shared, "repo")
		work := filepath.Join(repo, "services", "api")
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(shared, dir, ConfigName)
		writeFile(t, p, planted)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if owner >= 0 {
			if err := os.Chown(p, owner, owner); err != nil {
				if os.Geteuid() == 0 {
					t.Fatalf("root cannot chown %s to uid %d: %v", p, owner, err)
				}
				testenv.Skipped(t, "only root can make a file of another user's here: "+err.Error())
			}
		}
		r.env.Connect.WorkDir = work
		return r.connect(t, "orders-db"), p
	}

	for _, tc := range []struct {
		name, dir string
		mode      os.FileMode
		owner     int // -1: the user's
		want      string
	}{
		{"in the repository, mode 0666", "repo/services", 0o666, -1, "group or others may write it (mode 0666), and so send your connections elsewhere: chmod go-w "},
		{"in the repository, another user's", "repo/services", 0o644, 65534, "not yours (owned by uid 65534, you are uid "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" {
				testenv.Skipped(t, "Windows has no owner and mode bits to refuse by (docs/connect.md)")
			}
			c, p := connectFrom(t, tc.dir, tc.mode, tc.owner)
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(c.out.String(), " through ") && len(c.done) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if strings.Contains(c.out.String(), " through ") {
				t.Fatalf("connect used the planted %s:\n%s", p, c.out.String())
			}
			code := c.exit(t)
			errs := strings.TrimSpace(c.errs.String())
			if code != 2 || !strings.HasPrefix(errs, "bastion-ttl: refused "+p+": "+tc.want) || strings.Contains(errs, "\n") {
				t.Fatalf("exit %d, want 2 and one line refusing %s with %q:\n%s%s", code, p, tc.want, c.out.String(), errs)
			}
			if got := r.running(t); len(got) != 0 || r.ssm.Calls()["StartSession"] != 0 {
				t.Fatalf("a refused file started %v, sessions %v", got, r.ssm.Calls())
			}
		})
	}

	t.Run("above the repository's root, mode 0666", func(t *testing.T) {
		c, p := connectFrom(t, ".", 0o666, -1)
		c.until(t, " through ", 1)
		if !strings.Contains(c.out.String(), fmt.Sprintf("localhost:%d -> %s:%d through ", local, host, dbPort)) {
			t.Fatalf("connect used the planted %s, not the user's own orders-db:\n%s", p, c.out.String())
		}
		exchange(t, local, "select password")
		c.cancel()
		if code := c.exit(t); code != 0 {
			t.Fatalf("exit %d\n%s", code, c.errs.String())
		}
		l := pluginLog(t, logPath)
		if len(l) != 1 || fmt.Sprint(l[0].Params["host"], l[0].Params["portNumber"]) != fmt.Sprintf("[%s] [%d]", host, dbPort) {
			t.Fatalf("the plugin was given %+v; want the user's %s:%d", l, host, dbPort)
		}
	})
	planter.Close()
	stolen.Wait()
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Without --to: the bastion container's first port mapping (2222, its SSH)
// through AWS-StartPortForwardingSession, to the local port asked for.
func TestConnectForwardsTheBastionsOwnPort(t *testing.T) {
	logPath := standInPlugin(t)
	ssh, err := net.Listen("tcp", "127.0.0.1:2222") // the stand-in's task is this machine
	if err != nil {
		testenv.Skipped(t, "port 2222 is taken here: "+err.Error())
	}
	go pong.Serve(ssh)
	defer ssh.Close()
	r := newRig(t)
	local := freePort(t)
	c := r.connect(t, "--local-port", strconv.Itoa(local))
	c.until(t, "'s port 2222 (stops at ", 1)
	exchange(t, local, "SSH-2.0-OpenSSH_9.6")
	c.cancel()
	if code := c.exit(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, c.errs.String())
	}
	l := pluginLog(t, logPath)
	if len(l) != 1 || l[0].Document != "AWS-StartPortForwardingSession" || fmt.Sprint(l[0].Params) != fmt.Sprintf("map[localPortNumber:[%d] portNumber:[2222]]", local) {
		t.Fatalf("the plugin was given %+v", l)
	}
}

// A stop reason is printed safe for a terminal: when the bastion connect
// holds a session to stops, and when the one it starts stops before it
// runs, the reason shows as escapes and nothing a terminal acts on reaches it.
func TestConnectShowsNoTerminalControl(t *testing.T) {
	const me = "AROAEXAMPLEDEVELOPER1:alice"
	t.Run("stopped while connected", func(t *testing.T) {
		f := newFakeAWS(t, me)
		arn := f.bastion("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7", me, "4h0m0s")
		go func() {
			for f.ssm.Calls()["StartSession"] == 0 {
				time.Sleep(5 * time.Millisecond)
			}
			_, _ = f.env.ECS.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("bastions"), Task: aws.String(arn), Reason: aws.String("stopped by mallory" + evil)})
		}()
		out, errs, code := f.run(10*time.Second, "connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)))
		if code != 1 || !strings.Contains(out, "reusing your bastion") || !strings.Contains(errs, `stopped (stopped by mallory\x1b]0;pwned\x07\x1b[2J \u009b31m`) {
			t.Fatalf("exit %d, want 1 and the reason as escapes:\n%s%s", code, out, errs)
		}
		terminalSafe(t, "connect's output", out+errs)
	})
	t.Run("stopped before it ran", func(t *testing.T) {
		f := newFakeAWS(t, me)
		f.started = func(arn string) ecsapi.Task {
			return ecsapi.Task{ARN: arn, ClusterARN: fakeCluster, LastStatus: "STOPPED", DesiredStatus: "STOPPED", StoppedReason: "CannotPullContainerError: " + evil}
		}
		out, errs, code := f.run(10*time.Second, "connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)))
		if code != 1 || !strings.Contains(errs, `the task stopped before it ran: CannotPullContainerError: \x1b]0;pwned`) {
			t.Fatalf("exit %d, want 1 and the reason as escapes:\n%s%s", code, out, errs)
		}
		terminalSafe(t, "connect's output", out+errs)
	})
}

// A connection's reason (bastion-ttl.yaml) tags the bastion connect starts,
// unless --reason says another. A bastion connect reuses keeps its own
// reason (a tag is set only at start): a --reason that differs is said in
// one line, and no other bastion starts.
func TestConnectReason(t *testing.T) {
	const me = "AROAEXAMPLEDEVELOPER1:alice"
	reasonOf := func(in *ecs.RunTaskInput) string {
		for _, tag := range in.Tags {
			if aws.ToString(tag.Key) == "bastion-ttl-reason" {
				return aws.ToString(tag.Value)
			}
		}
		return ""
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"the connection's", nil, "INC-7: orders replica"},
		{"--reason over the connection's", []string{"--reason", "INC-8"}, "INC-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAWS(t, me)
			writeFile(t, filepath.Join(f.env.Connect.WorkDir, ConfigName), "connections:\n  db:\n    to: db.internal:5432\n    reason: \"INC-7: orders replica\"\n")
			out, errs, _ := f.runUntil("localhost:", 5*time.Second, append([]string{"connect", "db", "--local-port", strconv.Itoa(freePort(t))}, tc.args...)...)
			if runs := f.runTasks(); len(runs) != 1 || reasonOf(runs[0]) != tc.want {
				t.Fatalf("%d started, want one tagged %q:\n%s%s", len(runs), tc.want, out, errs)
			}
		})
	}
	for _, tc := range []struct {
		name, reason string
		note         bool
	}{
		{"another reason", "INC-9", true},
		{"the same reason", "INC-1: orders", false},
		{"no reason", "", false},
	} {
		t.Run("reused, "+tc.name, func(t *testing.T) {
			f := newFakeAWS(t, me)
			arn := f.bastion("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7", me, "4h0m0s")
			if _, err := f.env.ECS.(runTaskECS).TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: aws.String(arn),
				Tags: []types.Tag{{Key: aws.String("bastion-ttl-reason"), Value: aws.String("INC-1: orders")}}}); err != nil {
				t.Fatal(err)
			}
			args := []string{"connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t))}
			if tc.reason != "" {
				args = append(args, "--reason", tc.reason)
			}
			out, errs, _ := f.runUntil("localhost:", 5*time.Second, args...)
			if len(f.runTasks()) != 0 || !strings.Contains(out, "reusing your bastion "+taskID(arn)) {
				t.Fatalf("want %s reused, none started (%d):\n%s%s", taskID(arn), len(f.runTasks()), out, errs)
			}
			want := `bastion-ttl: note: your bastion ` + taskID(arn) + ` was started for "INC-1: orders", not --reason "INC-9": reused, its reason stays (a tag is set only at start)` + "\n"
			if got := strings.Contains(errs, want); got != tc.note || strings.Count(errs, "was started for") > 1 {
				t.Errorf("note said %v, want %v:\n%s", got, tc.note, errs)
			}
		})
	}
}
