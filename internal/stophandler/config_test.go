package stophandler

import (
	"errors"
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
