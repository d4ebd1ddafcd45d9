package launcher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// reconnectsInARow is how many sessions in a row may fail fast before
// connect gives up (the bastion still runs to its deadline).
const reconnectsInARow = 5

// endedAtOnce is how long a session may last and still count as failed
// fast, towards reconnectsInARow; a longer one starts the count anew.
const endedAtOnce = 30 * time.Second

// readyAfter is how long a session's plugin may take to say it listens
// before connect says the session is ready anyway.
const readyAfter = 10 * time.Second

// connection is one connect's sessions to one bastion, until the person
// leaves, the client connect started exits, or the bastion stops: a shell,
// or one port forward per connection named, each reconnecting on its own.
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
	forwards                           []*forward    // none for a shell
	client                             *client       // --exec's; nil: none
	printLogin                         *login        // --print-token's; nil: none
	shell, stop, started               bool
}

// forward is one port forward of a connection: localhost:local to
// host:port through the bastion, or to the bastion's own port when host
// is "".
type forward struct {
	name        string // the connection's name; "" for --to alone
	host        string
	port, local int
	ready       chan struct{} // closed when its first session is ready
	readyOnce   sync.Once
}

func newForward(name, host string, port, local int) *forward {
	return &forward{name: name, host: host, port: port, local: local, ready: make(chan struct{})}
}

// label is how connect's lines name the forward when there are several.
func (c *connection) label(f *forward) string {
	if f == nil || len(c.forwards) < 2 {
		return ""
	}
	return cmp.Or(f.name, "--to") + ": "
}

// out is where connect's own lines go: stdout, unless a shell or a client
// has it.
func (c *connection) out() io.Writer {
	if c.shell || c.client != nil {
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

// run opens the sessions and keeps them up until the person leaves
// (Ctrl-C, or the client exits), the bastion stops, or one forward gives
// up (loop), which ends the others too.
func (c *connection) run(ctx context.Context) error {
	c.rearm = make(chan struct{}, 1)
	// quit ends every session: Ctrl-C (ctx), the client's exit, or another
	// forward giving up. live ends with quit, or when watch sees the
	// bastion stop.
	quit, leave := c.client.shield(ctx)
	defer leave()
	live, end := context.WithCancelCause(quit)
	defer end(nil)
	go c.warn(live)
	go c.watch(live, end)
	if c.shell {
		return c.finish(c.loop(quit, live, nil))
	}
	results := make(chan error, len(c.forwards))
	for _, f := range c.forwards {
		go func() { results <- c.loop(quit, live, f) }()
	}
	if c.printLogin != nil {
		go c.printToken(live, *c.printLogin)
	}
	exited := make(chan error, 1)
	if c.client != nil {
		go func() {
			exited <- c.client.run(live, c)
			leave()
		}()
	}
	// The first forward to end for good ends the others: the person left,
	// the bastion stopped, or it gave up.
	var first error
	for range c.forwards {
		if err := <-results; first == nil || errors.Is(first, errInterrupted) {
			first = err
		}
		leave()
	}
	if c.client.runs() && !errors.Is(first, errInterrupted) {
		fmt.Fprintln(c.env.Stderr, "bastion-ttl:", first) // now: the client runs on
	}
	err := c.finish(first)
	if c.client == nil {
		return err
	}
	code := <-exited
	if c.client.runs() {
		if err != nil && errors.Is(first, errInterrupted) {
			fmt.Fprintln(c.env.Stderr, "bastion-ttl:", err) // --stop's failure, say
		}
		return code // the client's exit is connect's
	}
	return cmp.Or(err, code)
}

// finish is how connect ends once every session has: the person left
// (errInterrupted: leave), or the error that ended them.
func (c *connection) finish(err error) error {
	if errors.Is(err, errInterrupted) {
		return c.leave()
	}
	return err
}

// loop is one session loop: it opens a session (a shell when f is nil,
// else f's forward), and reconnects with backoff when one ends while the
// bastion runs, until quit ends (errInterrupted), the bastion stops, or
// reconnectsInARow sessions in a row end at once.
func (c *connection) loop(quit, live context.Context, f *forward) error {
	policy := c.ce.Reconnect
	if policy.Base <= 0 {
		policy = backoff.Policy{Base: time.Second, Max: 30 * time.Second}
	}
	clk := c.env.Clock
	fails := 0
	for {
		began := clk.Now()
		exitErr, err := c.session(quit, live, f)
		switch {
		case errors.Is(err, errInterrupted):
			return err
		case errors.As(err, new(errBastionStopped)):
			return err
		case errors.Is(err, ErrNoPlugin):
			return badf("%v: %s", err, pluginInstall)
		case err == nil && exitErr == nil && c.shell:
			return errInterrupted // the person left the shell
		}
		why := "the plugin exited"
		if err != nil {
			why = err.Error()
		} else if exitErr != nil {
			why = "the plugin: " + exitErr.Error()
		}
		if reason, gone := c.gone(quit); gone {
			return c.stoppedErr(reason)
		}
		if clk.Now().Sub(began) > endedAtOnce {
			fails = 0
		}
		if fails >= reconnectsInARow {
			return fmt.Errorf("%s%d sessions in a row ended at once (last: %s); the bastion %s keeps running to its deadline", c.label(f), fails+1, why, taskID(c.arn))
		}
		delay := policy.Delay(fails)
		fails++
		fmt.Fprintf(c.out(), "%sthe session ended (%s) while the bastion runs: reconnecting in %s\n", c.label(f), why, delay.Round(10*time.Millisecond))
		// Ctrl-C or the stop cuts the wait short: the next session says which.
		_ = clk.Sleep(live, delay)
	}
}

// session opens one session, runs the plugin on it until it exits, the
// person interrupts (ctx ends), or the bastion stops (live ends), and then
// terminates it. It returns the plugin's exit error apart from its own.
func (c *connection) session(ctx, live context.Context, f *forward) (exitErr, err error) {
	if live.Err() != nil {
		return nil, c.endedBy(ctx, live)
	}
	id, args, extra, err := c.open(ctx, f)
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
	// A shell's plugin has the terminal, as the AWS CLI leaves it. A
	// forward's reads nothing, and several share the terminal: none gets
	// stdin (and with --exec, no Ctrl-C: PathPlugin.OwnGroup). Their
	// chatter goes to stderr, apart from connect's lines.
	var stdin io.Reader
	var stdout io.Writer
	ready := make(chan struct{})
	if c.shell {
		stdin, stdout = c.ce.Stdin, c.env.Stdout
		close(ready)
	} else {
		stdout = &readyWriter{w: c.env.Stderr, ready: ready, marker: "Waiting for connections"}
	}
	go func() { done <- c.plugin.Run(pctx, args, extra, stdin, stdout, c.env.Stderr) }()
	// A missing plugin is ours, whenever it shows; an interrupt is ours once
	// the plugin was ready (or readyAfter has passed): before, its exit is
	// the session's answer.
	waitCtx, stopWaiting := context.WithCancel(pctx)
	defer stopWaiting()
	wait := after(waitCtx, c.env.Clock, readyAfter)
	told := false // the status line
	for {
		select {
		case <-ready:
			if told && f != nil {
				f.readyOnce.Do(func() { close(f.ready) })
			} else {
				c.sayReady(f, true)
			}
			stopWaiting()
			ready, wait, told = nil, nil, true
		case <-wait:
			c.sayReady(f, false)
			wait, told = nil, true // the plugin may still say it listens
		case e := <-done:
			if errors.Is(e, ErrNoPlugin) {
				return nil, e
			}
			if told && ctx.Err() != nil {
				return nil, errInterrupted
			}
			return e, nil
		case <-live.Done():
			cancel()
			<-done
			return nil, c.endedBy(ctx, live)
		}
	}
}

// endedBy is why live ended: the bastion's stop (errBastionStopped), or
// the person's Ctrl-C (errInterrupted).
func (c *connection) endedBy(ctx, live context.Context) error {
	var stopped errBastionStopped
	if ctx.Err() == nil && errors.As(context.Cause(live), &stopped) {
		return stopped
	}
	return errInterrupted
}

// after is a timer on clk: its channel closes once d has passed, and never
// if ctx ends first.
func after(ctx context.Context, clk clock.Clock, d time.Duration) <-chan struct{} {
	fired := make(chan struct{})
	go func() {
		if clk.Sleep(ctx, d) == nil {
			close(fired)
		}
	}()
	return fired
}

// sayReady is a session's status line. Once the plugin says it listens,
// the forward is ready for --exec's client; not before (a slow session is
// told after readyAfter, but a client started then would find no one on
// the port, or whoever took it).
func (c *connection) sayReady(f *forward, listening bool) {
	stops := "stops TTL after its start"
	if d := c.stopsAt(); !d.IsZero() {
		stops = fmt.Sprintf("stops at %s, %s left", when(d), lifetime.LeftText(d, c.env.Clock.Now()))
	}
	id := taskID(c.arn)
	switch {
	case f == nil:
		fmt.Fprintf(c.out(), "shell in %s, container %s (%s); exit leaves it\n", id, termtext.Safe(c.container), stops)
		return
	case f.host != "":
		fmt.Fprintf(c.out(), "%slocalhost:%d -> %s through %s (%s)\n", c.label(f), f.local, termtext.Safe(net.JoinHostPort(f.host, strconv.Itoa(f.port))), id, stops)
	default:
		fmt.Fprintf(c.out(), "%slocalhost:%d -> %s's port %d (%s)\n", c.label(f), f.local, id, f.port, stops)
	}
	if listening {
		f.readyOnce.Do(func() { close(f.ready) })
	}
}

// open starts a session as the AWS CLI does, and returns the plugin's
// arguments: a port forward is ssm:StartSession's, a shell ecs:ExecuteCommand's.
func (c *connection) open(ctx context.Context, f *forward) (id string, args, extra []string, err error) {
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
	params := map[string][]string{"portNumber": {strconv.Itoa(f.port)}, "localPortNumber": {strconv.Itoa(f.local)}}
	if f.host != "" {
		doc = "AWS-StartPortForwardingSessionToRemoteHost"
		params["host"] = []string{f.host}
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

// errBastionStopped ends a connection whose bastion stopped.
type errBastionStopped struct{ id, reason string }

func (e errBastionStopped) Error() string {
	return fmt.Sprintf("the bastion %s stopped (%s); the connection is closed", e.id, e.reason)
}

func (c *connection) stoppedErr(reason string) error {
	return errBastionStopped{taskID(c.arn), reason}
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
