package supervisor

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// A BASTION_CONTAINER the task does not have is a configuration error (exit
// 2) as soon as the metadata lists the task's containers, not a retry until
// the fail-safe.
func TestUnknownContainerExits2(t *testing.T) {
	t.Parallel()
	const want = `BASTION_CONTAINER="ssh": the task has no such container; it has: curl`
	t.Run("watch binary", func(t *testing.T) {
		t.Parallel()
		api := newAPIServer(t, 202)
		env := baseEnv(t, metadataServer(t, time.Now(), 1), api, "1h")
		env["BASTION_CONTAINER"] = "ssh"
		p := start(t, env, "watch")
		if code := p.Wait(t, 5*time.Second); code != 2 {
			t.Fatalf("exit %d, want 2:\n%s", code, p.Output())
		}
		if !strings.Contains(p.Output(), want) || len(api.Hits()) != 0 {
			t.Fatalf("%d stop requests; output lacks %q:\n%s", len(api.Hits()), want, p.Output())
		}
	})
	t.Run("status", func(t *testing.T) {
		t.Parallel()
		meta := metadataServer(t, time.Now(), 0)
		env := map[string]string{"ECS_CONTAINER_METADATA_URI_V4": meta.URL + "/v4/x", "BASTION_CONTAINER": "ssh"}
		var out, stderr bytes.Buffer
		err := Run(context.Background(), []string{"status"}, Env{Environ: env, Stdout: &out, Stderr: &stderr})
		if code := ExitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), want) {
			t.Fatalf("exit %d, err %v, stderr:\n%s", code, err, stderr.String())
		}
	})
}
