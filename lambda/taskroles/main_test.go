package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

func TestSetup(t *testing.T) {
	h, err := setup(context.Background(), map[string]string{"AWS_REGION": "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if h.IAM == nil || h.HTTP == nil || h.HTTP.Timeout == 0 || h.Reserve != reserve {
		t.Fatalf("handler = %+v", h)
	}
}

func TestSetupBadConfig(t *testing.T) {
	for name, tt := range map[string]struct {
		environ map[string]string
		want    string
	}{
		"no region":     {map[string]string{}, "AWS_REGION"},
		"bad log level": {map[string]string{"AWS_REGION": "eu-west-1", "BASTION_LOG_LEVEL": "loud"}, `BASTION_LOG_LEVEL="loud"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := setup(context.Background(), tt.environ)
			if !errors.Is(err, envconfig.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}
