// Command sweep is the scheduled last line of defence: it stops every
// running task tagged bastion-ttl that is past its TTL + grace, in the
// allowed clusters. Build with -tags lambda.norpc as bootstrap for the
// provided.al2023 runtime.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/sweep"
)

// reserve is the time kept, before the function's deadline, to report.
const reserve = 3 * time.Second

func main() {
	sw, err := setup(context.Background(), envconfig.Environ(os.Environ()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		os.Exit(2)
	}
	b := buildinfo.Read()
	sw.Log.Info("starting", "version", b.Version, "commit", b.Commit, "go", b.Go)
	lambda.Start(func(ctx context.Context, _ events.EventBridgeEvent) (sweep.Report, error) {
		return sw.Run(ctx)
	})
}

func setup(ctx context.Context, environ map[string]string) (*sweep.Sweeper, error) {
	cfg, err := sweep.Load(environ)
	if err != nil {
		return nil, err
	}
	ledgerCfg, err := ledger.Load(environ)
	if err != nil {
		return nil, err
	}
	// The SDK's default chain (the function's role, AWS_ENDPOINT_URL_ECS),
	// with a retryer that rides out throttling within the run's deadline.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region),
		config.WithRetryer(func() aws.Retryer { return sweep.NewRetryer(8, 5*time.Second) }))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	sw := &sweep.Sweeper{
		ECS:      ecs.NewFromConfig(awsCfg),
		Clusters: cfg.Clusters,
		MaxTTL:   cfg.MaxTTL,
		Grace:    cfg.Grace,
		DryRun:   cfg.DryRun,
		Parallel: cfg.Parallel,
		Reserve:  reserve,
		Function: cfg.Function,
		Clock:    clock.System{},
		Log:      logging.New(os.Stdout, "json", cfg.LogLevel),
	}
	if ledgerCfg.Table != "" {
		sw.Ledger = ledger.NewStore(ledgerCfg, dynamodb.NewFromConfig(awsCfg), sw.Log)
	}
	return sw, nil
}
