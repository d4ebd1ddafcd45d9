// Package supervisor is the supervisor command's implementation: it ends an
// ECS task when its time to live is up, as a sidecar (watch) or as the
// bastion container's health check (check). The supervisor binary's main
// only calls Run; the demo runs it in process.
// supervisor help lists its commands (watch is the default), supervisor
// help COMMAND says one's usage.
//
// Exit codes: 0 fine, 1 expired, unhealthy or fail-safe, 2 bad configuration or usage.
package supervisor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

var (
	errExpired  = errors.New("TTL expired")
	errFailSafe = errors.New("fail-safe exit")
)

// footer ends the help: the exit codes and the environment, since the
// image has no README.
const footer = `exit codes: 0 fine, 1 expired, unhealthy, refused or fail-safe, 2 bad configuration or usage

configuration (environment):
`

// Env is what a command runs with. main passes the process's own; the demo
// and the tests pass theirs, a fake clock included.
type Env struct {
	Environ        map[string]string
	Clock          clock.Clock // nil: the system clock
	Stdout, Stderr io.Writer
}

// Run runs one command of the table (commands), each a type of its own
// built from the configuration: watch (watch.go, the default), check
// (check.go), status (status.go), extend (extend.go), version. Logs go to
// stdout, except for status and extend, whose output is for a person (or
// jq) and whose logs go to stderr. Its error's exit code is cli.ExitCode's:
// 0 fine, 1 expired, unhealthy, refused or fail-safe, 2 bad configuration
// (envconfig.ErrInvalid) or usage.
func Run(ctx context.Context, args []string, env Env) error {
	if env.Clock == nil {
		env.Clock = clock.System{}
	}
	p := &cli.Program{Name: "supervisor", Commands: commands(env), Default: "watch", Stdout: env.Stdout,
		Footer: footer + variables() + "\nhttps://github.com/bastion-ttl/bastion-ttl#readme\n"}
	err := p.Run(ctx, args)
	if ee := (*cli.ExitError)(nil); errors.Is(err, envconfig.ErrInvalid) && !errors.As(err, &ee) {
		return cli.Exit(cli.UsageCode, err)
	}
	return err
}

// commands is the table: help lists them in this order.
func commands(env Env) []*cli.Command {
	var asJSON, short bool
	return []*cli.Command{{
		Name: "watch", UsageLine: "watch", Short: "sidecar: stop the task at its deadline",
		Long: `Watch runs as a sidecar: it stops the task at its deadline (start + TTL,
or sooner when idle), serves the control endpoint that status and extend
ask, and exits 1 (the fail-safe) when it cannot stop the task.`,
		Run: func(ctx context.Context, args []string) error {
			if err := noArgs("watch", args); err != nil {
				return err
			}
			w, err := newWatcher(env.Environ, env.Clock, env.Stdout)
			if err != nil {
				return err
			}
			// Only the sidecar outlives a moment: SIGTERM (ECS stopping the
			// task) and SIGINT end it cleanly. check dies by default on them.
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
			defer stop()
			return w.run(ctx)
		},
	}, {
		Name: "check", UsageLine: "check", Short: "health check: exit 0 before the deadline, stop the task and exit 1 after it",
		Long: `Check runs as the bastion container's health check: before the deadline it
exits 0; after it, it asks for the task to stop and exits 1.`,
		Run: func(ctx context.Context, args []string) error {
			if err := noArgs("check", args); err != nil {
				return err
			}
			c, err := newChecker(env.Environ, env.Clock, env.Stdout)
			if err != nil {
				return err
			}
			return c.run(ctx)
		},
	}, {
		// status and extend print for a person (or jq): their logs go to
		// stderr, and they send no stop request.
		Name: "status", UsageLine: "status [--json|--short]", Short: "print start, TTL, deadline and time left (asks the sidecar first)",
		Long: `Status prints the task's start, TTL, deadline and time left: the sidecar's
answer, else what the task metadata says.`,
		Flags: func(fs *flag.FlagSet) error {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.BoolVar(&short, "short", false, "print one line, for a prompt")
			return nil
		},
		Run: func(ctx context.Context, args []string) error {
			if len(args) > 0 || (asJSON && short) {
				return cli.Usagef("status takes only --json or --short, got %q", args)
			}
			s, err := newStatusCommand(env.Environ, env.Clock, env.Stdout, env.Stderr)
			if err != nil {
				return err
			}
			return s.run(ctx, asJSON, short)
		},
	}, {
		Name: "extend", UsageLine: "extend [--json] DURATION", Short: "ask the sidecar for DURATION more (at least 1m), up to the API's cap",
		Long: `Extend asks the sidecar for DURATION more time to live (at least 1m), up to
the most the API allows, and prints what it did.`,
		Flags: func(fs *flag.FlagSet) error {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			return nil
		},
		Interspersed: true, // extend 30m --json
		Run: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return cli.Usagef("extend takes [--json] and one duration, e.g. supervisor extend 30m; got %q", args)
			}
			e, err := newExtendCommand(env.Environ, env.Stdout, env.Stderr)
			if err != nil {
				return err
			}
			return e.run(ctx, args[0], asJSON)
		},
	}, {
		Name: "version", UsageLine: "version", Short: "print the version, commit and Go version",
		Run: func(_ context.Context, args []string) error {
			if err := noArgs("version", args); err != nil {
				return err
			}
			_, err := fmt.Fprintln(env.Stdout, "bastion-ttl supervisor", buildinfo.Read())
			return err
		},
	}}
}

func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("%s takes no arguments, got %q", cmd, args)
	}
	return nil
}
