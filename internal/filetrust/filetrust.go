// Package filetrust judges a local file as git judges a repository: it is
// trusted when it is the user's own and writable by no one else (anyone who
// may write it may choose what the user's commands do with it).
package filetrust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrSymlink is why OpenNoFollow refuses a path: it names a symbolic link.
var ErrSymlink = errors.New("a symbolic link")

// Kind is what makes a file untrusted.
type Kind int

const (
	OwnerUnknown Kind = iota + 1 // the platform gave no owner to judge
	NotYours                     // another user owns it
	Writable                     // group or others may write it
)

// Untrusted is Check's error: why a file is not trusted. Its text is a
// phrase that a caller's note or error can include and add its own remedy
// to, e.g. "not yours (owned by uid 4242, you are uid 1000)".
type Untrusted struct {
	Kind  Kind
	Owner int         // the file's uid (NotYours)
	User  int         // the user's effective uid (NotYours)
	Perm  fs.FileMode // the file's permission bits (Writable)
}

func (u *Untrusted) Error() string {
	switch u.Kind {
	case NotYours:
		return fmt.Sprintf("not yours (owned by uid %d, you are uid %d)", u.Owner, u.User)
	case Writable:
		return fmt.Sprintf("group or others may write it (mode %04o)", u.Perm)
	}
	return "its owner cannot be told"
}

// isSymlink reports whether path is a symbolic link.
func isSymlink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}
