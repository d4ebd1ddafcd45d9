package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The error-returning core, shared by the tests (through the testing.TB
// wrappers Need, FreeAddr and StartLambda) and by make bench.

// FindTool returns the path of tool: on PATH, else in GOPATH/bin (where
// make tools installs).
func FindTool(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", tool)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in GOPATH/bin", tool)
}

// FreePort returns a free 127.0.0.1:port.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// EmulatorCommand is the command that runs bootstrap under the Runtime
// Interface Emulator rie with exactly env, and the address it will serve
// the Lambda invoke API at (InvokeURL).
func EmulatorCommand(rie, bootstrap string, env map[string]string) (*exec.Cmd, string, error) {
	addr, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	apiAddr, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, bootstrap)
	cmd.Env = []string{} // exactly env: a nil Env would inherit this process's (its AWS credentials)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd, addr, nil
}

// InvokeURL is the emulator's invoke URL when it serves at addr.
func InvokeURL(addr string) string {
	return "http://" + addr + "/2015-03-31/functions/function/invocations"
}

// ModuleRoot is the root of the module the working directory is in (the
// directory of the nearest go.mod above it): a test runs in its package's
// directory, and support code called from any package finds the
// repository's files from here.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}
