// Command session-manager-plugin is the tests' stand-in for AWS's plugin of
// that name (see package ssmplugin). Tests build it onto a PATH of their own.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ssmplugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(ssmplugin.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
