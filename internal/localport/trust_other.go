//go:build !unix

package localport

import (
	"errors"
	"os"
)

// openState opens the state file for reading, refusing a symbolic link
// (judged before the open: there is no O_NOFOLLOW here).
func openState(path string) (*os.File, error) {
	if isSymlink(path) {
		return nil, errors.New("a symbolic link")
	}
	return os.Open(path)
}

// distrust: Windows has no uid and mode bits to judge (its ACLs are not
// read here); the state directory is the user's own.
func distrust(string, os.FileInfo) string { return "" }
