package localport

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
)

// Check refuses a local port something already listens on, and says what,
// when /proc shows it.
func Check(port int) error {
	if busy := probe(port); busy != "" {
		return cli.Usagef("local port %d %s: stop it, or pass --local-port; nothing started", port, busy)
	}
	return nil
}

// probe is "" when port is free for a forward, else why not: "is in use by
// pid N (name)", "is in use by another program", or "cannot be listened
// on (ERR)".
//
// Free means what the session-manager-plugin needs: it listens on
// "localhost:PORT", which Go binds to 127.0.0.1 alone (the first IPv4
// address; sessionmanagerplugin/session/portsession). A listener on [::1]
// does not stop that bind, but a client given "localhost" often tries ::1
// first and would reach that other program, not the bastion: so a port
// held on [::1] is refused too. Where there is no IPv6 loopback, ::1
// cannot be bound by anyone and only 127.0.0.1 is judged.
func probe(port int) string {
	if err := tryListen("tcp4", "127.0.0.1", port); err != nil {
		return refusal(port, err)
	}
	if err := tryListen("tcp6", "::1", port); err != nil && errors.Is(err, syscall.EADDRINUSE) {
		return refusal(port, err)
	}
	return ""
}

// tryListen binds host:port and lets go at once.
func tryListen(network, host string, port int) error {
	ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return ln.Close()
}

// refusal says why port could not be bound.
func refusal(port int, err error) string {
	if who := portHolder("/proc", port); who != "" {
		return "is in use by " + who
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return "is in use by another program"
	}
	return fmt.Sprintf("cannot be listened on (%v)", err)
}

// portHolder is "pid N (name)" of the process listening on port, read from
// procfs; "" when it cannot be found (not Linux, another user's process).
func portHolder(proc string, port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		file, err := os.Open(filepath.Join(proc, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			local := fields[1]
			i := strings.LastIndexByte(local, ':')
			if p, err := strconv.ParseUint(local[i+1:], 16, 16); err == nil && int(p) == port {
				inodes[fields[9]] = true
			}
		}
		file.Close()
	}
	if len(inodes) == 0 {
		return ""
	}
	pids, _ := os.ReadDir(proc)
	for _, p := range pids {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join(proc, p.Name(), "fd"))
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(proc, p.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				comm, _ := os.ReadFile(filepath.Join(proc, p.Name(), "comm"))
				return fmt.Sprintf("pid %s (%s)", p.Name(), strings.TrimSpace(string(comm)))
			}
		}
	}
	return ""
}

// kernelPort is a port the kernel picks on 127.0.0.1 that probe finds
// free and is not in taken.
func kernelPort(taken map[int]int) (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("localport: pick a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if _, dup := taken[port]; !dup && probe(port) == "" {
			return port, nil
		}
	}
	return 0, errors.New("localport: pick a free port: 20 picks by the kernel were all taken")
}
