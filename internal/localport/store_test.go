package localport

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// readFile is path's ports, failing the test when it is not JSON.
func readPorts(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ports map[string]int
	if err := json.Unmarshal(data, &ports); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return ports
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestStatePath(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ map[string]string
		home    string
		want    string
	}{
		{"XDG_STATE_HOME", map[string]string{"XDG_STATE_HOME": "/x/state"}, "/home/u", "/x/state/bastion-ttl/ports.json"},
		{"relative XDG_STATE_HOME is ignored", map[string]string{"XDG_STATE_HOME": "state"}, "/home/u", "/home/u/.local/state/bastion-ttl/ports.json"},
		{"home", nil, "/home/u", "/home/u/.local/state/bastion-ttl/ports.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" {
				t.Skip("paths are Unix ones")
			}
			got, err := StatePath(tc.environ, tc.home)
			if err != nil || got != tc.want {
				t.Fatalf("%q %v, want %q", got, err, tc.want)
			}
		})
	}
	if got, err := StatePath(map[string]string{"XDG_STATE_HOME": "state"}, ""); err == nil || !strings.Contains(err.Error(), `XDG_STATE_HOME "state"`) {
		t.Fatalf("%q %v, want an error naming XDG_STATE_HOME", got, err)
	}
}

// Save keeps the keys of other connections, also those written since
// Load; it forgets a fixed one's key; the directory is 0700, the file
// 0600, and no temporary file is left.
func TestSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "bastion-ttl")
	path := filepath.Join(dir, "ports.json")
	if err := Save(path, []Want{{Name: "search", Key: "search"}}, []int{9200}); err != nil {
		t.Fatal(err)
	}
	wants := []Want{
		{Name: "orders-db", Key: "orders-db", Remote: 5432},
		{Name: "search", Key: "search", Fixed: 19200, Remote: 9200},
		{Key: KeyTo("db.internal:5432"), Remote: 5432},
	}
	mem, _ := Load(path)
	if mem.Ports["search"] != 9200 {
		t.Fatalf("loaded %v", mem.Ports)
	}
	// Another connect writes its port after this one's Load.
	if err := Save(path, []Want{{Name: "cache", Key: "cache"}}, []int{6379}); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, wants, []int{5432, 19200, 40001}); err != nil {
		t.Fatal(err)
	}
	got := readPorts(t, path)
	want := map[string]int{"orders-db": 5432, "cache": 6379, "to:db.internal:5432": 40001}
	if len(got) != len(want) {
		t.Fatalf("saved %v, want %v", got, want)
	}
	for k, p := range want {
		if got[k] != p {
			t.Fatalf("saved %v, want %v", got, want)
		}
	}
	if runtime.GOOS != "windows" {
		for p, mode := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
				t.Errorf("%s: %v %v, want mode %04o", p, fi.Mode(), err, mode)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left in %s: %v", dir, entries)
	}
}

// The file keeps at most MaxRemembered keys, this connect's among them.
func TestSaveCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ports.json")
	old := map[string]int{}
	for i := range MaxRemembered {
		old["c"+strconv.Itoa(i)] = 10000 + i
	}
	data, _ := json.Marshal(old)
	writeFile(t, path, string(data), 0o600)
	if err := Save(path, []Want{{Name: "a-new", Key: "a-new"}}, []int{5432}); err != nil {
		t.Fatal(err)
	}
	got := readPorts(t, path)
	if len(got) != MaxRemembered || got["a-new"] != 5432 {
		t.Fatalf("%d keys, a-new: %d; want %d keys with a-new: 5432", len(got), got["a-new"], MaxRemembered)
	}
}

// A state file others may write, or a symbolic link, is not read, a note
// says why, and Save leaves it as it is.
func TestLoadUntrusted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits or owners to judge")
	}
	const content = `{"orders-db": 15432}`
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, path string)
		note  string
	}{
		{"writable by others", func(t *testing.T, path string) { writeFile(t, path, content, 0o666) },
			"group or others may write it (mode 0666): chmod go-w "},
		{"symbolic link", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere.json")
			writeFile(t, target, content, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "it is a symbolic link"},
		{"not yours", func(t *testing.T, path string) {
			if os.Geteuid() != 0 {
				t.Skip("giving a file away needs root")
			}
			writeFile(t, path, content, 0o600)
			if err := os.Chown(path, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}, "it is not yours (owned by uid 4242, you are uid 0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ports.json")
			tc.plant(t, path)
			mem, note := Load(path)
			if len(mem.Ports) != 0 {
				t.Errorf("read %v from an untrusted file", mem.Ports)
			}
			if !strings.Contains(note, "not reading or writing remembered ports in "+path+": "+tc.note) {
				t.Errorf("note %q, want %q", note, tc.note)
			}
			before, _ := os.Lstat(path)
			if err := Save(path, []Want{{Name: "orders-db", Key: "orders-db"}}, []int{5432}); err != nil {
				t.Fatal(err)
			}
			after, _ := os.Lstat(path)
			if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("Save replaced the untrusted file")
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Errorf("Save wrote %q", data)
			}
		})
	}
}

// A malformed state file is ignored with a note, and replaced on Save.
func TestLoadMalformed(t *testing.T) {
	for _, tc := range []struct{ name, content, note string }{
		{"not JSON", "{orders-db: 5432", "it is not a JSON object of ports"},
		{"not a port", `{"orders-db": 70000}`, `"orders-db" has 70000, not a port (1-65535)`},
		{"a string", `{"orders-db": "5432"}`, "it is not a JSON object of ports"},
		{"too large", `{"orders-db": 5432}` + strings.Repeat(" ", maxFileSize), "it is larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ports.json")
			writeFile(t, path, tc.content, 0o600)
			mem, note := Load(path)
			if len(mem.Ports) != 0 || !strings.Contains(note, "ignoring remembered ports in "+path+": "+tc.note) || !strings.Contains(note, "the next connect writes it anew") {
				t.Fatalf("%v %q, want nothing and a note with %q", mem.Ports, note, tc.note)
			}
			if err := Save(path, []Want{{Name: "cache", Key: "cache"}}, []int{6379}); err != nil {
				t.Fatal(err)
			}
			if got := readPorts(t, path); len(got) != 1 || got["cache"] != 6379 {
				t.Fatalf("saved %v, want cache: 6379 alone", got)
			}
			if _, note := Load(path); note != "" {
				t.Fatalf("after Save: %q", note)
			}
		})
	}
}

// No file yet: nothing remembered, nothing to say.
func TestLoadMissing(t *testing.T) {
	mem, note := Load(filepath.Join(t.TempDir(), "none", "ports.json"))
	if len(mem.Ports) != 0 || note != "" {
		t.Fatalf("%v %q", mem.Ports, note)
	}
}
