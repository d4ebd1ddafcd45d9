package startcache

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

const src = "http://169.254.170.2/v4/abc/task\x00"

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func entry() Entry {
	return Entry{Source: src, TaskARN: "arn:aws:ecs:r:1:task/c/x", StartedAt: t0.Add(-time.Hour), CheckedAt: t0}
}

// openNew opens a new cache directory in a test's temporary directory.
func openNew(t *testing.T) *Dir {
	t.Helper()
	d, err := OpenDir(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// foreign is a uid other than the test's, for files another user owns.
func foreign(t *testing.T) int {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipped(t, "needs root to give a file to another user: run make test as root")
	}
	return 65534
}

func TestSaveLoad(t *testing.T) {
	d := openNew(t)
	if FileName(src) == FileName(src+"ssh") {
		t.Fatal("different sources share a file")
	}
	if _, err := d.Load(src); !errors.Is(err, ErrMissing) {
		t.Fatalf("Load of nothing = %v, want ErrMissing", err)
	}
	e := entry()
	e.Cluster = "c"
	if err := d.Save(e); err != nil {
		t.Fatal(err)
	}
	got, err := d.Load(src)
	if err != nil || got != e {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, e)
	}
	if _, err := d.Load("other source"); !errors.Is(err, ErrMissing) {
		t.Fatalf("other source: %v", err)
	}
	// Saving again replaces the entry and leaves no temporary file.
	e.StartedAt = e.StartedAt.Add(-time.Second)
	if err := d.Save(e); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Load(src); got != e {
		t.Fatalf("after a second Save: %+v", got)
	}
	names, _ := os.ReadDir(d.Path())
	if len(names) != 1 {
		t.Fatalf("directory holds %v", names)
	}
	if fi, _ := os.Stat(filepath.Join(d.Path(), FileName(src))); fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", fi.Mode())
	}
}

func TestLoadJunk(t *testing.T) {
	d := openNew(t)
	p := filepath.Join(d.Path(), FileName(src))
	for _, junk := range []string{"", "{", `{"source":"x"}`, `[]`} {
		_ = os.WriteFile(p, []byte(junk), 0o600)
		if e, err := d.Load(src); err == nil && e.Check(t0, time.Second) == nil {
			t.Fatalf("believed junk %q", junk)
		}
	}
	_ = os.WriteFile(p, []byte(`{"source":"`+strings.Repeat("x", maxFile)+`"}`), 0o600)
	if _, err := d.Load(src); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestOpenDir(t *testing.T) {
	t.Run("creates 0700 whatever the umask", func(t *testing.T) {
		old := syscall.Umask(0o277) // mkdir(0700) alone would give 0500
		defer syscall.Umask(old)
		p := filepath.Join(t.TempDir(), "cache")
		d, err := OpenDir(p)
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("created %v, %v", fi.Mode(), err)
		}
	})
	t.Run("reuses its own directory", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "cache")
		for range 2 {
			d, err := OpenDir(p)
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
		}
	})
	refused := map[string]func(t *testing.T, p string){
		"symlink to a 0700 directory": func(t *testing.T, p string) {
			real := filepath.Join(t.TempDir(), "real")
			must(t, os.Mkdir(real, 0o700))
			must(t, os.Symlink(real, p))
		},
		"dangling symlink": func(t *testing.T, p string) {
			must(t, os.Symlink(filepath.Join(t.TempDir(), "later"), p))
		},
		"group and world writable": func(t *testing.T, p string) {
			must(t, os.Mkdir(p, 0o700))
			must(t, os.Chmod(p, 0o777))
		},
		"readable by others": func(t *testing.T, p string) {
			must(t, os.Mkdir(p, 0o700))
			must(t, os.Chmod(p, 0o755))
		},
		"sticky": func(t *testing.T, p string) {
			must(t, os.Mkdir(p, 0o700))
			must(t, os.Chmod(p, 0o700|os.ModeSticky))
		},
		"a regular file": func(t *testing.T, p string) {
			must(t, os.WriteFile(p, nil, 0o600))
		},
		"another user's 0700 directory": func(t *testing.T, p string) {
			uid := foreign(t)
			must(t, os.Mkdir(p, 0o700))
			must(t, os.Chown(p, uid, uid))
		},
	}
	for name, plant := range refused {
		t.Run("refuses "+name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cache")
			plant(t, p)
			before, _ := os.Lstat(p)
			d, err := OpenDir(p)
			if !errors.Is(err, ErrUntrusted) {
				if d != nil {
					d.Close()
				}
				t.Fatalf("OpenDir = %v, want ErrUntrusted", err)
			}
			// It repaired nothing: what is not its own stays as it was.
			if after, err := os.Lstat(p); err != nil || after.Mode() != before.Mode() {
				t.Fatalf("mode %v became %v (%v)", before.Mode(), after.Mode(), err)
			}
		})
	}
}

func TestLoadRefusesFilesNotItsOwn(t *testing.T) {
	attacker := func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "planted.json")
		e := entry()
		e.StartedAt = t0 // a later start: postpones the deadline
		b := `{"source":"http://169.254.170.2/v4/abc/task\u0000","taskArn":"` + e.TaskARN + `","startedAt":"` + e.StartedAt.Format(time.RFC3339) + `","checkedAt":"` + t0.Format(time.RFC3339) + `"}`
		must(t, os.WriteFile(p, []byte(b), 0o644))
		return p
	}
	cases := map[string]func(t *testing.T, p string){
		"symlink to another file": func(t *testing.T, p string) { must(t, os.Symlink(attacker(t), p)) },
		"world-writable file":     func(t *testing.T, p string) { must(t, os.Rename(attacker(t), p)); must(t, os.Chmod(p, 0o666)) },
		"another user's file": func(t *testing.T, p string) {
			uid := foreign(t)
			must(t, os.Rename(attacker(t), p))
			must(t, os.Chown(p, uid, uid))
		},
		"directory": func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o700)) },
		"FIFO (must not block)": func(t *testing.T, p string) {
			must(t, syscall.Mkfifo(p, 0o600))
		},
	}
	for name, plant := range cases {
		t.Run(name, func(t *testing.T) {
			d := openNew(t)
			p := filepath.Join(d.Path(), FileName(src))
			plant(t, p)
			done := make(chan error, 1)
			go func() { _, err := d.Load(src); done <- err }()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, ErrMissing) {
					t.Fatalf("Load = %v, want a refusal", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Load blocked")
			}
		})
	}
	t.Run("Save replaces a planted symlink, never writes through it", func(t *testing.T) {
		d := openNew(t)
		target := attacker(t)
		before, _ := os.ReadFile(target)
		must(t, os.Symlink(target, filepath.Join(d.Path(), FileName(src))))
		if err := d.Save(entry()); err != nil {
			t.Fatal(err)
		}
		if after, _ := os.ReadFile(target); string(after) != string(before) {
			t.Fatal("Save wrote through the symlink")
		}
		if got, err := d.Load(src); err != nil || got != entry() {
			t.Fatalf("Load = %+v, %v", got, err)
		}
	})
}

func TestCheck(t *testing.T) {
	const bound = time.Second
	tests := []struct {
		name string
		edit func(e *Entry)
		want error
	}{
		{"fresh", func(e *Entry) {}, nil},
		{"confirmed just under MaxAge ago", func(e *Entry) { e.CheckedAt = t0.Add(-MaxAge + time.Nanosecond) }, nil},
		{"confirmed MaxAge ago", func(e *Entry) { e.CheckedAt = t0.Add(-MaxAge) }, ErrStale},
		{"start within the clock bound", func(e *Entry) { e.StartedAt = t0.Add(bound); e.CheckedAt = t0.Add(bound) }, nil},
		{"start in the future", func(e *Entry) { e.StartedAt = t0.Add(bound + time.Nanosecond); e.CheckedAt = e.StartedAt }, ErrImplausible},
		{"confirmed in the future", func(e *Entry) { e.CheckedAt = t0.Add(time.Hour) }, ErrImplausible},
		{"start later than its confirmation", func(e *Entry) { e.StartedAt = t0.Add(-time.Second); e.CheckedAt = t0.Add(-time.Minute / 2) }, ErrImplausible},
		{"no confirmation", func(e *Entry) { e.CheckedAt = time.Time{} }, ErrImplausible},
		{"no task", func(e *Entry) { e.TaskARN = "" }, ErrImplausible},
		{"no start", func(e *Entry) { e.StartedAt = time.Time{} }, ErrImplausible},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entry()
			tt.edit(&e)
			err := e.Check(t0, bound)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDirPath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	uid := "bastion-ttl-" + strconv.Itoa(os.Geteuid())
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "TMPDIR": "/x"}, "/run/user/1000/bastion-ttl"},
		{map[string]string{"TMPDIR": "/x/"}, "/x/" + uid},
		{map[string]string{}, "/tmp/" + uid},
	} {
		if got := DirPath(env(tt.env)); got != tt.want {
			t.Errorf("DirPath(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
