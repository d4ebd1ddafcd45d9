// Command terminate is the Lambda behind POST /terminate: it lets an ECS task
// stop itself, and nothing else. Build with -tags lambda.norpc as bootstrap
// for the provided.al2023 runtime.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/stophandler"
)

// settings is the function's configuration; README.md documents each variable.
type settings struct {
	AllowedClusters []string `env:"BASTION_ALLOWED_CLUSTERS,required,notEmpty"`
	TaskRoles       []string `env:"BASTION_TASK_ROLES,required,notEmpty"`
	RequireSelf     bool     `env:"BASTION_REQUIRE_SELF" envDefault:"true"`
	LogLevel        string   `env:"BASTION_LOG_LEVEL" envDefault:"info"`
	Region          string   `env:"AWS_REGION,required,notEmpty"`
}

func main() {
	svc, err := setup(context.Background(), envconfig.Environ(os.Environ()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "terminate:", err)
		os.Exit(2)
	}
	lambda.Start(svc.Handle)
}

func setup(ctx context.Context, environ map[string]string) (*stophandler.Service, error) {
	var s settings
	if err := envconfig.Parse(&s, environ); err != nil {
		return nil, err
	}
	allowed, err := stophandler.ParseAllowed(s.AllowedClusters)
	if err != nil || len(allowed) == 0 {
		return nil, envconfig.Invalid("BASTION_ALLOWED_CLUSTERS", environ["BASTION_ALLOWED_CLUSTERS"], "want comma-separated cluster names or ARNs")
	}
	roles, err := stophandler.ParseRoles(s.TaskRoles)
	if err != nil {
		return nil, envconfig.Invalid("BASTION_TASK_ROLES", environ["BASTION_TASK_ROLES"], "want comma-separated role names or role IDs (AROA...) of the bastion task roles: "+err.Error())
	}
	level, err := logging.Level(s.LogLevel)
	if err != nil {
		return nil, envconfig.Invalid("BASTION_LOG_LEVEL", s.LogLevel, "use debug, info, warn or error")
	}
	// The SDK's default chain: the function's role, and AWS_ENDPOINT_URL_ECS.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(s.Region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return &stophandler.Service{
		ECS:    ecs.NewFromConfig(awsCfg),
		Policy: stophandler.Policy{Roles: roles, RequireSelf: s.RequireSelf, Allowed: allowed},
		Region: s.Region,
		Log:    logging.New(os.Stdout, "json", level),
	}, nil
}
