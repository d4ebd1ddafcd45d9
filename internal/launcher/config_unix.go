//go:build unix

package launcher

import (
	"fmt"
	"os"
	"syscall"
)

// openConfig opens a config file without blocking: a FIFO planted under
// the name would otherwise hang connect before the file is judged.
func openConfig(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// checkTrust is nil for a file the user may trust as git trusts a
// repository: the user's own, and writable by no one else (anyone who may
// write it may send the user's connections, and passwords, to a host of
// their choosing).
func checkTrust(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("its owner cannot be told")
	}
	if me := os.Geteuid(); int(st.Uid) != me {
		return fmt.Errorf("not yours (owned by uid %d, you are uid %d): if it says what it should, copy it to a file of your own and pass --config", st.Uid, me)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("group or others may write it (mode %04o), and so send your connections elsewhere: chmod go-w %s", perm, path)
	}
	return nil
}

// ownedByUser reports whether the user owns the file (a repository's .git).
func ownedByUser(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
