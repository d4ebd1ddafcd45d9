package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

func TestSetup(t *testing.T) {
	svc, err := setup(context.Background(), map[string]string{
		"BASTION_ALLOWED_CLUSTERS": "bastions, arn:aws:ecs:eu-west-1:123456789012:cluster/jump",
		"AWS_REGION":               "eu-west-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !svc.Policy.RequireSelf || len(svc.Policy.Allowed) != 2 || svc.Region != "eu-west-1" {
		t.Fatalf("service = %+v", svc)
	}
}

func TestSetupBadConfig(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		want string
	}{
		"no clusters":      {map[string]string{"AWS_REGION": "eu-west-1"}, "BASTION_ALLOWED_CLUSTERS"},
		"bad cluster":      {map[string]string{"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": "a/b"}, `BASTION_ALLOWED_CLUSTERS="a/b"`},
		"only commas":      {map[string]string{"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": ",,"}, "BASTION_ALLOWED_CLUSTERS"},
		"bad require self": {map[string]string{"AWS_REGION": "eu-west-1", "BASTION_ALLOWED_CLUSTERS": "x", "BASTION_REQUIRE_SELF": "sure"}, `BASTION_REQUIRE_SELF="sure"`},
		"no region":        {map[string]string{"BASTION_ALLOWED_CLUSTERS": "x"}, "AWS_REGION"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := setup(context.Background(), tt.env)
			if !errors.Is(err, envconfig.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
