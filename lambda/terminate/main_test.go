package main

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

func TestSetup(t *testing.T) {
	svc, err := setup(context.Background(), map[string]string{
		"BASTION_ALLOWED_CLUSTERS": "bastions, arn:aws:ecs:eu-west-1:123456789012:cluster/jump",
		"BASTION_TASK_ROLES":       "AROAZBASTIONTASKROLE1,ops-bastion-role",
		"AWS_REGION":               "eu-west-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !svc.Policy.RequireSelf || len(svc.Policy.Allowed) != 2 || len(svc.Policy.Roles) != 2 || svc.Region != "eu-west-1" {
		t.Fatalf("service = %+v", svc)
	}
}

func TestSetupBadConfig(t *testing.T) {
	base := map[string]string{"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": "bastions", "BASTION_TASK_ROLES": "AROAZBASTIONTASKROLE1"}
	tests := map[string]struct {
		key, value, want string
	}{
		"no clusters":             {"BASTION_ALLOWED_CLUSTERS", "", "BASTION_ALLOWED_CLUSTERS"},
		"bad cluster":             {"BASTION_ALLOWED_CLUSTERS", "a/b", `BASTION_ALLOWED_CLUSTERS="a/b"`},
		"only commas":             {"BASTION_ALLOWED_CLUSTERS", ",,", "BASTION_ALLOWED_CLUSTERS"},
		"no task roles":           {"BASTION_TASK_ROLES", "", "BASTION_TASK_ROLES"},
		"task roles commas":       {"BASTION_TASK_ROLES", " , ", "BASTION_TASK_ROLES"},
		"task role ARN":           {"BASTION_TASK_ROLES", "arn:aws:iam::123456789012:role/x", `BASTION_TASK_ROLES="arn:aws:iam::123456789012:role/x"`},
		"bad require self":        {"BASTION_REQUIRE_SELF", "sure", `BASTION_REQUIRE_SELF="sure"`},
		"no region":               {"AWS_REGION", "", "AWS_REGION"},
		"account not 12 digits":   {"BASTION_ACCOUNT_ID", "12345", `BASTION_ACCOUNT_ID="12345"`},
		"STS over http elsewhere": {"AWS_ENDPOINT_URL_STS", "http://sts.example.com", `AWS_ENDPOINT_URL_STS="http://sts.example.com"`},
		"STS with a path":         {"AWS_ENDPOINT_URL_STS", "https://sts.eu-west-1.amazonaws.com/x", "AWS_ENDPOINT_URL_STS"},
		"bad accept unproven":     {"BASTION_ACCEPT_UNPROVEN", "maybe", `BASTION_ACCEPT_UNPROVEN="maybe"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			env := maps.Clone(base)
			if tt.value == "" {
				delete(env, tt.key)
			} else {
				env[tt.key] = tt.value
			}
			_, err := setup(context.Background(), env)
			if !errors.Is(err, envconfig.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
