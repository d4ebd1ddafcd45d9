package supervisor

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, Env{Environ: nil, Stdout: &out, Stderr: &out}); err != nil ||
		!strings.HasPrefix(out.String(), "bastion-ttl supervisor dev (commit ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Fatalf("version = %q, %v", out.String(), err)
	}
}
