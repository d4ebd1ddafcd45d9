// Command terminate is the Lambda behind POST /terminate and POST /extend,
// of the public HTTP API (payload 2.0) or the private REST API (1.0):
// it lets an ECS task stop itself or ask for more time up to a cap, and
// nothing else. Build with -tags lambda.norpc as bootstrap
// for the provided.al2023 runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/stophandler"
)

func main() {
	svc, err := setup(context.Background(), envconfig.Environ(os.Environ()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "terminate:", err)
		os.Exit(2)
	}
	b := buildinfo.Read()
	svc.Log.Info("starting", "version", b.Version, "commit", b.Commit, "go", b.Go, "sts", svc.Prover.Endpoint.String())
	stophandler.WarnRolesByName(svc.Log, svc.Policy)
	if svc.Prover.AcceptUnproven {
		svc.Log.Warn("BASTION_ACCEPT_UNPROVEN is on: requests without a proof of identity are let through on the event's identity; turn it off once every bastion runs a supervisor that sends one")
	}
	lambda.Start(svc.Invoke)
}

func setup(ctx context.Context, environ map[string]string) (*stophandler.Service, error) {
	cfg, err := stophandler.Load(environ)
	if err != nil {
		return nil, err
	}
	ledgerCfg, err := ledger.Load(environ)
	if err != nil {
		return nil, err
	}
	// The SDK's default chain: the function's role, and AWS_ENDPOINT_URL_ECS.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	svc := stophandler.New(cfg, ecs.NewFromConfig(awsCfg), logging.New(os.Stdout, "json", cfg.LogLevel))
	if ledgerCfg.Table != "" { // AWS_ENDPOINT_URL_DYNAMODB in tests
		store := ledger.NewStore(ledgerCfg, dynamodb.NewFromConfig(awsCfg), svc.Log)
		svc.Ledger, svc.UsageRecorder = store, store
	}
	return svc, nil
}
