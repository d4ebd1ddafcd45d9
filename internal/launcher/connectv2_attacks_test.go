package launcher

// Connect v2 as an attacker, a careless teammate or a slow agent would
// have it: each test failed on the code before its fix.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

const me = "AROAEXAMPLEDEVELOPER1:alice"

// A repository's to: is a teammate's text: its host reaches the terminal
// in connect's status line ("localhost:N -> HOST:PORT through ...") raw.
func TestConnectToHostShowsNoTerminalControl(t *testing.T) {
	f := newFakeAWS(t, me)
	f.bastion("0123456789abcdef0123456789abcdef", me, "2h")
	writeFile(t, filepath.Join(f.env.Connect.WorkDir, ConfigName),
		"connections:\n  db:\n    to: \"\\u202e\\ec\\u009b31mdb.internal:5432\"\n")
	out, errs, code := f.runUntil("localhost:", 5*time.Second, "connect", "db", "--local-port", strconv.Itoa(freePort(t)))
	if code != 0 && code != 2 {
		t.Fatalf("exit %d:\n%s%s", code, out, errs)
	}
	terminalSafe(t, "stdout", out)
	terminalSafe(t, "stderr", errs)
}

// --iam-auth with an engine whose client gets no password variable
// (redis by its port, or a port that names no engine) makes a token and
// gives it to nobody: the client starts without a password, silently.
// Bad input: exit 2, nothing started.
func TestConnectIAMAuthNeedsAnEngineThatTakesIt(t *testing.T) {
	for _, to := range []string{"cache.internal:6379", "db.internal:15432"} {
		t.Run(to, func(t *testing.T) {
			f := newFakeAWS(t, me)
			f.env.Connect.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
			f.bastion("0123456789abcdef0123456789abcdef", me, "2h")
			writeFile(t, filepath.Join(f.env.Connect.WorkDir, ConfigName),
				"connections:\n  db:\n    to: "+to+"\n    iam-auth: app_user\n")
			out, errs, code := f.run(10*time.Second, "connect", "db", "--local-port", strconv.Itoa(freePort(t)), "--exec", "--", "true")
			if code != 2 {
				t.Fatalf("exit %d, want 2 (the token would reach no variable):\n%s%s", code, out, errs)
			}
			if calls := f.ssm.Calls(); len(calls) != 0 {
				t.Fatalf("SSM was asked %v", calls)
			}
		})
	}
}

// failStop is ECS whose StopTask fails.
type failStop struct{ ECS }

func (failStop) StopTask(context.Context, *ecs.StopTaskInput, ...func(*ecs.Options)) (*ecs.StopTaskOutput, error) {
	return nil, errors.New("AccessDeniedException: not allowed")
}

// --stop with --exec: when the stop fails, the person must hear it (the
// bastion keeps its TTL); connect drops leave()'s error once the client
// has started.
func TestConnectStopFailureWithExecIsSaid(t *testing.T) {
	f := newFakeAWS(t, me)
	f.env.ECS = failStop{f.env.ECS}
	f.bastion("0123456789abcdef0123456789abcdef", me, "2h")
	out, errs, code := f.run(10*time.Second, "connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)), "--stop", "--exec", "--", "true")
	if !strings.Contains(errs, "stop-task") {
		t.Fatalf("exit %d; the failed stop went unsaid:\n%s%s", code, out, errs)
	}
}

// slowCreds is a credentials provider that takes a while, as an SSO
// refresh does, and honours ctx as the SDK's providers do.
type slowCreds struct{ d time.Duration }

func (s slowCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	select {
	case <-time.After(s.d):
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "slow"}, nil
	case <-ctx.Done():
		return aws.Credentials{}, ctx.Err()
	}
}

// Ctrl-C after the forwards are ready but before the client starts (here:
// while its IAM token is signed) ends connect as any Ctrl-C does: no
// "context canceled" error, exit 0, no client started.
func TestConnectCtrlCWhileTheTokenIsMade(t *testing.T) {
	f := newFakeAWS(t, me)
	f.env.Connect.Credentials = slowCreds{2 * time.Second}
	f.bastion("0123456789abcdef0123456789abcdef", me, "2h")
	mark := filepath.Join(t.TempDir(), "ran")
	errs := &testenv.Buffer{}
	env := f.env
	env.Stdout, env.Stderr = io.Discard, errs
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for !strings.Contains(errs.String(), "localhost:") {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	code := exitCode(Run(ctx, []string{"connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)),
		"--iam-auth", "app_user", "--exec", "--", "touch", mark}, env), errs)
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("the client started after Ctrl-C")
	}
	if code != 0 || strings.Contains(errs.String(), "context canceled") {
		t.Fatalf("Ctrl-C before the client: exit %d, want 0 and the leaving line:\n%s", code, errs.String())
	}
}

// proxyPlugin listens on the session's localPortNumber and carries each
// connection to addr, as the real plugin carries it to the bastion.
type proxyPlugin struct{ addr string }

func (proxyPlugin) Version(context.Context) (string, error) { return "1.2.707.0", nil }

func (p proxyPlugin) Run(ctx context.Context, args, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	var req struct{ Parameters map[string][]string }
	if err := json.Unmarshal([]byte(args[4]), &req); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+req.Parameters["localPortNumber"][0])
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	fmt.Fprintln(stdout, "Waiting for connections...")
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", p.addr)
			if err != nil {
				return
			}
			defer up.Close()
			go func() { _, _ = io.Copy(up, c) }()
			_, _ = io.Copy(c, up)
		}()
	}
}

// extend --task of your own bastion whose deadline is not known (a TTL tag
// that does not parse, read under --cluster: no cap) and whose sidecar
// answers 409 (at its cap): connect must say so, not panic on a nil
// deadline.
func TestExtendAtCapWithoutAKnownDeadline(t *testing.T) {
	sidecar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"code":"CapReached","message":"at the cap"}`)
	}))
	defer sidecar.Close()
	f := newFakeAWS(t, me)
	f.env.Connect.Plugin = proxyPlugin{sidecar.Listener.Addr().String()}
	id := "0123456789abcdef0123456789abcdef"
	f.bastion(id, me, "soon")
	var out, errs string
	var code int
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("extend panicked: %v", r)
			}
		}()
		out, errs, code = f.run(10*time.Second, "extend", "30m", "--cluster", "bastions", "--task", id)
	}()
	if code != 1 || !strings.Contains(errs, "at its cap") {
		t.Fatalf("exit %d, want 1 and the cap:\n%s%s", code, out, errs)
	}
}

// An --iam-auth endpoint the token cannot be signed for (dbauth refuses
// the host) is bad input: exit 2 before any AWS request. Today it is found
// only at the client's start, after a bastion was reused or started.
func TestConnectIAMAuthBadEndpointRefusedFirst(t *testing.T) {
	f := newFakeAWS(t, me)
	f.env.Connect.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	f.bastion("0123456789abcdef0123456789abcdef", me, "2h")
	out, errs, code := f.run(10*time.Second, "connect", "--to", "orders_db.internal:5432", "--local-port", strconv.Itoa(freePort(t)),
		"--iam-auth", "app_user", "--exec", "--", "true")
	if code != 2 || len(f.ssm.Calls()) != 0 {
		t.Fatalf("exit %d, SSM asked %v; want 2 and nothing asked:\n%s%s", code, f.ssm.Calls(), out, errs)
	}
}

// slowPlugin is a plugin whose session takes longer than readyAfter to
// open (a slow agent on the bastion): it listens, and says so, only then.
type slowPlugin struct{ d time.Duration }

func (slowPlugin) Version(context.Context) (string, error) { return "1.2.707.0", nil }

func (p slowPlugin) Run(ctx context.Context, args, _ []string, _ io.Reader, stdout, _ io.Writer) error {
	var req struct{ Parameters map[string][]string }
	if err := json.Unmarshal([]byte(args[4]), &req); err != nil {
		return err
	}
	select {
	case <-time.After(p.d):
	case <-ctx.Done():
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+req.Parameters["localPortNumber"][0])
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintln(stdout, "Waiting for connections...")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	<-ctx.Done()
	return nil
}

// --exec's client starts when the forward listens: a session slower than
// readyAfter (10s) to open must not start it against a port nobody (or
// someone else) listens on. Takes ~12s.
func TestConnectClientWaitsForTheListener(t *testing.T) {
	if testing.Short() {
		t.Skip("12 s of real time: not under -short")
	}
	f := newFakeAWS(t, me)
	f.env.Connect.Plugin = slowPlugin{12 * time.Second}
	f.bastion("0123456789abcdef0123456789abcdef", me, "2h")
	out, errs, code := f.run(30*time.Second, "connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t)),
		"--exec", "--", "bash", "-c", `exec 3<>"/dev/tcp/127.0.0.1/$PGPORT" || exit 9`)
	if code != 0 || !strings.Contains(errs, "bastion-ttl: starting bash") {
		t.Fatalf("exit %d, want the client started once the forward listened, and its 0 (9: it started before):\n%s%s", code, out, errs)
	}
}
