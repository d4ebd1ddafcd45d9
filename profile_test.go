package bastionttl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// examples/profile.d/bastion-ttl.sh: the login banner and the prompt, with
// a stand-in supervisor that answers `status --short` as the real one does.
func TestProfileBannerAndPrompt(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	stub := "#!/bin/sh\n[ \"$1 $2\" = \"status --short\" ] && echo '1h2m3s left, stops at 12:00:01Z (ttl)'\n"
	if err := os.WriteFile(filepath.Join(bin, "supervisor"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "-i", "-c",
		`. examples/profile.d/bastion-ttl.sh; eval "$PROMPT_COMMAND"; echo "prompt: ${PS1@P}"`)
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "TERM=dumb"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"bastion-ttl: 1h2m3s left, stops at 12:00:01Z (ttl)\n", "prompt: [1h2m3s left] "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
