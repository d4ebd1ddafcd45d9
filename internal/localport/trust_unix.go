//go:build unix

package localport

import (
	"fmt"
	"os"
	"syscall"
)

// openState opens the state file for reading, refusing a symbolic link
// (ELOOP) and never blocking on a FIFO planted under its name.
func openState(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// distrust is "" for a file the user may trust as git trusts a repository:
// the user's own, and writable by no one else (who may write it chooses
// the ports the user's clients are sent to); else why not.
func distrust(path string, fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "its owner cannot be told"
	}
	if me := os.Geteuid(); int(st.Uid) != me {
		return fmt.Sprintf("it is not yours (owned by uid %d, you are uid %d): remove it, and connect remembers anew", st.Uid, me)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Sprintf("group or others may write it (mode %04o): chmod go-w %s", perm, path)
	}
	return ""
}
