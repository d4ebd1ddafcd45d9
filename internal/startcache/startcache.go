// Package startcache keeps a task's start time between health checks, so that
// a check well before the deadline reads a small file instead of asking the
// metadata endpoint.
//
// The cache must not let anyone on the box move the deadline: the people on
// a bastion are the ones its TTL is there to end, and a start time they
// could write would postpone it:
//
//   - It lives in a directory of the process's own (Dir): created with mode
//     0700 by mkdir, which follows no symlink, then opened without following
//     one and checked through the open descriptor: a directory, owned by the
//     effective user, mode exactly 0700. Anything else (another user's
//     directory, a symlink, a wider mode) is refused, and the caller falls
//     back to the metadata endpoint. Files are opened relative to that
//     descriptor, without following symlinks, and must be regular files
//     owned by the same user and writable by no one else; writes are
//     atomic (a new file renamed over the old).
//   - An entry is believed only while Check passes: its start is not later
//     than now (plus the clock error bound) nor than the time the metadata
//     confirmed it, and it was confirmed less than MaxAge ago.
//
// The caller must not act on a cached start (stop the task) without reading
// the metadata again: the cache may say "not yet", never "now". (A record
// the caller keeps across a container restart is believed only when the
// metadata it has just read shows the restart and bounds the record.)
//
// Another user on the box can therefore neither write an entry nor make the
// process read one of theirs; at most they can pre-create the directory's
// path so that the cache is not used (every check then reads the metadata).
// The same user can write entries: one that postpones the deadline is
// believed for at most MaxAge after the time it claims to have been
// confirmed, and that user could as well kill the process or the container.
package startcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// MaxAge is how long an entry is believed after the metadata confirmed it.
const MaxAge = time.Minute

// maxFile bounds a cache file read; an entry is a few hundred bytes.
const maxFile = 4096

// Errors of Dir and Entry.Check; callers treat any as "not cached".
var (
	ErrUntrusted   = errors.New("startcache: untrusted")
	ErrMissing     = errors.New("startcache: no entry")
	ErrStale       = errors.New("startcache: entry not confirmed recently")
	ErrImplausible = errors.New("startcache: implausible entry")
)

// Entry is what is cached.
type Entry struct {
	Source    string    `json:"source"` // what the start was read from: the key
	TaskARN   string    `json:"taskArn"`
	Cluster   string    `json:"cluster,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// CheckedAt is when the metadata last gave StartedAt.
	CheckedAt time.Time `json:"checkedAt"`
}

// Check returns nil if e may be believed at now: its start is not later than
// now + clockError nor than CheckedAt + clockError, CheckedAt is not later
// than now + clockError, and now is less than MaxAge after CheckedAt.
func (e Entry) Check(now time.Time, clockError time.Duration) error {
	switch {
	case e.TaskARN == "" || e.StartedAt.IsZero() || e.CheckedAt.IsZero():
		return fmt.Errorf("%w: incomplete", ErrImplausible)
	case e.StartedAt.After(now.Add(clockError)):
		return fmt.Errorf("%w: start %s is in the future", ErrImplausible, e.StartedAt.UTC().Format(time.RFC3339Nano))
	case e.CheckedAt.After(now.Add(clockError)):
		return fmt.Errorf("%w: confirmed in the future (%s)", ErrImplausible, e.CheckedAt.UTC().Format(time.RFC3339Nano))
	case e.StartedAt.After(e.CheckedAt.Add(clockError)):
		return fmt.Errorf("%w: start %s is later than its confirmation", ErrImplausible, e.StartedAt.UTC().Format(time.RFC3339Nano))
	case now.Sub(e.CheckedAt) >= MaxAge:
		return fmt.Errorf("%w: confirmed %s ago", ErrStale, now.Sub(e.CheckedAt).Round(time.Second))
	}
	return nil
}

// DirPath is the cache directory for getenv's environment:
// $XDG_RUNTIME_DIR/bastion-ttl when that is set, else
// $TMPDIR/bastion-ttl-<uid> (/tmp when TMPDIR is not set), uid being the
// effective user's.
func DirPath(getenv func(string) string) string {
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "bastion-ttl")
	}
	tmp := getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "bastion-ttl-"+strconv.Itoa(os.Geteuid()))
}

// FileName is the name of source's entry in a Dir.
func FileName(source string) string {
	sum := sha256.Sum256([]byte(source))
	return "start-" + hex.EncodeToString(sum[:12]) + ".json"
}

// Dir is an open, checked cache directory.
type Dir struct {
	path string
	fd   int
}

// OpenDir creates the directory at path (mode 0700) unless it exists, opens
// it without following a symlink, and checks it (a directory, owned by the
// effective user, mode exactly 0700). Its errors wrap ErrUntrusted when the
// directory is not the process's own, errors.ErrUnsupported off Linux.
func OpenDir(path string) (*Dir, error) { return openDir(path) }

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// Close closes the directory.
func (d *Dir) Close() error { return d.close() }

// Load reads source's entry. Its errors wrap ErrMissing when there is none
// and ErrUntrusted when the file is not the process's own regular file; it
// does not Check the entry.
func (d *Dir) Load(source string) (Entry, error) {
	b, err := d.readFile(FileName(source))
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrImplausible, err)
	}
	if e.Source != source {
		return Entry{}, fmt.Errorf("%w: entry for another source", ErrMissing)
	}
	return e, nil
}

// Save writes e atomically: a checker running at the same time reads either
// the old entry or the whole new one.
func (d *Dir) Save(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return d.writeFile(FileName(e.Source), b)
}
