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
	rec, err := setup(context.Background(), map[string]string{
		"LEDGER_TABLE": "bastion-ttl-LedgerTable-1", "BASTION_CLUSTER": "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions",
		"AWS_REGION": "eu-west-1", "BASTION_SWEEP_SCHEDULE": "rate(10 minutes)", "LEDGER_RETENTION_DAYS": "30",
	})
	if err != nil {
		t.Fatal(err)
	}
	p := rec.Store.Policy
	if rec.Cluster != "bastions" || rec.Store.Table != "bastion-ttl-LedgerTable-1" || p.SweepPeriod != 10*time.Minute ||
		p.Grace != 2*time.Minute || p.Retention != 30*24*time.Hour || p.SupervisorContainer != "supervisor" {
		t.Fatalf("recorder %+v, policy %+v", rec, p)
	}
}

func TestSetupBadConfig(t *testing.T) {
	base := map[string]string{"LEDGER_TABLE": "t", "BASTION_CLUSTER": "bastions", "AWS_REGION": "eu-west-1"}
	for name, tc := range map[string]struct{ variable, value string }{
		"no table":        {"LEDGER_TABLE", ""},
		"no cluster":      {"BASTION_CLUSTER", ""},
		"bad cluster":     {"BASTION_CLUSTER", "a/b"},
		"retention zero":  {"LEDGER_RETENTION_DAYS", "0"},
		"retention words": {"LEDGER_RETENTION_DAYS", "a year"},
		"bad schedule":    {"BASTION_SWEEP_SCHEDULE", "every 5 minutes"},
		"negative grace":  {"BASTION_GRACE", "-1m"},
		"bad log level":   {"BASTION_LOG_LEVEL", "loud"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		env[tc.variable] = tc.value
		_, err := setup(context.Background(), env)
		if !errors.Is(err, envconfig.ErrInvalid) || !strings.Contains(err.Error(), tc.variable) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.variable)
		}
	}
}
