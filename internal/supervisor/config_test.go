package supervisor

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
)

// Every bad input exits 2 with one line naming the variable and its value,
// and never leads to a stop request, although this task is long expired.
func TestBadInputExits2AndStopsNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  map[string]string
		args []string
		want string
	}{
		{"ttl abc", map[string]string{"BASTION_TTL": "abc"}, nil, `BASTION_TTL="abc"`},
		{"ttl negative", map[string]string{"BASTION_TTL": "-5m"}, nil, `BASTION_TTL="-5m"`},
		{"ttl zero", map[string]string{"BASTION_TTL": "0"}, nil, `BASTION_TTL="0"`},
		{"ttl years", map[string]string{"BASTION_TTL": "1y"}, nil, `BASTION_TTL="1y"`},
		{"ttl above the stack's cap", map[string]string{"BASTION_TTL": "3h", "BASTION_MAX_TTL": "2h"}, nil, `BASTION_TTL="3h": is above BASTION_MAX_TTL 2h0m0s`},
		{"ttl above the default cap", map[string]string{"BASTION_TTL": "13h"}, []string{"check"}, `BASTION_TTL="13h": is above BASTION_MAX_TTL 12h0m0s`},
		{"max ttl zero", map[string]string{"BASTION_MAX_TTL": "0"}, nil, `BASTION_MAX_TTL="0"`},
		{"url missing", map[string]string{"BASTION_TERMINATE_URL": ""}, nil, "BASTION_TERMINATE_URL: required"},
		{"url ftp", map[string]string{"BASTION_TERMINATE_URL": "ftp://example.com/terminate"}, nil, `BASTION_TERMINATE_URL="ftp://example.com/terminate"`},
		{"url http not loopback", map[string]string{"BASTION_TERMINATE_URL": "http://example.com/terminate"}, []string{"check"}, `BASTION_TERMINATE_URL="http://example.com/terminate"`},
		{"url not a url", map[string]string{"BASTION_TERMINATE_URL": "terminate please"}, nil, `BASTION_TERMINATE_URL="terminate please"`},
		{"grace bad", map[string]string{"BASTION_GRACE": "soon"}, nil, `BASTION_GRACE="soon"`},
		{"grace zero", map[string]string{"BASTION_GRACE": "0"}, nil, `BASTION_GRACE="0"`},
		{"grace too short", map[string]string{"BASTION_GRACE": "4s"}, []string{"check"}, `BASTION_GRACE="4s"`},
		{"fail-safe bad", map[string]string{"BASTION_FAILSAFE": "reboot"}, []string{"check"}, `BASTION_FAILSAFE="reboot"`},
		{"control address not loopback", map[string]string{"BASTION_CONTROL_ADDR": "0.0.0.0:8311"}, nil, `BASTION_CONTROL_ADDR="0.0.0.0:8311"`},
		{"control address loopback the endpoint does not answer as Host", map[string]string{"BASTION_CONTROL_ADDR": "127.0.0.2:8311"}, nil, `BASTION_CONTROL_ADDR="127.0.0.2:8311": not 127.0.0.1, localhost or [::1]`},
		{"control address no port", map[string]string{"BASTION_CONTROL_ADDR": "127.0.0.1"}, nil, `BASTION_CONTROL_ADDR="127.0.0.1"`},
		{"idle timeout negative", map[string]string{"BASTION_IDLE_TIMEOUT": "-1m"}, nil, `BASTION_IDLE_TIMEOUT="-1m"`},
		{"idle ports bad", map[string]string{"BASTION_IDLE_PORTS": "22,ssh"}, nil, `BASTION_IDLE_PORTS="22,ssh"`},
		{"warn before zero", map[string]string{"BASTION_WARN_BEFORE": "10m,0s"}, nil, `BASTION_WARN_BEFORE="10m,0s"`},
		{"url without path", map[string]string{"BASTION_TERMINATE_URL": "https://abc.execute-api.eu-west-1.amazonaws.com/"}, nil, `BASTION_TERMINATE_URL="https://abc.execute-api.eu-west-1.amazonaws.com/"`},
		{"extend url http not loopback", map[string]string{"BASTION_EXTEND_URL": "http://example.com/extend"}, nil, `BASTION_EXTEND_URL="http://example.com/extend"`},
		{"extend url in another region", map[string]string{"BASTION_EXTEND_URL": "https://abc.execute-api.us-east-1.amazonaws.com/extend"}, nil, `BASTION_EXTEND_URL="https://abc.execute-api.us-east-1.amazonaws.com/extend"`},
		{"dry run bad", map[string]string{"BASTION_DRY_RUN": "yes please"}, nil, `BASTION_DRY_RUN="yes please"`},
		{"log level bad", map[string]string{"BASTION_LOG_LEVEL": "loud"}, []string{"check"}, `BASTION_LOG_LEVEL="loud"`},
		{"no region", map[string]string{"AWS_REGION": ""}, nil, "AWS_REGION"},
		{"no credentials", map[string]string{"AWS_ACCESS_KEY_ID": ""}, nil, "AWS_ACCESS_KEY_ID"},
		{"unknown command", nil, []string{"destroy"}, `unknown command "destroy"`},
		{"extra argument", nil, []string{"check", "now"}, "check takes no arguments"},
		{"status bad flag", nil, []string{"status", "--yaml"}, "supervisor status: flag provided but not defined: -yaml (supervisor help status)"},
	}
	api := newAPIServer(t, 202)
	meta := metadataServer(t, time.Now().Add(-24*time.Hour), 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(t, meta, api, "10s")
			for k, v := range tt.set {
				env[k] = v
			}
			code, out := runOnce(t, env, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", code, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("output does not name %s:\n%s", tt.want, out)
			}
			if strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Fatalf("want one line:\n%s", out)
			}
		})
	}
	if n := len(api.Hits()); n != 0 {
		t.Fatalf("bad input led to %d stop requests", n)
	}
}

// A BASTION_CONTAINER the task does not have is a configuration error (exit
// 2) of every command that reads the start, as soon as the metadata lists
// the task's containers: not a retry until the fail-safe, and no stop
// request even past the deadline.
func TestUnknownContainerExits2(t *testing.T) {
	t.Parallel()
	const want = `BASTION_CONTAINER="ssh": the task has no such container; it has: curl`
	t.Run("watch binary", func(t *testing.T) {
		t.Parallel()
		api := newAPIServer(t, 202)
		env := baseEnv(t, metadataServer(t, time.Now(), 1), api, "1h")
		env["BASTION_CONTAINER"] = "ssh"
		p := start(t, env, "watch")
		if code := p.Wait(t, 5*time.Second); code != 2 {
			t.Fatalf("exit %d, want 2:\n%s", code, p.Output())
		}
		if !strings.Contains(p.Output(), want) || len(api.Hits()) != 0 {
			t.Fatalf("%d stop requests; output lacks %q:\n%s", len(api.Hits()), want, p.Output())
		}
	})
	t.Run("check binary, past the deadline", func(t *testing.T) {
		t.Parallel()
		api := newAPIServer(t, 202)
		env := baseEnv(t, metadataServer(t, time.Now().Add(-time.Hour), 0), api, "10s")
		env["BASTION_CONTAINER"] = "ssh"
		code, out := runOnce(t, env, "check")
		if code != 2 || !strings.Contains(out, want) || len(api.Hits()) != 0 {
			t.Fatalf("exit %d (want 2), %d stop requests; output lacks %q:\n%s", code, len(api.Hits()), want, out)
		}
	})
	t.Run("status", func(t *testing.T) {
		t.Parallel()
		meta := metadataServer(t, time.Now(), 0)
		env := map[string]string{"ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/x", "BASTION_CONTAINER": "ssh"}
		var out, stderr bytes.Buffer
		err := Run(context.Background(), []string{"status"}, Env{Environ: env, Stdout: &out, Stderr: &stderr})
		if code := cli.ExitCode(err, &stderr, "supervisor"); code != 2 || !strings.Contains(stderr.String(), want) {
			t.Fatalf("exit %d, err %v, stderr:\n%s", code, err, stderr.String())
		}
	})
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(map[string]string{"BASTION_DRY_RUN": "true"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.TTL != 30*time.Minute || c.Grace != 2*time.Minute || c.LogFormat != "json" || c.Container != "" || c.url != nil || c.FailSafe != "exit" || c.MaxTTL != 12*time.Hour {
		t.Fatalf("defaults = %+v", c)
	}
	c, err = loadConfig(map[string]string{"BASTION_TERMINATE_URL": "https://abc.execute-api.eu-west-1.amazonaws.com/prod/terminate"}, true)
	if err != nil || c.extendURL.String() != "https://abc.execute-api.eu-west-1.amazonaws.com/prod/extend" {
		t.Fatalf("extend URL beside the terminate URL: %v, %v", c.extendURL, err)
	}
	if _, err := loadConfig(map[string]string{}, false); err != nil {
		t.Fatalf("status needs no URL: %v", err)
	}
}

// The image has no README: --help lists every variable with its default,
// and the docs document each of them too.
func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, Env{Stdout: &out, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	docs, _ := os.ReadFile("../../README.md")
	more, _ := filepath.Glob("../../docs/*.md")
	for _, f := range more {
		b, _ := os.ReadFile(f)
		docs = append(docs, b...)
	}
	ty := reflect.TypeFor[config]()
	for i := range ty.NumField() {
		name := ty.Field(i).Tag.Get("env")
		if name == "" {
			continue
		}
		line := ""
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, name+" ") {
				line = l
			}
		}
		if def := ty.Field(i).Tag.Get("envDefault"); line == "" || (def != "" && !strings.Contains(line, " "+def+" ")) {
			t.Errorf("--help: %s with default %q missing: %q", name, def, line)
		}
		if !bytes.Contains(docs, []byte("`"+name+"`")) {
			t.Errorf("the docs do not document %s", name)
		}
	}
}

// The default of BASTION_CONTROL_ADDR is the contract's: the profile.d
// hook and the docs name that address.
func TestControlAddrDefaultIsTheContracts(t *testing.T) {
	f, _ := reflect.TypeFor[config]().FieldByName("ControlAddr")
	if got := f.Tag.Get("envDefault"); got != controlapi.DefaultAddr {
		t.Fatalf("BASTION_CONTROL_ADDR defaults to %q, the contract to %q", got, controlapi.DefaultAddr)
	}
}
