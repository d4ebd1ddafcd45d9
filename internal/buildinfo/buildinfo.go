// Package buildinfo says which build is running: the version and commit a
// release stamps (-ldflags -X), else what the Go toolchain recorded (the
// module's version, vcs.revision), and the Go version.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by the release build:
//
//	-X github.com/bastion-ttl/bastion-ttl/internal/buildinfo.Version=v0.1.0
//	-X github.com/bastion-ttl/bastion-ttl/internal/buildinfo.Commit=<sha>
var (
	Version string
	Commit  string
)

// Info is a build's identity.
type Info struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Modified bool   `json:"modified,omitempty"` // built from a work tree with changes
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// Read returns the running build's Info. It parses the embedded build
// information: call it for the version command or at a cold start, not on
// a health check's path.
func Read() Info {
	i := Info{Version: Version, Commit: Commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version // go install ...@v0.1.0
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}

// Short is Version, or "dev": for a User-Agent, without reading the build
// information.
func Short() string {
	if Version == "" {
		return "dev"
	}
	return Version
}

func (i Info) String() string {
	commit := i.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if i.Modified {
		commit += "+changes"
	}
	return fmt.Sprintf("%s (commit %s, %s, %s)", i.Version, commit, i.Go, i.Platform)
}
