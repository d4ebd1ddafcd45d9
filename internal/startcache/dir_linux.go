package startcache

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
)

func openDir(path string) (*Dir, error) {
	// mkdir follows no symlink: if anything, a symlink too, is at path, it
	// fails with EEXIST and what is there is checked below.
	created := syscall.Mkdir(path, 0o700) == nil
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s is not a directory (a symlink?)", ErrUntrusted, path)
		}
		return nil, fmt.Errorf("startcache: open %s: %w", path, err)
	}
	d := &Dir{path: path, fd: fd}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		d.close()
		return nil, fmt.Errorf("startcache: stat %s: %w", path, err)
	}
	euid := uint32(os.Geteuid())
	if created && st.Uid == euid && st.Mode&0o7777 != 0o700 {
		// Made by this call, so empty: the umask (or a setgid parent) left
		// another mode; set the one wanted.
		if syscall.Fchmod(fd, 0o700) == nil {
			if err := syscall.Fstat(fd, &st); err != nil {
				d.close()
				return nil, fmt.Errorf("startcache: stat %s: %w", path, err)
			}
		}
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		err = fmt.Errorf("%w: %s is not a directory", ErrUntrusted, path)
	case st.Uid != euid:
		err = fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUntrusted, path, st.Uid, euid)
	case st.Mode&0o7777 != 0o700:
		err = fmt.Errorf("%w: %s has mode %#o, not 0700", ErrUntrusted, path, st.Mode&0o7777)
	}
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *Dir) close() error {
	if d.fd < 0 {
		return nil
	}
	err := syscall.Close(d.fd)
	d.fd = -1
	return err
}

// readFile reads name in d: without following a symlink, without blocking
// on a FIFO, and only if it is a regular file of the effective user's that
// no one else may write.
func (d *Dir) readFile(name string) ([]byte, error) {
	fd, err := syscall.Openat(d.fd, name, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return nil, fmt.Errorf("%w: %s", ErrMissing, name)
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("%w: %s is a symlink", ErrUntrusted, name)
	case err != nil:
		return nil, fmt.Errorf("startcache: open %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("startcache: stat %s: %w", name, err)
	}
	euid := uint32(os.Geteuid())
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrUntrusted, name)
	case st.Uid != euid:
		return nil, fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUntrusted, name, st.Uid, euid)
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("%w: %s has mode %#o: others may write it", ErrUntrusted, name, st.Mode&0o7777)
	case st.Size > maxFile:
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrUntrusted, name, st.Size)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("startcache: read %s: %w", name, err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrUntrusted, name, maxFile)
	}
	return b, nil
}

// writeFile writes b to a new file in d (O_EXCL, no symlink followed) and
// renames it over name, which replaces whatever name was, a symlink too,
// without following it.
func (d *Dir) writeFile(name string, b []byte) error {
	tmp := "." + name + "." + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
	fd, err := syscall.Openat(d.fd, tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("startcache: create %s: %w", tmp, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = syscall.Unlinkat(d.fd, tmp)
		return fmt.Errorf("startcache: write %s: %w", tmp, err)
	}
	if err := syscall.Renameat(d.fd, tmp, d.fd, name); err != nil {
		_ = syscall.Unlinkat(d.fd, tmp)
		return fmt.Errorf("startcache: rename to %s: %w", name, err)
	}
	return nil
}
