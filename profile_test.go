package bastionttl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// examples/profile.d/bastion-ttl.sh: the login banner and the prompt, with
// a stand-in supervisor that answers `status --short` as the real one does
// (internal/supervisor tests its lines), far from the deadline and within
// the warning.
func TestProfileBannerAndPrompt(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		testenv.Skipped(t, "bash not found; install it with: apt-get install bash")
	}
	bin := t.TempDir()
	stub := "#!/bin/sh\n[ \"$1 $2\" = \"status --short\" ] && echo \"$SHORT\"\n"
	if err := os.WriteFile(filepath.Join(bin, "supervisor"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	for short, tc := range map[string]struct{ want, not []string }{
		"1h2m3s left, stops at 12:00:01Z (ttl)": {
			want: []string{"bastion-ttl: 1h2m3s left, stops at 12:00:01Z (ttl)\n", `"supervisor extend 30m" asks for more time`, "prompt: [1h2m3s left] "},
			not:  []string{"***", "\a"},
		},
		"deadline unknown: no sidecar answers at 127.0.0.1:8311, and BASTION_TTL is not set here": {
			want: []string{"bastion-ttl: deadline unknown: no sidecar answers at 127.0.0.1:8311, and BASTION_TTL is not set here; this bastion still stops at its TTL\n",
				"prompt: [deadline unknown] "},
			not: []string{"***", "\a", " left"},
		},
		"WARNING: 8m20s left, stops at 12:00:01Z (idle)": {
			want: []string{"\a*** bastion-ttl: WARNING: 8m20s left, stops at 12:00:01Z (idle); \"supervisor extend 30m\" for more\n", "prompt: [8m20s left] "},
		},
	} {
		cmd := exec.Command(bash, "--norc", "--noprofile", "-i", "-c",
			`. examples/profile.d/bastion-ttl.sh; eval "$PROMPT_COMMAND"; echo "prompt: ${PS1@P}"`)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "TERM=dumb", "SHORT=" + short}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range tc.want {
			if !strings.Contains(string(out), want) {
				t.Errorf("%q: output lacks %q:\n%s", short, want, out)
			}
		}
		for _, not := range tc.not {
			if strings.Contains(string(out), not) {
				t.Errorf("%q: output has %q:\n%s", short, not, out)
			}
		}
	}
}
