package buildinfo

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

func TestReadFallsBackToTheToolchain(t *testing.T) {
	Version, Commit = "", ""
	i := Read()
	if i.Version == "" || i.Commit == "" || i.Go != runtime.Version() || i.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("Read() = %+v", i)
	}
	Version, Commit = "v1.2.3", "0123456789abcdef0123456789abcdef01234567"
	defer func() { Version, Commit = "", "" }()
	i = Read()
	if i.Version != "v1.2.3" || !strings.HasPrefix(i.String(), "v1.2.3 (commit 0123456789ab") {
		t.Fatalf("stamped: %+v, %s", i, i)
	}
	if Short() != "v1.2.3" {
		t.Fatalf("Short() = %q", Short())
	}
}

// A binary built from this repository with the release's -ldflags says its
// version and commit.
func TestStampedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := t.TempDir() + "/supervisor"
	const pkg = "github.com/bastion-ttl/bastion-ttl/internal/buildinfo"
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X "+pkg+".Version=v9.9.9 -X "+pkg+".Commit=feedfacefeedfacefeedfacefeedfacefeedface", "-o", bin, "../../supervisor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "bastion-ttl supervisor v9.9.9 (commit feedfacefeed, "+runtime.Version()+", ") {
		t.Fatalf("supervisor version: %v\n%s", err, out)
	}
}
