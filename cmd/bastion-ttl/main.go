// Command bastion-ttl starts, lists and stops bastions for the people who
// need into a VPC:
//
//	bastion-ttl run [--ttl 2h] [--idle 15m] [--cluster C] [--task-definition TD] ...
//	bastion-ttl ls [--json]
//	bastion-ttl stop TASK...
//	bastion-ttl connect [NAME] [--to HOST:PORT] [--local-port N] [--shell] [--stop]
//
// Exit codes: 0 done, 1 failed, 2 bad input (nothing started or stopped), 130 interrupted.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyendpoints "github.com/aws/smithy-go/endpoints"

	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/launcher"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(launcher.ExitCode(run(ctx), os.Stderr))
}

func run(ctx context.Context) error {
	args := os.Args[1:]
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "version" {
		return launcher.Run(ctx, args, launcher.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	}
	// The SDK's whole chain: profiles, SSO, the environment.
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return launcher.Usage(fmt.Sprintf("AWS configuration: %v (check AWS_PROFILE and ~/.aws/config)", err))
	}
	if cfg.Region == "" {
		return launcher.Usage("no AWS region: set AWS_REGION, or a region in your AWS profile")
	}
	wd, _ := os.Getwd()
	userDir, _ := os.UserConfigDir()
	home, _ := os.UserHomeDir()
	return launcher.Run(ctx, args, launcher.Env{
		Environ: envconfig.Environ(os.Environ()),
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		ECS:     ecs.NewFromConfig(cfg),
		Stacks:  cloudformation.NewFromConfig(cfg),
		Caller:  sts.NewFromConfig(cfg),
		Connect: launcher.ConnectEnv{
			SSM:     ssm.NewFromConfig(cfg),
			Region:  cfg.Region,
			Profile: os.Getenv("AWS_PROFILE"),
			// The endpoints the session-manager-plugin is handed, as the AWS CLI hands them.
			SSMEndpoint: endpoint(ctx, cfg, "SSM", func(p *string) (string, error) {
				return resolved(ssm.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, ssm.EndpointParameters{Region: p}))
			}),
			ECSEndpoint: endpoint(ctx, cfg, "ECS", func(p *string) (string, error) {
				return resolved(ecs.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, ecs.EndpointParameters{Region: p}))
			}),
			Stdin:         os.Stdin,
			WorkDir:       wd,
			UserConfigDir: userDir,
			HomeDir:       home,
		},
	})
}

// endpoint is a service's URL: AWS_ENDPOINT_URL_<SERVICE>, else the
// configuration's base endpoint, else the region's.
func endpoint(_ context.Context, cfg aws.Config, service string, resolve func(*string) (string, error)) string {
	if u := os.Getenv("AWS_ENDPOINT_URL_" + service); u != "" {
		return u
	}
	if cfg.BaseEndpoint != nil {
		return *cfg.BaseEndpoint
	}
	u, err := resolve(aws.String(cfg.Region))
	if err != nil {
		return "https://" + strings.ToLower(service) + "." + cfg.Region + ".amazonaws.com"
	}
	return u
}

func resolved(e smithyendpoints.Endpoint, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return e.URI.String(), nil
}
