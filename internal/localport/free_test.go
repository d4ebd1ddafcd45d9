package localport

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
)

// hold listens on 127.0.0.1:port until closed or the test ends; 0 picks
// a port.
func hold(t *testing.T, port int) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// freePort is a port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// me is how an error names this test's process: "pid N (" on Linux.
func me() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	return "pid " + strconv.Itoa(os.Getpid()) + " ("
}

// A local port in use is refused, naming the process that holds it.
func TestCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	err = Check(port)
	want := "local port " + strconv.Itoa(port) + " is in use by " + me()
	if err == nil || !strings.Contains(err.Error(), want) || !cli.IsUsage(err) {
		t.Fatalf("%v, want %q, exit 2", err, want)
	}
	ln.Close()
	if err := Check(port); err != nil {
		t.Fatalf("a free port: %v", err)
	}
	if got := portHolder(t.TempDir(), port); got != "" {
		t.Fatalf("no procfs: %q", got)
	}
}

// A port held on [::1] alone is refused: a client told "localhost" may
// try ::1 first and reach that program instead of the forward.
func TestCheckIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if err := tryListen("tcp4", "127.0.0.1", port); err != nil {
		t.Skipf("127.0.0.1:%d is taken as well: %v", port, err)
	}
	want := "local port " + strconv.Itoa(port) + " is in use by " + me()
	if err := Check(port); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%v, want %q", err, want)
	}
}
