package launcher

import (
	"errors"
	"fmt"
	"os"

	"github.com/bastion-ttl/bastion-ttl/internal/filetrust"
)

// openConfig opens a config file, following a symbolic link (what is
// judged is the file read), without blocking on a FIFO.
func openConfig(path string) (*os.File, error) { return filetrust.Open(path) }

// checkTrust is nil for a file the user may trust (filetrust.Check); else
// why not, with the fix: anyone who may write it may send the user's
// connections, and passwords, to a host of their choosing.
func checkTrust(path string, fi os.FileInfo) error {
	err := filetrust.Check(fi)
	var u *filetrust.Untrusted
	if !errors.As(err, &u) {
		return err
	}
	switch u.Kind {
	case filetrust.NotYours:
		return fmt.Errorf("%w: if it says what it should, copy it to a file of your own and pass --config", u)
	case filetrust.Writable:
		return fmt.Errorf("%w, and so send your connections elsewhere: chmod go-w %s", u, path)
	}
	return err
}

// ownedByUser reports whether the user owns the file (a repository's .git);
// where that cannot be told, a .git marks no repository's root, or one
// planted in a shared parent would make the search read its file.
func ownedByUser(fi os.FileInfo) bool { return filetrust.Owned(fi) }
