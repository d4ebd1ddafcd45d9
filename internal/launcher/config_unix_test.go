//go:build unix

package launcher

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// A config file is read only when it is the user's and no one else may
// write it, whichever way it was found; the refusal is one line naming the
// file and the fix. The rule's cases are filetrust's tests.
func TestConfigTrust(t *testing.T) {
	me := strconv.Itoa(os.Geteuid())
	for _, tc := range []struct {
		name  string
		mode  os.FileMode
		other bool   // owned by another user
		want  string // "" : read; else the refusal after "refused FILE: "
	}{
		{"yours, 0644", 0o644, false, ""},
		{"world-writable 0666", 0o666, false, "group or others may write it (mode 0666), and so send your connections elsewhere: chmod go-w FILE"},
		{"another user's, 0644", 0o644, true, "not yours (owned by uid 65534, you are uid " + me + "): if it says what it should, copy it to a file of your own and pass --config"},
	} {
		for _, how := range []string{"repository", "yours", "--config"} {
			t.Run(tc.name+", "+how, func(t *testing.T) {
				root := t.TempDir()
				ce := ConnectEnv{WorkDir: filepath.Join(root, "repo"), UserConfigDir: filepath.Join(root, "config")}
				if err := os.MkdirAll(filepath.Join(ce.WorkDir, ".git"), 0o755); err != nil {
					t.Fatal(err)
				}
				p, named := filepath.Join(ce.WorkDir, ConfigName), ""
				switch how {
				case "yours":
					p = filepath.Join(ce.UserConfigDir, "bastion-ttl", ConfigName)
				case "--config":
					p = filepath.Join(root, "team.yaml")
					named = p
				}
				writeFile(t, p, "connections:\n  orders-db:\n    to: orders.internal:5432\n")
				if err := os.Chmod(p, tc.mode); err != nil {
					t.Fatal(err)
				}
				if tc.other {
					testenv.ChownOrSkip(t, p)
				}
				fs, err := readConfigs(named, ce)
				if tc.want == "" {
					if c, _, _, ok := fs.connection("orders-db"); err != nil || !ok || c.To != "orders.internal:5432" {
						t.Fatalf("not read: %v", err)
					}
					return
				}
				want := "refused " + p + ": " + strings.ReplaceAll(tc.want, "FILE", p)
				if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") || exitCode(err, new(strings.Builder)) != 2 {
					t.Fatalf("%v; want one line, exit 2, starting %q", err, want)
				}
			})
		}
	}
}

// What is judged is the file read: a symlink's target, not the link; a
// FIFO is refused at once, not waited on; a .git of another user's marks
// no repository root (git refuses such a repository too), so the search
// goes on to the working directory alone.
func TestConfigTrustJudgesTheFileRead(t *testing.T) {
	t.Run("symlink to a 0666 file", func(t *testing.T) {
		root := t.TempDir()
		target := filepath.Join(root, "shared.yaml")
		writeFile(t, target, "connections: {}\n")
		if err := os.Chmod(target, 0o666); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "repo", ConfigName)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if _, err := readConfig(p, fromRepository); err == nil || !strings.Contains(err.Error(), "refused "+p+": group or others may write it (mode 0666)") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("symlink of another user's to your file", func(t *testing.T) {
		root := t.TempDir()
		target := filepath.Join(root, "mine.yaml")
		writeFile(t, target, "connections: {}\n")
		p := filepath.Join(root, ConfigName)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		testenv.ChownOrSkip(t, p)
		if _, err := readConfig(p, fromRepository); err != nil {
			t.Fatalf("your own file through a link: %v", err)
		}
	})
	t.Run("FIFO", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), ConfigName)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := readConfig(p, fromRepository); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "refused "+p+": not a regular file") {
				t.Fatalf("%v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("reading a FIFO hangs")
		}
	})
	t.Run(".git of another user's", func(t *testing.T) {
		root := t.TempDir()
		work := filepath.Join(root, "shared", "x")
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
		git := filepath.Join(root, "shared", ".git")
		if err := os.Mkdir(git, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "shared", ConfigName), "connections: {}\n")
		if got := findConfig(work, ""); got != filepath.Join(root, "shared", ConfigName) {
			t.Fatalf("a .git of your own: found %q, want the file at its root", got)
		}
		testenv.ChownOrSkip(t, git)
		if got := findConfig(work, ""); got != "" {
			t.Fatalf("a .git of another user's made its directory a root: found %q", got)
		}
	})
	t.Run("home through a symlink", func(t *testing.T) {
		root := t.TempDir()
		real := filepath.Join(root, "data", "me")
		if err := os.MkdirAll(filepath.Join(real, "notes"), 0o755); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(root, "home")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(real, ConfigName), "connections: {}\n")
		writeFile(t, filepath.Join(root, "data", ConfigName), "connections: {}\n")
		if got := findConfig(filepath.Join(real, "notes"), link); got != filepath.Join(real, ConfigName) {
			t.Fatalf("found %q, want home's, and nothing above it", got)
		}
	})
}
