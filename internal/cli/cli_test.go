package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// demo is a program of two commands and a default: greet takes a flag and
// arguments, flags after them too; count takes a duration from the
// environment.
func demo(environ map[string]string, ran *[]string) *Program {
	var name string
	var loud bool
	var every time.Duration
	return &Program{
		Name:    "demo",
		Default: "greet",
		Footer:  "exit codes: 0 fine, 2 bad input",
		Commands: []*Command{
			{
				Name: "greet", UsageLine: "greet [--loud] [NAME...]", Short: "say hello",
				Long: "Greet says hello to each NAME.",
				Flags: func(fs *flag.FlagSet) error {
					fs.BoolVar(&loud, "loud", false, "shout")
					fs.StringVar(&name, "from", "me", "who says it")
					return nil
				},
				Interspersed: true,
				Run: func(_ context.Context, args []string) error {
					*ran = append(*ran, fmt.Sprintf("greet loud=%t from=%s %q", loud, name, args))
					return nil
				},
			},
			{
				Name: "count", UsageLine: "count [--every D]", Short: "count up",
				Flags: func(fs *flag.FlagSet) error {
					fs.DurationVar(&every, "every", time.Second, "how often")
					if v, ok := environ["DEMO_EVERY"]; ok {
						d, err := time.ParseDuration(v)
						if err != nil {
							return fmt.Errorf("DEMO_EVERY %q is not a duration", v)
						}
						every = d
					}
					return nil
				},
				Run: func(_ context.Context, args []string) error {
					*ran = append(*ran, fmt.Sprintf("count every=%s %q", every, args))
					if len(args) > 0 {
						return Usagef("count takes no arguments, got %q", args)
					}
					return nil
				},
			},
			{
				Name: "exec", UsageLine: "exec [--loud] NAME... [-- PROGRAM ARGS...]", Short: "start a program",
				Flags: func(fs *flag.FlagSet) error {
					fs.BoolVar(&loud, "loud", false, "shout")
					return nil
				},
				Interspersed: true,
				RunWithRest: func(_ context.Context, args, rest []string) error {
					*ran = append(*ran, fmt.Sprintf("exec loud=%t %q %q", loud, args, rest))
					return nil
				},
			},
			{Name: "version", Short: "print the version", UsageLine: "version", Run: func(context.Context, []string) error {
				*ran = append(*ran, "version")
				return nil
			}},
		},
	}
}

func TestProgram(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ map[string]string
		args    []string
		code    int
		ran     string   // what ran, "" for nothing
		stdout  []string // in what help printed
		stderr  string   // in what the error says
	}{
		{name: "dispatch", args: []string{"count", "--every", "2m"}, ran: `count every=2m0s []`},
		{name: "default", args: nil, ran: `greet loud=false from=me []`},
		{name: "flags after arguments", args: []string{"greet", "ann", "--loud", "bob", "--from", "you"}, ran: `greet loud=true from=you ["ann" "bob"]`},
		{name: "-- ends the flags", args: []string{"greet", "ann", "--", "--loud"}, ran: `greet loud=false from=me ["ann" "--loud"]`},
		{name: "the rest after --, apart", args: []string{"exec", "a", "--loud", "b", "--", "psql", "--loud", "--", "x"}, ran: `exec loud=true ["a" "b"] ["psql" "--loud" "--" "x"]`},
		{name: "no rest", args: []string{"exec", "a"}, ran: `exec loud=false ["a"] []`},
		{name: "not interspersed", args: []string{"count", "x", "--every", "1m"}, code: 2, ran: `count every=1s ["x" "--every" "1m"]`, stderr: "count takes no arguments"},
		{name: "help", args: []string{"help"}, stdout: []string{"usage: demo <command>", "  greet    say hello (default)\n", "  count    count up\n", "  exec     start a program\n", "  version  print the version\n", "  help     print this", "exit codes: 0 fine"}},
		{name: "-h", args: []string{"-h"}, stdout: []string{"  count    count up\n"}},
		{name: "help CMD", args: []string{"help", "greet"}, stdout: []string{"usage: demo greet [--loud] [NAME...]\n\nGreet says hello to each NAME.\n\nflags:\n", "-loud", "shout", `who says it (default "me")`}},
		{name: "CMD -h", args: []string{"count", "-h"}, stdout: []string{"usage: demo count [--every D]\n", "-every duration", "(default 1s)"}},
		{name: "CMD --help after arguments", args: []string{"greet", "ann", "--help"}, stdout: []string{"usage: demo greet"}},
		{name: "CMD -h with a bad environment", environ: map[string]string{"DEMO_EVERY": "soon"}, args: []string{"count", "-h"}, stdout: []string{"usage: demo count"}},
		{name: "help of a command without flags", args: []string{"version", "-h"}, stdout: []string{"usage: demo version\n"}},
		{name: "unknown command", args: []string{"launch"}, code: 2, stderr: `demo: unknown command "launch": use greet, count, exec, version or help (demo help)`},
		{name: "help of an unknown command", args: []string{"help", "launch"}, code: 2, stderr: `unknown command "launch": use greet, count, exec, version or help`},
		{name: "help of two", args: []string{"help", "greet", "count"}, code: 2, stderr: "help takes one command"},
		{name: "bad flag", args: []string{"count", "--every", "soon"}, code: 2, stderr: `demo count: invalid value "soon" for flag -every: parse error (demo help count)`},
		{name: "unknown flag", args: []string{"greet", "--quiet"}, code: 2, stderr: "demo greet: flag provided but not defined: -quiet"},
		{name: "bad environment", environ: map[string]string{"DEMO_EVERY": "soon"}, args: []string{"count"}, code: 2, stderr: `DEMO_EVERY "soon" is not a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ran []string
			var stdout, stderr strings.Builder
			p := demo(tc.environ, &ran)
			p.Stdout = &stdout
			code := ExitCode(p.Run(context.Background(), tc.args), &stderr, "demo")
			if code != tc.code || strings.Join(ran, "; ") != tc.ran {
				t.Fatalf("exit %d, ran %q; want %d, %q\nstdout: %s\nstderr: %s", code, ran, tc.code, tc.ran, &stdout, &stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, &stdout)
				}
			}
			if len(tc.stdout) > 0 && stderr.Len() > 0 {
				t.Errorf("help wrote to stderr: %s", &stderr)
			}
			if !strings.Contains(stderr.String(), tc.stderr) || (tc.stderr == "") != (stderr.Len() == 0) {
				t.Errorf("stderr = %q, want %q", &stderr, tc.stderr)
			}
		})
	}
}

// Without a default command, none is bad input that lists the table.
func TestNoCommand(t *testing.T) {
	p := demo(nil, new([]string))
	p.Default = ""
	var stderr strings.Builder
	if code := ExitCode(p.Run(context.Background(), nil), &stderr, "demo"); code != 2 || !strings.Contains(stderr.String(), "no command: use greet, count, exec, version or help") {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
}

func TestExitError(t *testing.T) {
	sentinel := errors.New("interrupted")
	for _, tc := range []struct {
		name string
		err  error
		code int
		is   error
		text string
	}{
		{"nil", nil, 0, nil, ""},
		{"plain", errors.New("it failed"), 1, nil, "demo: it failed\n"},
		{"usage", Usage("bad input"), 2, nil, "demo: bad input\n"},
		{"a code of its own, wrapped", fmt.Errorf("run-task: %w", Exit(130, sentinel)), 130, sentinel, "demo: run-task: interrupted\n"},
		{"usage wrapping a sentinel", Usagef("config: %w", os.ErrNotExist), 2, os.ErrNotExist, "demo: config: file does not exist\n"},
		{"a client's code, passed on quietly", Pass(3), 3, nil, ""},
		{"a client's 0", Pass(0), 0, nil, ""},
		{"unsafe text", errors.New("line one\n\tcell \x1b]0;pwned\x07"), 1, nil, "demo: line one\n\tcell \\x1b]0;pwned\\x07\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			if code := ExitCode(tc.err, &stderr, "demo"); code != tc.code || stderr.String() != tc.text {
				t.Fatalf("exit %d, %q; want %d, %q", code, &stderr, tc.code, tc.text)
			}
			if tc.is != nil && !errors.Is(tc.err, tc.is) {
				t.Fatalf("errors.Is(%v, %v) is false", tc.err, tc.is)
			}
			if IsUsage(tc.err) != (tc.code == 2) {
				t.Fatalf("IsUsage = %t", IsUsage(tc.err))
			}
		})
	}
	if Exit(2, nil) != nil {
		t.Fatal("Exit(2, nil) is not nil")
	}
}
