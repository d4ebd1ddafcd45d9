//go:build !linux

package startcache

import (
	"errors"
	"fmt"
)

// Off Linux there is no openat in package syscall: no cache, every check
// reads the metadata (the supervisor runs on Linux).

func openDir(path string) (*Dir, error) {
	return nil, fmt.Errorf("startcache: %s: %w", path, errors.ErrUnsupported)
}

func (d *Dir) close() error { d.fd = -1; return nil }

func (d *Dir) readFile(string) ([]byte, error) { return nil, errors.ErrUnsupported }

func (d *Dir) writeFile(string, []byte) error { return errors.ErrUnsupported }
