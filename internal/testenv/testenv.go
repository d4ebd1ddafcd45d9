// Package testenv starts the real tools that integration tests run against:
// moto_server (the ECS API) and the AWS Lambda Runtime Interface Emulator.
// Where a tool is missing, a test skips with a loud message; with
// BASTION_TEST_STRICT=1 (set by .ci/run) it fails instead.
package testenv

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// StrictVar names the variable that forbids skipping.
const StrictVar = "BASTION_TEST_STRICT"

// Need returns the path of tool, or skips (fails when strict) the test.
func Need(t testing.TB, tool, install string) string {
	t.Helper()
	if p, err := exec.LookPath(tool); err == nil {
		return p
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", tool)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("\n*** %s not found: SKIPPING this integration test. Install it with: %s ***\n", tool, install)
	if os.Getenv(StrictVar) == "1" {
		t.Fatalf("%s%s=1 forbids skipping", msg, StrictVar)
	}
	fmt.Fprint(os.Stderr, msg)
	t.Skip(msg)
	return ""
}

// FreeAddr returns a free 127.0.0.1:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is a started tool whose output is kept for failure reports.
type Process struct {
	Cmd *exec.Cmd
	out *Buffer
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

func start(t testing.TB, name string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(name, args...), out: &Buffer{}}
	p.Cmd.Env = env
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		_ = p.Cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), tail(p.out.String(), 6000))
		}
	})
	return p
}

func waitTCP(t testing.TB, addr string, within time.Duration, p *Process) {
	t.Helper()
	end := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not listen on %s within %v:\n%s", p.Cmd.Path, addr, within, tail(p.Output(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Moto starts moto_server and returns its base URL. Task states are frozen
// (moto otherwise advances a task one step at every DescribeTasks).
func Moto(t testing.TB) string {
	t.Helper()
	bin := Need(t, "moto_server", "pip install 'moto[server]==5.2.1'")
	addr := FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	p := start(t, bin, os.Environ(), "-H", host, "-p", port)
	waitTCP(t, addr, 30*time.Second, p)
	url := "http://" + addr
	resp, err := http.Post(url+"/moto-api/state-manager/set-transition", "application/json",
		strings.NewReader(`{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000000}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("moto set-transition: %s", resp.Status)
	}
	return url
}

// Lambda is a bootstrap running under the Runtime Interface Emulator.
type Lambda struct {
	*Process
	URL string // the invocation URL
}

// StartLambda runs bootstrap under aws-lambda-rie with exactly env.
func StartLambda(t testing.TB, bootstrap string, env map[string]string) *Lambda {
	t.Helper()
	rie := Need(t, "aws-lambda-rie", "make tools")
	addr, apiAddr := FreeAddr(t), FreeAddr(t)
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	p := start(t, rie, environ, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, bootstrap)
	waitTCP(t, addr, 15*time.Second, p)
	return &Lambda{Process: p, URL: "http://" + addr + "/2015-03-31/functions/function/invocations"}
}

// Invoke sends one event and returns the function's answer.
func (l *Lambda) Invoke(t testing.TB, event []byte) []byte {
	t.Helper()
	resp, err := http.Post(l.URL, "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke: %s %v: %s", resp.Status, err, b)
	}
	return b
}

// BuildCommand builds the command in pkgDir into a new temporary directory,
// for a TestMain; remove the directory when done.
func BuildCommand(pkgDir, name string) (path, dir string, err error) {
	dir, err = os.MkdirTemp("", name)
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", path, pkgDir).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("building %s: %v\n%s", pkgDir, err, out)
	}
	return path, dir, nil
}

var builds sync.Map // package -> path, one build per test binary

// BuildLambda builds ./<pkg> as a Linux bootstrap for this machine's
// architecture, as the Makefile does for deployment (there for arm64).
func BuildLambda(t testing.TB, moduleRoot, pkg string) string {
	t.Helper()
	if p, ok := builds.Load(pkg); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out, "./"+pkg)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	builds.Store(pkg, out)
	return out
}

// Buffer is a goroutine-safe bytes.Buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
