package launcher

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// A local port in use is refused, naming the process that holds it.
func TestCheckLocalPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	err = checkLocalPort(port)
	want := "local port " + strconv.Itoa(port) + " is in use by "
	if runtime.GOOS == "linux" {
		want += "pid " + strconv.Itoa(os.Getpid()) + " ("
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%v, want %q", err, want)
	}
	ln.Close()
	if err := checkLocalPort(port); err != nil {
		t.Fatalf("a free port: %v", err)
	}
	if got := portHolder(t.TempDir(), port); got != "" {
		t.Fatalf("no procfs: %q", got)
	}
}
