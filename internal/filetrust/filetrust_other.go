//go:build !unix

package filetrust

import (
	"io/fs"
	"os"
)

// Open opens path for reading (there are no FIFOs to block on here).
func Open(path string) (*os.File, error) { return os.Open(path) }

// OpenNoFollow is Open refusing a symbolic link, judged before the open
// (there is no O_NOFOLLOW here), with an error that wraps ErrSymlink.
func OpenNoFollow(path string) (*os.File, error) {
	if isSymlink(path) {
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrSymlink}
	}
	return os.Open(path)
}

// Check is nil: Windows has no uid and mode bits to judge (its ACLs are not
// read here), so a caller must keep others' files out by where it looks.
func Check(fs.FileInfo) error { return nil }

// Owned cannot tell here, so it is false: a caller must not take a file
// that may be another user's for the user's own.
func Owned(fs.FileInfo) bool { return false }
