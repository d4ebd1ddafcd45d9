package localport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/bastion-ttl/bastion-ttl/internal/filetrust"
)

// MaxRemembered is the most keys the state file keeps: the wants of the
// connect that writes it, then others in key order.
const MaxRemembered = 1000

// maxFileSize bounds a read of the state file: MaxRemembered keys fit.
const maxFileSize = 1 << 20

// Memory is the ports remembered by earlier connects.
type Memory struct {
	Path  string         // the state file, named in errors
	Ports map[string]int // Want.Key → its port
}

// StatePath is where the ports are remembered:
// $XDG_STATE_HOME/bastion-ttl/ports.json, else
// HOME/.local/state/bastion-ttl/ports.json. A relative XDG_STATE_HOME is
// ignored, as the XDG spec asks.
func StatePath(environ map[string]string, home string) (string, error) {
	if d := environ["XDG_STATE_HOME"]; filepath.IsAbs(d) {
		return filepath.Join(d, "bastion-ttl", "ports.json"), nil
	}
	if filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "bastion-ttl", "ports.json"), nil
	}
	return "", fmt.Errorf("no place to remember local ports: XDG_STATE_HOME %q and the home directory %q are not absolute paths", environ["XDG_STATE_HOME"], home)
}

// Load is the ports remembered in path. A missing file remembers nothing.
// A file not trusted as git trusts a repository (the user's own, writable
// by no one else, not a symbolic link) is not read, and Save leaves it; a
// malformed one is ignored, and Save replaces it. Either way note says so,
// for the caller to print; "" when all is well.
func Load(path string) (m Memory, note string) {
	ports, state, why := read(path)
	switch state {
	case untrusted:
		note = fmt.Sprintf("not reading or writing remembered ports in %s: %s", path, why)
	case malformed:
		note = fmt.Sprintf("ignoring remembered ports in %s: %s; the next connect writes it anew", path, why)
	}
	return Memory{Path: path, Ports: ports}, note
}

type fileState int

const (
	fine fileState = iota // read, or missing
	untrusted
	malformed
)

// read is path's ports (never nil), and why not when state is not fine.
func read(path string) (map[string]int, fileState, string) {
	ports := map[string]int{}
	f, err := filetrust.OpenNoFollow(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ports, fine, ""
	}
	if errors.Is(err, filetrust.ErrSymlink) {
		return ports, untrusted, "it is a symbolic link: remove it, and connect remembers anew"
	}
	if err != nil {
		return ports, untrusted, fmt.Sprintf("it cannot be read (%v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ports, malformed, fmt.Sprintf("it cannot be read (%v)", err)
	}
	if !fi.Mode().IsRegular() {
		return ports, untrusted, fmt.Sprintf("it is not a regular file (%v)", fi.Mode().Type())
	}
	if why := distrust(path, fi); why != "" {
		return ports, untrusted, why
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return ports, malformed, fmt.Sprintf("it cannot be read (%v)", err)
	}
	if len(data) > maxFileSize {
		return ports, malformed, fmt.Sprintf("it is larger than %d bytes", maxFileSize)
	}
	if err := json.Unmarshal(data, &ports); err != nil {
		return map[string]int{}, malformed, fmt.Sprintf("it is not a JSON object of ports (%v)", err)
	}
	for k, p := range ports {
		if p < 1 || p > 65535 {
			return map[string]int{}, malformed, fmt.Sprintf("%q has %d, not a port (1-65535)", k, p)
		}
	}
	return ports, fine, ""
}

// Save remembers ports[i] for each wants[i] without Fixed, and forgets the
// Key of one with Fixed (a connect without it then picks anew), keeping
// the other keys of the file as it is now (another connect may have
// written it since Load). It writes atomically (a temporary file in the
// same directory, renamed), the directory 0700 and the file 0600, and
// leaves an untrusted file as it is.
func Save(path string, wants []Want, ports []int) error {
	if len(ports) != len(wants) {
		return fmt.Errorf("localport: save %d ports for %d wants", len(ports), len(wants))
	}
	was, state, _ := read(path)
	if state == untrusted {
		return nil
	}
	now := maps.Clone(was)
	mine := map[string]bool{}
	for i, w := range wants {
		if w.Key == "" || mine[w.Key] { // the first want of a Key is the one Choose looked up
			continue
		}
		mine[w.Key] = true
		if w.Fixed != 0 {
			delete(now, w.Key)
		} else {
			now[w.Key] = ports[i]
		}
	}
	if state == fine && maps.Equal(was, now) {
		return nil
	}
	if extra := len(now) - MaxRemembered; extra > 0 {
		for _, k := range slices.Sorted(maps.Keys(now)) {
			if extra == 0 {
				break
			}
			if !mine[k] {
				delete(now, k)
				extra--
			}
		}
	}
	data, err := json.MarshalIndent(now, "", "  ")
	if err != nil {
		return fmt.Errorf("remember local ports in %s: %w", path, err)
	}
	if err := writeAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("remember local ports in %s: %w", path, err)
	}
	return nil
}

// writeAtomic replaces path with data: readers see the old file or the
// new one, never a part.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".ports-*.json") // mode 0600
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, bytes.NewReader(data))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// distrust is "" for a file the user may trust (filetrust.Check); else why
// not, with the fix: who may write it chooses the ports the user's clients
// are sent to.
func distrust(path string, fi os.FileInfo) string {
	err := filetrust.Check(fi)
	var u *filetrust.Untrusted
	if !errors.As(err, &u) {
		return ""
	}
	switch u.Kind {
	case filetrust.NotYours:
		return fmt.Sprintf("it is %v: remove it, and connect remembers anew", u)
	case filetrust.Writable:
		return fmt.Sprintf("%v: chmod go-w %s", u, path)
	}
	return u.Error()
}
