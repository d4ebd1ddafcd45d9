package testenv

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
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

// LaunchMoto starts moto_server (bin) with its output to out, and returns
// its base URL and a stop function; task states are frozen (FreezeTasks).
func LaunchMoto(bin string, out io.Writer) (string, func(), error) {
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	var seen Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&seen, out), io.MultiWriter(&seen, out)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if url := motoListening.FindString(seen.String()); url != "" {
			if err := FreezeTasks(url); err != nil {
				stop()
				return "", nil, err
			}
			return url, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("moto_server did not listen within 30s: %s", tail(seen.String(), 3000))
}

// FreezeTasks makes moto keep each task's state (it otherwise advances a
// task one step at every DescribeTasks).
func FreezeTasks(url string) error {
	resp, err := http.Post(url+"/moto-api/state-manager/set-transition", "application/json",
		strings.NewReader(`{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000000}}`))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("moto set-transition: %s", resp.Status)
	}
	return nil
}

// LaunchLambda runs bootstrap under the emulator rie with exactly env, its
// output to out, and returns its invoke URL once it listens, and a stop
// function.
func LaunchLambda(rie, bootstrap string, env map[string]string, out io.Writer) (string, func(), error) {
	cmd, addr, err := EmulatorCommand(rie, bootstrap, env)
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return InvokeURL(addr), stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("the emulator did not listen on %s within 15s", addr)
}

// BuildBootstrap builds ./<pkg> of the module at moduleRoot as a Linux
// bootstrap for this machine's architecture, into out, as the Makefile
// does for deployment (there for arm64).
func BuildBootstrap(moduleRoot, pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out, "./"+pkg)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
