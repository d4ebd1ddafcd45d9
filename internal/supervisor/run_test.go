package supervisor

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, Env{Environ: nil, Stdout: &out, Stderr: &out}); err != nil ||
		!strings.HasPrefix(out.String(), "bastion-ttl supervisor dev (commit ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Fatalf("version = %q, %v", out.String(), err)
	}
}

// runCLI is the supervisor's stdout, stderr and exit code for args.
func runCLI(environ map[string]string, args ...string) (string, string, int) {
	var out, errs bytes.Buffer
	code := cli.ExitCode(Run(context.Background(), args, Env{Environ: environ, Stdout: &out, Stderr: &errs}), &errs, "supervisor")
	return out.String(), errs.String(), code
}

// One table gives help, help CMD, CMD -h and the unknown-command message.
func TestHelpListsEveryCommand(t *testing.T) {
	out, errs, code := runCLI(nil, "help")
	if code != 0 || errs != "" || !strings.Contains(out, "BASTION_TTL") || !strings.Contains(out, "2 bad configuration or usage") {
		t.Fatalf("help: exit %d, %q\n%s", code, errs, out)
	}
	var names []string
	for _, c := range commands(Env{}) {
		names = append(names, c.Name)
		if !strings.Contains(out, "\n  "+c.Name+" ") || !strings.Contains(out, c.Short) {
			t.Errorf("help lacks %s (%s):\n%s", c.Name, c.Short, out)
		}
		for _, args := range [][]string{{"help", c.Name}, {c.Name, "-h"}, {c.Name, "--help"}} {
			out, errs, code := runCLI(nil, args...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: supervisor "+c.UsageLine+"\n") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		}
	}
	if !strings.Contains(out, "sidecar: stop the task at its deadline (default)") {
		t.Errorf("help does not say watch is the default:\n%s", out)
	}
	want := `supervisor: unknown command "stop": use ` + strings.Join(names, ", ") + " or help (supervisor help)\n"
	if _, errs, code := runCLI(nil, "stop"); code != 2 || errs != want {
		t.Errorf("unknown command: exit %d, %q; want 2, %q", code, errs, want)
	}
	for _, args := range [][]string{{"check", "now"}, {"status", "--json", "--short"}, {"status", "--long"}, {"extend"}, {"extend", "30m", "1h"}, {"extend", "soon"}} {
		if _, errs, code := runCLI(nil, args...); code != 2 || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, %q; want 2 and one line", args, code, errs)
		}
	}
}

// Bad configuration is exit 2, and still envconfig.ErrInvalid.
func TestBadConfigurationExits2(t *testing.T) {
	err := Run(context.Background(), []string{"extend", "30m"}, Env{Environ: map[string]string{"BASTION_CONTROL_ADDR": "0.0.0.0:1"}})
	if !errors.Is(err, envconfig.ErrInvalid) || cli.ExitCode(err, new(bytes.Buffer), "supervisor") != 2 {
		t.Fatalf("%v: want envconfig.ErrInvalid, exit 2", err)
	}
}
