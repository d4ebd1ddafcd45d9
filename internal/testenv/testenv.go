package testenv

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// StrictVar names the variable that forbids skipping.
const StrictVar = "BASTION_TEST_STRICT"

// SkipsVar names a file each skipped integration test adds a line to; make
// test prints them in one summary at the end (scripts/skipped.sh).
const SkipsVar = "BASTION_TEST_SKIPS"

// Skipped records that t skipped, and why, for make test's summary.
func Skipped(t testing.TB, why string) {
	t.Helper()
	if path := os.Getenv(SkipsVar); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s\t%s\n", t.Name(), why)
			f.Close()
		}
	}
	t.Skip(why)
}

// Need returns the path of tool, or skips (fails when strict) the test.
func Need(t testing.TB, tool, install string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skips what needs " + tool)
	}
	if p, err := FindTool(tool); err == nil {
		return p
	}
	Missing(t, tool, install)
	return ""
}

// Missing skips t loudly (fails it when strict) for want of what, a tool or
// a package that install installs.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	msg := fmt.Sprintf("\n*** %s not found: SKIPPING this integration test. Install it with: %s ***\n", what, install)
	if os.Getenv(StrictVar) == "1" {
		t.Fatalf("%s%s=1 forbids skipping", msg, StrictVar)
	}
	fmt.Fprint(os.Stderr, msg)
	Skipped(t, what+" not found; install it with: "+install)
}

// BotocorePython returns a Python that imports botocore (the AWS CLI v1's,
// which .ci/run requires), the independent judge of this project's SigV4
// signatures, or skips (fails when strict) the test.
func BotocorePython(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs Python")
	}
	for _, py := range []string{"python3", "python"} {
		if exec.Command(py, "-c", "import botocore").Run() == nil {
			return py
		}
	}
	Missing(t, "a Python with botocore (the AWS CLI's SigV4)", "the AWS CLI v1 (pip install awscli)")
	return ""
}

// RealTime skips t under -short: it runs processes, or waits on the wall clock.
func RealTime(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs in real time")
	}
}

// FreeAddr returns a free 127.0.0.1:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Process is a started program: the tools, or a binary under test. Its
// output is kept, and logged if the test fails.
type Process struct {
	Cmd    *exec.Cmd
	out    *Buffer
	done   chan struct{}
	code   int
	exited time.Time
}

// Start starts name with exactly env; the test's cleanup kills it.
func Start(t testing.TB, name string, env []string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	return StartCommand(t, cmd)
}

// StartCommand starts cmd, its output kept; the test's cleanup kills it.
func StartCommand(t testing.TB, cmd *exec.Cmd) *Process {
	RealTime(t)
	t.Helper()
	p := &Process{Cmd: cmd, out: &Buffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	name := cmd.Path
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.Cmd.Wait()
		p.exited = time.Now()
		p.code = p.Cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), tail(p.out.String(), 6000))
		}
	})
	return p
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Done is closed when the process has exited; Code and ExitedAt are then set.
func (p *Process) Done() <-chan struct{} { return p.done }

// Code is the exit code, once Done.
func (p *Process) Code() int { <-p.done; return p.code }

// ExitedAt is when the process exited, once Done.
func (p *Process) ExitedAt() time.Time { <-p.done; return p.exited }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Wait returns the exit code, failing the test if the process still runs after within.
func (p *Process) Wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("%s still running after %v", filepath.Base(p.Cmd.Path), within)
		return -1
	}
}

// WaitOutput waits until the process has printed want: output reaches
// the test through a pipe, a moment after the process wrote it.
func (p *Process) WaitOutput(t testing.TB, within time.Duration, want string) {
	t.Helper()
	WaitFor(t, within, fmt.Sprintf("%q in the output of %s", want, filepath.Base(p.Cmd.Path)), func() bool {
		return strings.Contains(p.Output(), want)
	})
}

// WaitFor polls cond until it holds, failing the test after within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(within)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", filepath.Base(p.Cmd.Path), err)
	}
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

var motoListening = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+`)

// Moto starts moto_server and returns its base URL. Task states are frozen
// (moto otherwise advances a task one step at every DescribeTasks).
func Moto(t testing.TB) string {
	t.Helper()
	bin := Need(t, "moto_server", "pip install 'moto[server]==5.2.1'")
	// Port 0: the kernel picks a free port and moto prints it, so no other
	// test can take it between choosing and binding.
	p := Start(t, bin, os.Environ(), "-H", "127.0.0.1", "-p", "0")
	var url string
	WaitFor(t, 30*time.Second, "moto_server to listen", func() bool {
		if !p.Running() {
			t.Fatalf("moto_server exited:\n%s", tail(p.Output(), 3000))
		}
		url = motoListening.FindString(p.Output())
		return url != ""
	})
	if err := FreezeTasks(url); err != nil {
		t.Fatal(err)
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
	cmd, addr, err := EmulatorCommand(rie, bootstrap, env)
	if err != nil {
		t.Fatal(err)
	}
	p := StartCommand(t, cmd)
	waitTCP(t, addr, 15*time.Second, p)
	return &Lambda{Process: p, URL: InvokeURL(addr)}
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

// MainWithCommand is a TestMain body: it builds the command in pkgDir into
// a temporary directory, sets *bin to its path, runs the tests, removes the
// directory and returns the exit code for os.Exit.
func MainWithCommand(m *testing.M, pkgDir string, bin *string) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // the tests that run the binary skip (RealTime)
	}
	dir, err := os.MkdirTemp("", "command")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, filepath.Base(pkgDir))
	if out, err := exec.Command("go", "build", "-o", *bin, pkgDir).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkgDir, err, out)
		return 1
	}
	return m.Run()
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
	if err := BuildBootstrap(moduleRoot, pkg, out); err != nil {
		t.Fatal(err)
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
