// Command taskroles is the template's custom resource that turns the
// stack's ExtraTaskRoleNames into the roles' unique IDs for the terminate
// function, and fails the deployment, naming the role, when a role's trust
// policy admits anything but ECS tasks. Build with -tags lambda.norpc as
// bootstrap for the provided.al2023 runtime.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/taskroles"
)

// reserve is the time kept, before the function's deadline, to answer
// CloudFormation: a request it never answers holds the stack for an hour.
const reserve = 5 * time.Second

func main() {
	h, err := setup(context.Background(), envconfig.Environ(os.Environ()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "taskroles:", err)
		os.Exit(2)
	}
	b := buildinfo.Read()
	h.Log.Info("starting", "version", b.Version, "commit", b.Commit, "go", b.Go)
	lambda.Start(h.Handle)
}

type settings struct {
	Region   string `env:"AWS_REGION,required,notEmpty"`
	LogLevel string `env:"BASTION_LOG_LEVEL" envDefault:"info"`
}

func setup(ctx context.Context, environ map[string]string) (*taskroles.Handler, error) {
	var s settings
	if err := envconfig.Parse(&s, environ); err != nil {
		return nil, err
	}
	level, err := logging.Level(s.LogLevel)
	if err != nil {
		return nil, envconfig.Invalid("BASTION_LOG_LEVEL", s.LogLevel, "use debug, info, warn or error")
	}
	// The SDK's default chain: the function's role, and AWS_ENDPOINT_URL_IAM.
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(s.Region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return &taskroles.Handler{
		IAM:     iam.NewFromConfig(awsCfg),
		HTTP:    taskroles.NewHTTPClient(),
		Reserve: reserve,
		// The function's GetRole grant is made just before its first run.
		Patience: 30 * time.Second,
		Log:      logging.New(os.Stdout, "json", level),
	}, nil
}
