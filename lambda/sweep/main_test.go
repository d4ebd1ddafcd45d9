package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

func TestSetup(t *testing.T) {
	sw, err := setup(context.Background(), map[string]string{
		"BASTION_ALLOWED_CLUSTERS": "bastions, arn:aws:ecs:eu-west-1:123456789012:cluster/jump",
		"BASTION_MAX_TTL":          "8h",
		"BASTION_SWEEP_DRY_RUN":    "true",
		"AWS_REGION":               "eu-west-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Clusters) != 2 || sw.Clusters[0] != "bastions" || sw.MaxTTL != 8*time.Hour ||
		sw.Grace != 2*time.Minute || !sw.DryRun || sw.Parallel != 10 || sw.Reserve != reserve {
		t.Fatalf("sweeper = %+v", sw)
	}
}

func TestSetupBadConfig(t *testing.T) {
	base := map[string]string{"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": "bastions"}
	tests := map[string]struct {
		name, value, want string
	}{
		"no clusters":    {"BASTION_ALLOWED_CLUSTERS", "", "BASTION_ALLOWED_CLUSTERS"},
		"bad cluster":    {"BASTION_ALLOWED_CLUSTERS", "a/b", `BASTION_ALLOWED_CLUSTERS="a/b"`},
		"only commas":    {"BASTION_ALLOWED_CLUSTERS", ",,", `BASTION_ALLOWED_CLUSTERS=",,"`},
		"max ttl abc":    {"BASTION_MAX_TTL", "abc", `BASTION_MAX_TTL="abc"`},
		"max ttl zero":   {"BASTION_MAX_TTL", "0", `BASTION_MAX_TTL="0"`},
		"max ttl 0s":     {"BASTION_MAX_TTL", "0s", `BASTION_MAX_TTL="0s"`},
		"max ttl minus":  {"BASTION_MAX_TTL", "-1h", `BASTION_MAX_TTL="-1h"`},
		"max ttl 1y":     {"BASTION_MAX_TTL", "1y", `BASTION_MAX_TTL="1y"`},
		"negative grace": {"BASTION_GRACE", "-1m", `BASTION_GRACE="-1m"`},
		"dry run maybe":  {"BASTION_SWEEP_DRY_RUN", "maybe", `BASTION_SWEEP_DRY_RUN="maybe"`},
		"parallel 0":     {"BASTION_SWEEP_PARALLEL", "0", `BASTION_SWEEP_PARALLEL="0"`},
		"parallel 1000":  {"BASTION_SWEEP_PARALLEL", "1000", `BASTION_SWEEP_PARALLEL="1000"`},
		"bad log level":  {"BASTION_LOG_LEVEL", "loud", `BASTION_LOG_LEVEL="loud"`},
		"no region":      {"AWS_REGION", "", "AWS_REGION"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			if tt.value == "" {
				delete(env, tt.name)
			} else {
				env[tt.name] = tt.value
			}
			_, err := setup(context.Background(), env)
			if !errors.Is(err, envconfig.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
