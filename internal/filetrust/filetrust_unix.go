//go:build unix

package filetrust

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// Open opens path for reading, following a symbolic link, without
// blocking: a FIFO planted under the name would otherwise hang the caller
// before the file is judged.
func Open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// OpenNoFollow is Open refusing a final symbolic link, with an error that
// wraps ErrSymlink.
func OpenNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) && isSymlink(path) {
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrSymlink}
	}
	return f, err
}

// Check is nil for a file the user may trust, judged on fi from the opened
// file (so a file swapped in after a look is judged, not the one looked
// at); else an *Untrusted. The owner is judged before the mode.
func Check(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &Untrusted{Kind: OwnerUnknown}
	}
	if me := os.Geteuid(); int(st.Uid) != me {
		return &Untrusted{Kind: NotYours, Owner: int(st.Uid), User: me}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return &Untrusted{Kind: Writable, Perm: perm}
	}
	return nil
}

// Owned reports whether the user owns the file (a repository's .git, say).
func Owned(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
