package supervisor

import (
	"strings"
	"testing"
	"time"
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
		{"status bad flag", nil, []string{"status", "--yaml"}, "status takes only --json or --short"},
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
