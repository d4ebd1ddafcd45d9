// Package loopback holds real TCP servers and clients on 127.0.0.1 for the
// tests that count sessions from the kernel's tables (/proc/net/tcp), as the
// supervisor does on a Fargate task, where every container shares one
// network namespace.
package loopback

import (
	"io"
	"net"
	"strconv"
	"testing"
)

// FreePort is a loopback port nothing listens on now.
func FreePort(t testing.TB) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// Listen listens on 127.0.0.1:port (0: any) until the test ends, and holds
// each connection it accepts until its client goes. It returns the port.
func Listen(t testing.TB, port uint16) (net.Listener, uint16) {
	t.Helper()
	l, err := net.Listen("tcp4", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return l, uint16(l.Addr().(*net.TCPAddr).Port)
}

// Dial connects a client to 127.0.0.1:port, closed when the test ends.
func Dial(t testing.TB, port uint16) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp4", addr(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addr(port uint16) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))) }
