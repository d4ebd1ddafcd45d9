package launcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/dbauth"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// client is --exec's program: started once every forward is ready, with
// the forwards' addresses (and the first one's database login) in its
// environment. connect ends when it exits, with its exit code.
type client struct {
	argv []string
	// login is the first forward's database login; its token, when it
	// asks for one, is made afresh at the start.
	login login
	// state is notYet, then started or interrupted, once: the Ctrl-C and
	// the start race for it.
	state atomic.Int32
}

const (
	notYet int32 = iota
	started
	interrupted
)

// login is what a database client is told of the first forward: its
// engine, and for an RDS IAM login its user and where to sign for.
type login struct {
	engine dbauth.Engine
	user   string // iam-auth's; "": no token
	creds  aws.CredentialsProvider
	region string // the CLI's: a database endpoint's own wins (dbauth.Region)
}

// shield is ctx for the sessions while the client runs: before it starts,
// Ctrl-C ends connect; after, Ctrl-C is the client's (the terminal sends
// it to both), and connect waits for the client to exit. Without a
// client, ctx itself.
func (cl *client) shield(ctx context.Context) (context.Context, context.CancelFunc) {
	if cl == nil {
		return context.WithCancel(ctx)
	}
	shielded, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-ctx.Done():
			if cl.state.CompareAndSwap(notYet, interrupted) {
				cancel()
			}
		case <-shielded.Done():
		}
	}()
	return shielded, cancel
}

// run waits for every forward to be ready, then runs the client to its
// exit: its exit code as cli.Pass. nil when the sessions end first.
func (cl *client) run(live context.Context, c *connection) error {
	for _, f := range c.forwards {
		select {
		case <-f.ready:
		case <-live.Done():
			return nil
		}
	}
	env, err := c.clientEnv(live, cl.login)
	if live.Err() != nil {
		return nil // Ctrl-C, or the stop, while the token was made
	} else if err != nil {
		return err
	}
	cmd := exec.Command(cl.argv[0], cl.argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.ce.Stdin, c.env.Stdout, c.env.Stderr
	if !cl.state.CompareAndSwap(notYet, started) {
		return nil // Ctrl-C came first
	}
	fmt.Fprintf(c.env.Stderr, "bastion-ttl: starting %s\n", termtext.Safe(strings.Join(cl.argv, " ")))
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return fmt.Errorf("--exec %s: %w", strconv.Quote(cl.argv[0]), err)
		}
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return cli.Pass(128 + int(ws.Signal()))
		}
		return cli.Pass(exit.ExitCode())
	}
	return nil
}

// clientEnv is the client's variables: each forward's address, and the
// first forward's, in the form its engine's client reads, with an RDS IAM
// token made now for the real endpoint when the login asks for one.
func (c *connection) clientEnv(ctx context.Context, l login) ([]string, error) {
	first := c.forwards[0]
	token, err := c.token(ctx, first, l)
	if err != nil {
		return nil, err
	}
	env := dbauth.ClientEnv(l.engine, cmp.Or(first.host, "127.0.0.1"), first.local, l.user, token)
	for _, f := range c.forwards {
		if f.name != "" {
			env = append(env, "BASTION_TTL_LOCAL_ADDR_"+envName(f.name)+"="+net.JoinHostPort("127.0.0.1", strconv.Itoa(f.local)))
		}
	}
	return env, nil
}

// token is an RDS IAM token for f's real endpoint; "" when l asks none.
func (c *connection) token(ctx context.Context, f *forward, l login) (string, error) {
	if l.user == "" {
		return "", nil
	}
	region := l.region
	if r, ok := dbauth.Region(f.host); ok {
		region = r
	}
	token, err := dbauth.Token(ctx, net.JoinHostPort(f.host, strconv.Itoa(f.port)), region, l.user, l.creds)
	if err != nil {
		return "", fmt.Errorf("the IAM token for %s at %s: %w", l.user, f.host, err)
	}
	return token, nil
}

// printToken prints the first forward's IAM token once the forwards are
// ready, for a client connect does not start (a GUI).
func (c *connection) printToken(live context.Context, l login) {
	for _, f := range c.forwards {
		select {
		case <-f.ready:
		case <-live.Done():
			return
		}
	}
	f := c.forwards[0]
	token, err := c.token(live, f, l)
	if err != nil {
		fmt.Fprintln(c.env.Stderr, "bastion-ttl:", err)
		return
	}
	fmt.Fprintf(c.env.Stderr, "the IAM token for %s at %s, valid for new logins until 15 minutes from now, password of localhost:%d:\n", l.user, f.host, f.local)
	fmt.Fprintln(c.env.Stdout, token)
}

var notEnvChar = regexp.MustCompile(`[^A-Z0-9_]`)

// envName is a connection's name as a variable's: orders-db, ORDERS_DB.
func envName(name string) string {
	return notEnvChar.ReplaceAllString(strings.ToUpper(name), "_")
}

// runs reports whether the client has started.
func (cl *client) runs() bool { return cl != nil && cl.state.Load() == started }
