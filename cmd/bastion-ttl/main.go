// Command bastion-ttl starts, lists and stops bastions for the people who
// need into a VPC: bastion-ttl help lists its commands, bastion-ttl help
// COMMAND (or COMMAND -h) says one's usage and flags. Its logic is package
// launcher's.
//
// Exit codes: 0 done, 1 failed, 2 bad input (nothing started or stopped), 130 interrupted.
package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyendpoints "github.com/aws/smithy-go/endpoints"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/launcher"
)

func main() {
	// A kill or a closed terminal ends connect as Ctrl-C does: its sessions
	// terminated, --stop honoured.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err := launcher.Run(ctx, os.Args[1:], launcher.Env{
		Environ: envconfig.Environ(os.Environ()),
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		LoadAWS: loadAWS,
	})
	os.Exit(cli.ExitCode(err, os.Stderr, "bastion-ttl"))
}

// loadAWS gives env its AWS clients, for the commands that call AWS only:
// help, -h and version need no credentials or region.
func loadAWS(ctx context.Context, env *launcher.Env) error {
	// The SDK's whole chain: profiles, SSO, the environment.
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return cli.Usagef("AWS configuration: %v (check AWS_PROFILE and ~/.aws/config)", err)
	}
	if cfg.Region == "" {
		return cli.Usage("no AWS region: set AWS_REGION, or a region in your AWS profile")
	}
	cfg.Credentials = launcher.MarkCredentials(cfg.Credentials)
	wd, _ := os.Getwd()
	userDir, _ := os.UserConfigDir()
	home, _ := os.UserHomeDir()
	env.ECS = ecs.NewFromConfig(cfg)
	env.Stacks = cloudformation.NewFromConfig(cfg)
	env.Caller = sts.NewFromConfig(cfg)
	env.Ledger = dynamodb.NewFromConfig(cfg)
	env.Connect = launcher.ConnectEnv{
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
		Credentials:   cfg.Credentials,
		WorkDir:       wd,
		UserConfigDir: userDir,
		HomeDir:       home,
	}
	return nil
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
