// Package supervisor is the supervisor command's implementation: it ends an
// ECS task when its time to live is up, as a sidecar (watch) or as the
// bastion container's health check (check). The supervisor binary's main
// only calls Run; the demo runs it in process.
//
//	supervisor [watch|check|status [--json|--short]|extend [--json] DURATION|version]
//
// Exit codes: 0 fine, 1 expired, unhealthy or fail-safe, 2 bad configuration or usage.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

var (
	errExpired  = errors.New("TTL expired")
	errFailSafe = errors.New("fail-safe exit")
)

// usageError is a bad command line (exit 2).
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

const usage = `usage: supervisor [command]

commands:
  watch                     sidecar: stop the task at its deadline (default)
  check                     health check: exit 0 before the deadline, stop the task and exit 1 after it
  status [--json|--short]   print start, TTL, deadline and time left (asks the sidecar first)
  extend [--json] DURATION  ask the sidecar for DURATION more (at least 1m), up to the API's cap
  version                   print the version, commit and Go version

exit codes: 0 fine, 1 expired, unhealthy, refused or fail-safe, 2 bad configuration or usage

configuration (environment):
`

// Env is what a command runs with. main passes the process's own; the demo
// and the tests pass theirs, a fake clock included.
type Env struct {
	Environ        map[string]string
	Clock          clock.Clock // nil: the system clock
	Stdout, Stderr io.Writer
}

// Run runs one command, each a type of its own built from the
// configuration: watch (watch.go), check (check.go), status (status.go),
// extend (extend.go). Logs go to stdout, except for status and extend, whose
// output is for a person (or jq) and whose logs go to stderr.
func Run(ctx context.Context, args []string, env Env) error {
	stdout, stderr := env.Stdout, env.Stderr
	clk := env.Clock
	if clk == nil {
		clk = clock.System{}
	}
	cmd, args, err := parseCommand(args)
	if err != nil {
		return err
	}
	switch cmd {
	case "version":
		_, err := fmt.Fprintln(stdout, "bastion-ttl supervisor", buildinfo.Read())
		return err
	case "help":
		_, err := fmt.Fprint(stdout, usage, variables(), "\nhttps://github.com/bastion-ttl/bastion-ttl#readme\n")
		return err
	case "watch":
		w, err := newWatcher(env.Environ, clk, stdout)
		if err != nil {
			return err
		}
		// Only the sidecar outlives a moment: SIGTERM (ECS stopping the
		// task) and SIGINT end it cleanly. check dies by default on them.
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
		defer stop()
		return w.run(ctx)
	case "check":
		c, err := newChecker(env.Environ, clk, stdout)
		if err != nil {
			return err
		}
		return c.run(ctx)
	// status and extend print for a person (or jq): their logs go to
	// stderr, and they send no stop request.
	case "extend":
		e, err := newExtendCommand(env.Environ, stdout, stderr)
		if err != nil {
			return err
		}
		return e.run(ctx, args)
	default:
		s, err := newStatusCommand(env.Environ, clk, stdout, stderr)
		if err != nil {
			return err
		}
		return s.run(ctx, args)
	}
}

// parseCommand splits the command line into a command and its arguments.
func parseCommand(args []string) (cmd string, rest []string, err error) {
	cmd = "watch"
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "help", "-h", "--help":
		return "help", nil, nil
	case "version", "watch", "check":
		if len(rest) > 0 {
			return "", nil, usagef("%s takes no arguments, got %q", cmd, rest)
		}
	case "status", "extend":
	default:
		return "", nil, usagef("unknown command %q (use watch, check, status, extend or version)", cmd)
	}
	return cmd, rest, nil
}

// ExitCode maps Run's error to the exit code, printing it to stderr.
func ExitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "supervisor:", err)
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, envconfig.ErrInvalid) {
		return 2
	}
	return 1
}
