package launcher

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// One table gives help, help CMD, CMD -h and the unknown-command message:
// each command of it is listed, and says its usage on stdout with exit 0,
// with no AWS at all (LoadAWS fails the test if called).
func TestHelpListsEveryCommand(t *testing.T) {
	noAWS := func(context.Context, *Env) error {
		t.Error("AWS was loaded for help")
		return errors.New("no AWS")
	}
	env := Env{Environ: map[string]string{}, LoadAWS: noAWS}
	out, errs, code := runCLI(env, "help")
	if code != 0 || errs != "" {
		t.Fatalf("help: exit %d, %s", code, errs)
	}
	table := commands(&env)
	var names []string
	for _, c := range table {
		names = append(names, c.Name)
		if !strings.Contains(out, "\n  "+c.Name+" ") || !strings.Contains(out, c.Short) {
			t.Errorf("help lacks %s (%s):\n%s", c.Name, c.Short, out)
		}
		for _, args := range [][]string{{"help", c.Name}, {c.Name, "-h"}, {c.Name, "--help"}} {
			out, errs, code := runCLI(env, args...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: bastion-ttl "+c.UsageLine+"\n") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		}
	}
	if !strings.Contains(out, "Every command but version takes --stack NAME") || !strings.Contains(out, "130 interrupted") {
		t.Errorf("help lacks what every command shares:\n%s", out)
	}
	want := `bastion-ttl: unknown command "launch": use ` + strings.Join(names, ", ") + " or help (bastion-ttl help)\n"
	if _, errs, code := runCLI(env, "launch"); code != 2 || errs != want {
		t.Errorf("unknown command: exit %d, %q; want 2, %q", code, errs, want)
	}
	if out, errs, code := runCLI(env, "version"); code != 0 || !strings.HasPrefix(out, "bastion-ttl dev") {
		t.Errorf("version: exit %d, %q %q", code, out, errs)
	}
}

// run -h says run's usage and its flags, typed: not an error.
func TestRunHelp(t *testing.T) {
	out, errs, code := runCLI(Env{Environ: map[string]string{}}, "run", "-h")
	if code != 0 || errs != "" || strings.Contains(out, "bastion-ttl: ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, want := range []string{"usage: bastion-ttl run [--ttl 2h]", "-ttl duration", "(default 2h0m0s)", "-max-ttl value", "-idle value", "-stack string", "-wait"} {
		if !strings.Contains(out, want) {
			t.Errorf("run -h lacks %q:\n%s", want, out)
		}
	}
}

// A duration flag, or its variable, that does not parse is bad input that
// names it and its value, before anything calls AWS.
func TestBadDuration(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ map[string]string
		args    []string
		want    string
	}{
		{"--ttl", nil, []string{"run", "--ttl", "forever"}, `bastion-ttl run: invalid value "forever" for flag -ttl: parse error (bastion-ttl help run)`},
		{"--idle", nil, []string{"connect", "db", "--idle", "soon"}, `bastion-ttl connect: invalid value "soon" for flag -idle: not a duration such as 15m or 2h`},
		{"--max-ttl", nil, []string{"run", "--max-ttl", "12"}, `invalid value "12" for flag -max-ttl`},
		{"BASTION_MAX_TTL", map[string]string{"BASTION_MAX_TTL": "12 hours"}, []string{"connect"}, `BASTION_MAX_TTL "12 hours" is not a duration such as 15m or 2h`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := Env{Environ: tc.environ, LoadAWS: func(context.Context, *Env) error {
				t.Error("AWS was loaded")
				return errors.New("no AWS")
			}}
			_, errs, code := runCLI(env, tc.args...)
			if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
				t.Fatalf("exit %d, %q; want 2 and one line with %q", code, errs, tc.want)
			}
		})
	}
}
