//go:build unix

package filetrust

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// file is a new file of content with mode (past the umask), in its own
// directory.
func file(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// A file is trusted when it is the user's and no one else may write it;
// the owner is judged first, and the error's text is the phrase callers
// include.
func TestCheck(t *testing.T) {
	me := strconv.Itoa(os.Geteuid())
	for _, tc := range []struct {
		name  string
		mode  os.FileMode
		other bool // owned by another user
		kind  Kind // 0: trusted
		want  string
	}{
		{"yours, 0644", 0o644, false, 0, ""},
		{"yours, 0600", 0o600, false, 0, ""},
		{"yours, 0444", 0o444, false, 0, ""},
		{"yours, 0755", 0o755, false, 0, ""},
		{"world-writable 0666", 0o666, false, Writable, "group or others may write it (mode 0666)"},
		{"group-writable 0664", 0o664, false, Writable, "group or others may write it (mode 0664)"},
		{"others-writable 0646", 0o646, false, Writable, "group or others may write it (mode 0646)"},
		{"group-writable only 0020", 0o020, false, Writable, "group or others may write it (mode 0020)"},
		{"another user's, 0644", 0o644, true, NotYours, "not yours (owned by uid 65534, you are uid " + me + ")"},
		{"another user's, 0666", 0o666, true, NotYours, "not yours (owned by uid 65534, you are uid " + me + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := file(t, "x", tc.mode)
			if tc.other {
				testenv.ChownOrSkip(t, p)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			err = Check(fi)
			if tc.kind == 0 {
				if err != nil {
					t.Fatalf("not trusted: %v", err)
				}
				return
			}
			var u *Untrusted
			if !errors.As(err, &u) || u.Kind != tc.kind || err.Error() != tc.want {
				t.Fatalf("%v (%#v); want kind %d, %q", err, u, tc.kind, tc.want)
			}
		})
	}
}

// fakeInfo is a FileInfo with no owner to read, as a filesystem may give.
type fakeInfo struct{ fs.FileInfo }

func (fakeInfo) Sys() any          { return nil }
func (fakeInfo) Mode() fs.FileMode { return 0o600 }

// A FileInfo without an owner is neither trusted nor the user's.
func TestOwnerUnknown(t *testing.T) {
	var u *Untrusted
	if err := Check(fakeInfo{}); !errors.As(err, &u) || u.Kind != OwnerUnknown || err.Error() != "its owner cannot be told" {
		t.Fatalf("%v", err)
	}
	if Owned(fakeInfo{}) {
		t.Fatal("owned")
	}
}

// Owned is the owner alone (a .git directory's mode is no concern), and
// judges what it is given: a link's own owner from Lstat.
func TestOwned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".git")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil || !Owned(fi) {
		t.Fatalf("your own directory: %v, not owned", err)
	}
	testenv.ChownOrSkip(t, dir)
	if fi, err = os.Lstat(dir); err != nil || Owned(fi) {
		t.Fatalf("another user's directory: %v, owned", err)
	}
}

// opened reads what open gives for path, failing if it takes long: a
// FIFO must not block the open.
func opened(t *testing.T, open func(string) (*os.File, error), path string) (string, error) {
	t.Helper()
	type result struct {
		data string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		f, err := open(path)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			done <- result{err: errors.New("not a regular file")}
			return
		}
		b, err := io.ReadAll(f)
		done <- result{string(b), err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("opening %s hangs", path)
		return "", nil
	}
}

// Open follows a symbolic link, OpenNoFollow refuses a final one (even a
// dangling one, which is not "missing") but follows one higher in the
// path; neither blocks on a FIFO.
func TestOpen(t *testing.T) {
	root := t.TempDir()
	target := file(t, "target", 0o600)
	link := filepath.Join(root, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(root, "dangling")
	if err := os.Symlink(filepath.Join(root, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(root, "dir")
	if err := os.Symlink(filepath.Dir(target), dirLink); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "missing")
	throughDir := filepath.Join(dirLink, filepath.Base(target))

	for _, tc := range []struct {
		path         string
		open, noFoll error // nil: reads "target" (or a FIFO: opens)
	}{
		{target, nil, nil},
		{link, nil, ErrSymlink},
		{dangling, fs.ErrNotExist, ErrSymlink},
		{throughDir, nil, nil},
		{missing, fs.ErrNotExist, fs.ErrNotExist},
	} {
		for name, c := range map[string]struct {
			open func(string) (*os.File, error)
			want error
		}{"Open": {Open, tc.open}, "OpenNoFollow": {OpenNoFollow, tc.noFoll}} {
			data, err := opened(t, c.open, tc.path)
			if c.want == nil && (err != nil || data != "target") || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("%s(%s): %q, %v; want %v", name, tc.path, data, err, c.want)
			}
		}
	}
	for name, open := range map[string]func(string) (*os.File, error){"Open": Open, "OpenNoFollow": OpenNoFollow} {
		if _, err := opened(t, open, fifo); err == nil || err.Error() != "not a regular file" {
			t.Errorf("%s(FIFO): %v", name, err)
		}
	}
	if _, err := OpenNoFollow(link); err == nil || err.Error() != "open "+link+": a symbolic link" {
		t.Errorf("OpenNoFollow's error: %v", err)
	}
}
