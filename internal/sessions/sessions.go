// Package sessions counts the people on a bastion. The containers of an
// awsvpc task share one network namespace, so the supervisor sees the
// bastion's TCP connections in /proc/net/tcp and /proc/net/tcp6: an
// established connection to a port something listens on is a session, and
// one the box opened (the SSM agent's, a proxy's upstream) is not. With
// pidMode task it also sees the bastion's processes, where each
// ssm-session-worker is an ECS Exec session that never shows as a
// connection.
package sessions

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TCP states, as the kernel writes them (include/net/tcp_states.h).
const (
	stateEstablished = 0x01
	stateListen      = 0x0A
)

// Socket is one line of /proc/net/tcp or tcp6.
type Socket struct {
	Local, Remote netip.AddrPort
	State         uint8
}

// ParseTCP reads a /proc/net/tcp or /proc/net/tcp6 table.
func ParseTCP(r io.Reader) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		local, err1 := parseAddr(f[1])
		remote, err2 := parseAddr(f[2])
		state, err3 := strconv.ParseUint(f[3], 16, 8)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("sessions: line %q: %w", sc.Text(), err)
		}
		out = append(out, Socket{Local: local, Remote: remote, State: uint8(state)})
	}
	return out, sc.Err()
}

// parseAddr reads ADDR:PORT in the kernel's hex: the address as 32-bit words
// in host (little-endian) order, the port big-endian.
func parseAddr(s string) (netip.AddrPort, error) {
	addrHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	raw, err := hex.DecodeString(addrHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", addrHex)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", portHex)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// ListeningPorts is every port something listens on, less exclude (the
// supervisor's own control port).
func ListeningPorts(socks []Socket, exclude ...uint16) map[uint16]bool {
	ports := map[uint16]bool{}
	for _, s := range socks {
		if s.State == stateListen {
			ports[s.Local.Port()] = true
		}
	}
	for _, p := range exclude {
		delete(ports, p)
	}
	return ports
}

// Inbound counts the established connections to one of ports: the server
// side of a session. The client side of a connection the box opened has an
// ephemeral local port, so it is not counted.
func Inbound(socks []Socket, ports map[uint16]bool) int {
	n := 0
	for _, s := range socks {
		if s.State == stateEstablished && ports[s.Local.Port()] {
			n++
		}
	}
	return n
}

// ExecWorker is the process of one ECS Exec (SSM) session.
const ExecWorker = "ssm-session-worker"

// Workers counts the processes named ExecWorker under procRoot (/proc). A
// process that ends while being read is skipped.
func Workers(procRoot string) (int, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("sessions: %w", err)
	}
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == ExecWorker {
			n++
		}
	}
	return n, nil
}
