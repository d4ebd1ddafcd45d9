// Command sweep is the scheduled last line of defence: it stops every
// running task tagged bastion-ttl that is past its TTL + grace, in the
// allowed clusters. Build with -tags lambda.norpc as bootstrap for the
// provided.al2023 runtime.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/sweep"
)

// settings is the function's configuration; README.md documents each variable.
type settings struct {
	AllowedClusters []string      `env:"BASTION_ALLOWED_CLUSTERS,required,notEmpty"`
	MaxTTL          time.Duration `env:"BASTION_MAX_TTL" envDefault:"12h"`
	Grace           time.Duration `env:"BASTION_GRACE" envDefault:"2m"`
	DryRun          bool          `env:"BASTION_SWEEP_DRY_RUN"`
	Parallel        int           `env:"BASTION_SWEEP_PARALLEL" envDefault:"10"`
	LogLevel        string        `env:"BASTION_LOG_LEVEL" envDefault:"info"`
	Region          string        `env:"AWS_REGION,required,notEmpty"`
}

// reserve is the time kept, before the function's deadline, to report.
const reserve = 3 * time.Second

func main() {
	sw, err := setup(context.Background(), envconfig.Environ(os.Environ()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		os.Exit(2)
	}
	lambda.Start(func(ctx context.Context, _ events.EventBridgeEvent) (sweep.Report, error) {
		return sw.Run(ctx)
	})
}

func setup(ctx context.Context, environ map[string]string) (*sweep.Sweeper, error) {
	var s settings
	if err := envconfig.Parse(&s, environ); err != nil {
		return nil, err
	}
	var clusters []string
	for _, c := range s.AllowedClusters {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if _, err := ecsarn.ParseCluster(c); err != nil {
			return nil, envconfig.Invalid("BASTION_ALLOWED_CLUSTERS", environ["BASTION_ALLOWED_CLUSTERS"], "want comma-separated cluster names or ARNs")
		}
		clusters = append(clusters, c)
	}
	if len(clusters) == 0 {
		return nil, envconfig.Invalid("BASTION_ALLOWED_CLUSTERS", environ["BASTION_ALLOWED_CLUSTERS"], "want comma-separated cluster names or ARNs")
	}
	if s.MaxTTL <= 0 {
		return nil, envconfig.Invalid("BASTION_MAX_TTL", environ["BASTION_MAX_TTL"], "must be greater than zero")
	}
	if s.Grace < 0 {
		return nil, envconfig.Invalid("BASTION_GRACE", environ["BASTION_GRACE"], "must not be negative")
	}
	if s.Parallel < 1 || s.Parallel > 100 {
		return nil, envconfig.Invalid("BASTION_SWEEP_PARALLEL", environ["BASTION_SWEEP_PARALLEL"], "must be between 1 and 100")
	}
	level, err := logging.Level(s.LogLevel)
	if err != nil {
		return nil, envconfig.Invalid("BASTION_LOG_LEVEL", s.LogLevel, "use debug, info, warn or error")
	}
	// The SDK's default chain (the function's role, AWS_ENDPOINT_URL_ECS),
	// with a retryer that rides out throttling within the run's deadline.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(s.Region),
		config.WithRetryer(func() aws.Retryer { return sweep.NewRetryer(8, 5*time.Second) }))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return &sweep.Sweeper{
		ECS:      ecs.NewFromConfig(awsCfg),
		Clusters: clusters,
		MaxTTL:   s.MaxTTL,
		Grace:    s.Grace,
		DryRun:   s.DryRun,
		Parallel: s.Parallel,
		Reserve:  reserve,
		Now:      time.Now,
		Log:      logging.New(os.Stdout, "json", level),
	}, nil
}
