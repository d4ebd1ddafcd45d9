package testenv

import (
	"os"
	"testing"
)

// Nobody is the uid (and gid) ChownOrSkip gives a file: another user's.
const Nobody = 65534

// ChownOrSkip makes path (a link itself, not its target) another user's.
// Only root can; as root the test must run, so a failure fails it.
func ChownOrSkip(t testing.TB, path string) {
	t.Helper()
	if err := os.Lchown(path, Nobody, Nobody); err != nil {
		if os.Geteuid() == 0 {
			t.Fatalf("root cannot chown %s to uid %d: %v", path, Nobody, err)
		}
		Skipped(t, "only root can make a file of another user's here: "+err.Error())
	}
}
