// Package startcache keeps a task's start time in a small file between
// health checks, so that a check before the deadline reads the file instead of
// asking the metadata endpoint. A start time never changes once known, so the
// cache cannot make a deadline earlier; an entry for another source (another
// endpoint or container) or one that cannot be read is ignored.
package startcache

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"time"
)

// Entry is what is cached.
type Entry struct {
	Source    string    `json:"source"` // what the start was read from: the key
	TaskARN   string    `json:"taskArn"`
	Cluster   string    `json:"cluster,omitempty"`
	StartedAt time.Time `json:"startedAt"`
}

// Path is the cache file for source in dir.
func Path(dir, source string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(source))
	return filepath.Join(dir, fmt.Sprintf("bastion-ttl-start-%016x.json", h.Sum64()))
}

// Load reads the entry at path; ok is false unless it is complete and for source.
func Load(path, source string) (e Entry, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &e) != nil {
		return Entry{}, false
	}
	if e.Source != source || e.TaskARN == "" || e.StartedAt.IsZero() {
		return Entry{}, false
	}
	return e, true
}

// Save writes e to path atomically (a checker running at the same time reads
// either nothing or the whole entry).
func Save(path string, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bastion-ttl-start-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
