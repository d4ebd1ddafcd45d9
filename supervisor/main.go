// Command supervisor ends an ECS task when its time to live is up. It runs as
// a sidecar (watch) or as the bastion container's health check (check).
// supervisor help lists its commands (watch is the default); supervisor
// help COMMAND says one's usage.
//
// Exit codes: 0 fine, 1 expired, unhealthy or fail-safe, 2 bad configuration or usage.
package main

import (
	"context"
	"os"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/supervisor"
)

// The version and commit are stamped into internal/buildinfo at build time.
func main() {
	err := supervisor.Run(context.Background(), os.Args[1:], supervisor.Env{
		Environ: envconfig.Environ(os.Environ()),
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
	})
	os.Exit(cli.ExitCode(err, os.Stderr, "supervisor"))
}
