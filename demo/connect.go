package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/launcher"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/pong"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmplugin"
)

// The person at the laptop, who runs bastion-ttl connect.
const (
	personARN    = "arn:aws:sts::111122223333:assumed-role/developers/ops"
	personUserID = "AROADEMODEVELOPERS01:ops"
	taskDefARN   = "arn:aws:ecs:us-west-2:111122223333:task-definition/bastion:1"
)

// demoTaskDefinition is the bastion's task definition as ECS describes it:
// the bastion's container (its SSH port) beside the supervisor's.
func demoTaskDefinition(sshPort int) map[string]any {
	return map[string]any{
		"taskDefinitionArn": taskDefARN, "family": "bastion", "revision": 1, "status": "ACTIVE",
		"requiresCompatibilities": []string{"FARGATE"}, "networkMode": "bridge", "pidMode": "task",
		"containerDefinitions": []map[string]any{
			{"name": "bastion", "image": "openssh-server", "essential": true, "portMappings": []map[string]any{{"containerPort": sshPort}}},
			{"name": "supervisor", "image": "ghcr.io/bastion-ttl/supervisor:v0.1.0", "essential": true, "command": []string{"watch"}},
		},
	}
}

// connectResult is how bastion-ttl connect ended, and what it printed last.
type connectResult struct {
	err  error
	said string
}

// laptops run bastion-ttl connect (the launcher's, with the real SDK
// against the local ECS and SSM endpoints and the stand-in
// session-manager-plugin in process), as people do from their laptops.
type laptops struct {
	tl     *timeline
	ecsURL string
	ssmURL string
	dir    string // the laptops' working directory: its bastion-ttl.yaml
	close  func()
}

func openLaptops(tl *timeline, ecsURL string) (*laptops, error) {
	ssmStandIn := &ssmapi.Server{}
	ssmSrv := httptest.NewServer(ssmStandIn)
	ssmStandIn.URL = ssmSrv.URL
	dir, err := os.MkdirTemp("", "demo-connect")
	if err != nil {
		ssmSrv.Close()
		return nil, err
	}
	return &laptops{tl: tl, ecsURL: ecsURL, ssmURL: ssmSrv.URL, dir: dir, close: func() { ssmSrv.Close(); os.RemoveAll(dir) }}, nil
}

// forwarded is a forward of a connect, once its status line says it is
// ready: the connection's name ("" when connect has one forward) and its
// local port.
type forwarded struct {
	name  string
	local int
}

// statusLine is connect's line for a ready forward: "NAME: " first when
// connect has several.
var statusLine = regexp.MustCompile(`^(?:([A-Za-z0-9._-]+): )?localhost:(\d+) -> `)

// pluginChatter is the session-manager-plugin's own lines, which connect
// passes on to stderr: the demo leaves them out.
var pluginChatter = regexp.MustCompile(`^(Starting session with SessionId|Port \d+ opened for sessionId|Waiting for connections|Connection accepted for session)`)

// freePort is a local port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// connect runs `bastion-ttl connect <args> --ttl 30m` from at on, in the
// laptops' directory (its bastion-ttl.yaml); ready gets each forward once
// it is ready, with the local port connect chose, and done how it ended.
func (l *laptops) connect(ctx context.Context, who string, at time.Time, args ...string) (ready <-chan forwarded, done <-chan connectResult) {
	creds := credentials.NewStaticCredentialsProvider("AKIDDEMOPERSON000001", "demo-person-secret", "")
	readyc := make(chan forwarded, 8)
	seen := map[string]bool{}
	var mu sync.Mutex
	say := lineWriter(func(line string) {
		if pluginChatter.MatchString(line) {
			return
		}
		if m := statusLine.FindStringSubmatch(line); m != nil {
			mu.Lock()
			if !seen[m[1]] {
				seen[m[1]] = true
				local, _ := strconv.Atoi(m[2])
				readyc <- forwarded{m[1], local}
			}
			mu.Unlock()
		}
		l.tl.say(who, "%s", line)
	})
	env := launcher.Env{
		Environ: map[string]string{},
		Stdout:  say, Stderr: say,
		Poll:   50 * time.Millisecond,
		ECS:    ecs.New(ecs.Options{Region: region, BaseEndpoint: aws.String(l.ecsURL), Credentials: creds}),
		Stacks: demoStack{}, Caller: demoCaller{},
		Connect: launcher.ConnectEnv{
			SSM:         ssm.New(ssm.Options{Region: region, BaseEndpoint: aws.String(l.ssmURL), Credentials: creds}),
			Plugin:      inProcessPlugin{},
			Region:      region,
			SSMEndpoint: l.ssmURL, ECSEndpoint: l.ecsURL,
			// No home and no XDG_STATE_HOME: the ports chosen are not
			// remembered, and this user's own are not read.
			WorkDir:   l.dir,
			ReuseLeft: time.Second, WarnBefore: []time.Duration{time.Second},
		},
	}
	args = append(args, "--ttl", "30m")
	donec := make(chan connectResult, 1)
	go func() {
		select {
		case <-time.After(time.Until(at)):
		case <-ctx.Done():
			donec <- connectResult{err: ctx.Err()}
			return
		}
		l.tl.say(who, "$ bastion-ttl connect %s", strings.Join(args, " "))
		err := launcher.Run(ctx, append([]string{"connect"}, args...), env)
		var last bytes.Buffer
		cli.ExitCode(err, &last, "bastion-ttl")
		donec <- connectResult{err: err, said: strings.TrimSpace(last.String())}
	}()
	return readyc, donec
}

// writeConnections is the laptops' bastion-ttl.yaml: one connection per
// name, to its address.
func (l *laptops) writeConnections(to map[string]string) error {
	var b strings.Builder
	b.WriteString("connections:\n")
	for _, name := range slices.Sorted(maps.Keys(to)) {
		fmt.Fprintf(&b, "  %s:\n    to: %s\n", name, to[name])
	}
	return os.WriteFile(filepath.Join(l.dir, launcher.ConfigName), []byte(b.String()), 0o600)
}

// backend is a local stand-in for what is behind the bastion (a
// database, a cache): each line it is sent, it answers "pong: <line>".
func backend(what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the %s's listener: %w", what, err)
	}
	go pong.Serve(ln)
	return ln, nil
}

// client is the person's client (psql, redis-cli): it sends one line
// through the forward on local, and says what answered from behind it.
func client(tl *timeline, name string, local int, send, behind string) {
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(local))
	if err != nil {
		tl.say("laptop", "%s cannot reach the forwarded port: %v", name, err)
		return
	}
	defer conn.Close()
	fmt.Fprintln(conn, send)
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		tl.say("laptop", "%s: no answer through the forward: %v", name, err)
		return
	}
	tl.say("laptop", "%s on localhost:%d sent %q, %s answered %q", name, local, send, behind, strings.TrimSpace(answer))
}

// lineWriter calls f with each non-empty line written to it.
type lineWriter func(string)

func (f lineWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			f(line)
		}
	}
	return len(p), nil
}

// demoStack is the deployed stack's outputs, as CloudFormation would give them.
type demoStack struct{}

func (demoStack) DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	out := func(k, v string) cfntypes.Output {
		return cfntypes.Output{OutputKey: aws.String(k), OutputValue: aws.String(v)}
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cfntypes.Stack{{StackName: aws.String("bastion-ttl"),
		Outputs: []cfntypes.Output{out("ClusterName", "default"), out("TaskDefinition", "bastion:1"), out("MaxTTL", fnMaxTTL.String())}}}}, nil
}

// demoCaller is who the person is, as STS would answer.
type demoCaller struct{}

func (demoCaller) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return &sts.GetCallerIdentityOutput{Arn: aws.String(personARN), UserId: aws.String(personUserID), Account: aws.String(account)}, nil
}

// inProcessPlugin runs the stand-in session-manager-plugin in this process,
// with only the environment connect gives it.
type inProcessPlugin struct{}

func (inProcessPlugin) Version(context.Context) (string, error) { return ssmplugin.DefaultVersion, nil }

func (inProcessPlugin) Run(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	if code := ssmplugin.Run(ctx, args, func(k string) string { return vars[k] }, stdin, stdout, stderr); code != 0 {
		return fmt.Errorf("exit status %d", code)
	}
	return nil
}
