// Command bastion-ttl starts, lists and stops bastions for the people who
// need into a VPC:
//
//	bastion-ttl run [--ttl 2h] [--idle 15m] [--cluster C] [--task-definition TD] ...
//	bastion-ttl ls [--json]
//	bastion-ttl stop TASK...
//
// Exit codes: 0 done, 1 failed, 2 bad input (nothing started or stopped), 130 interrupted.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

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
	return launcher.Run(ctx, args, launcher.Env{
		Environ: envconfig.Environ(os.Environ()),
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		ECS:     ecs.NewFromConfig(cfg),
		Stacks:  cloudformation.NewFromConfig(cfg),
		Caller:  sts.NewFromConfig(cfg),
	})
}
