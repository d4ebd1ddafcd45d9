package stophandler

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

// Every bad variable is named at once, not one per deploy.
func TestLoadReportsEveryBadVariable(t *testing.T) {
	_, err := Load(map[string]string{
		"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": "a/b",
		"BASTION_TASK_ROLES": "arn:aws:iam::123456789012:role/x", "BASTION_LOG_LEVEL": "loud",
	})
	if !errors.Is(err, envconfig.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{`BASTION_ALLOWED_CLUSTERS="a/b"`, `BASTION_TASK_ROLES="arn:aws:iam::123456789012:role/x"`, `BASTION_LOG_LEVEL="loud"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// Names in BASTION_TASK_ROLES still work (deployments made by hand), with
// one WARN at cold start naming them; unique IDs alone say nothing.
func TestWarnRolesByName(t *testing.T) {
	for _, tt := range []struct {
		roles, want string
	}{
		{"AROAZBASTIONTASKROLE1,ops-bastion-role,db@bastion", `"roles":"ops-bastion-role,db@bastion"`},
		{"AROAZBASTIONTASKROLE1,AROAEXAMPLEOPSBASTION1", ""},
	} {
		cfg, err := Load(map[string]string{"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": "bastions", "BASTION_TASK_ROLES": tt.roles})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		WarnRolesByName(slog.New(slog.NewJSONHandler(&buf, nil)), cfg.Policy)
		switch {
		case tt.want == "" && buf.Len() != 0:
			t.Errorf("%s: logged %s", tt.roles, buf.String())
		case tt.want != "" && (strings.Count(buf.String(), "\n") != 1 || !strings.Contains(buf.String(), `"level":"WARN"`) || !strings.Contains(buf.String(), tt.want) || !strings.Contains(buf.String(), "RoleId")):
			t.Errorf("%s: logged %q, want one WARN with %s", tt.roles, buf.String(), tt.want)
		}
	}
}

// New builds the Service from every setting of the configuration: what
// Load reads reaches the function, in its main and in the local stack.
func TestNewUsesTheWholeConfig(t *testing.T) {
	cfg, err := Load(map[string]string{
		"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": "bastions", "BASTION_TASK_ROLES": pinnedID,
		"BASTION_REQUIRE_SELF": "false", "BASTION_MAX_TTL": "3h", "BASTION_ACCOUNT_ID": "123456789012",
		"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9", "BASTION_ACCEPT_UNPROVEN": "true", "AWS_LAMBDA_FUNCTION_NAME": "fn",
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeECS{}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	s := New(cfg, f, log)
	if s.ECS != f || s.Log != log || s.Region != "eu-west-1" || s.Account != "123456789012" || s.MaxTTL != 3*time.Hour || s.Function != "fn" {
		t.Fatalf("service %+v", s)
	}
	if s.Policy.RequireSelf || !slices.Equal(s.Policy.Roles, []string{pinnedID}) || len(s.Policy.Allowed) != 1 {
		t.Fatalf("policy %+v", s.Policy)
	}
	if p := s.Prover; p.Endpoint.String() != "http://127.0.0.1:9" || p.Region != "eu-west-1" || !p.AcceptUnproven || p.Now == nil {
		t.Fatalf("prover %+v", p)
	}
}
