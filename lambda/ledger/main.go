// Command ledger records every ECS Task State Change event of the stack's
// bastions in the ledger's DynamoDB table (package ledger), and judges each
// bastion once it has stopped. EventBridge invokes it. Build with -tags
// lambda.norpc as bootstrap for the provided.al2023 runtime.
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
)

func main() {
	rec, err := setup(context.Background(), envconfig.Environ(os.Environ()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledger:", err)
		os.Exit(2)
	}
	b := buildinfo.Read()
	rec.Log.Info("starting", "version", b.Version, "commit", b.Commit, "go", b.Go, "table", rec.Store.Table, "cluster", rec.Cluster)
	lambda.Start(rec.Handle)
}

func setup(ctx context.Context, environ map[string]string) (*ledger.Recorder, error) {
	cfg, err := ledger.LoadFunction(environ)
	if err != nil {
		return nil, err
	}
	// The SDK's default chain: the function's role, AWS_ENDPOINT_URL_ECS
	// and AWS_ENDPOINT_URL_DYNAMODB.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	log := logging.New(os.Stdout, "json", cfg.LogLevel)
	return &ledger.Recorder{
		Store:   ledger.NewStore(cfg.Config, dynamodb.NewFromConfig(awsCfg), log),
		ECS:     ecs.NewFromConfig(awsCfg),
		Cluster: cfg.Cluster,
		Region:  cfg.Region,
		Log:     log,
	}, nil
}
