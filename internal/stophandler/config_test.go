package stophandler

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

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
