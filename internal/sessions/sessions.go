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
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	table, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return appendTable(nil, table)
}

// appendTable appends the sockets of a table to socks. It allocates
// nothing but socks' growth: a sidecar samples for hours.
func appendTable(socks []Socket, table []byte) ([]Socket, error) {
	_, rest, _ := bytes.Cut(table, []byte("\n")) // the header
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		var f [4][]byte // sl, local_address, rem_address, st
		n := 0
		for field := range bytes.FieldsSeq(line) {
			if n == len(f) {
				break
			}
			f[n] = field
			n++
		}
		if n == 0 {
			continue
		}
		if n < len(f) {
			return nil, fmt.Errorf("sessions: line %q: too few fields", line)
		}
		local, err1 := parseAddr(f[1])
		remote, err2 := parseAddr(f[2])
		state, err3 := parseHex(f[3], 8)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("sessions: line %q: %w", line, err)
		}
		socks = append(socks, Socket{Local: local, Remote: remote, State: uint8(state)})
	}
	return socks, nil
}

// parseAddr reads ADDR:PORT in the kernel's hex: the address as 32-bit words
// in host (little-endian) order, the port big-endian.
func parseAddr(s []byte) (netip.AddrPort, error) {
	addrHex, portHex, ok := bytes.Cut(s, []byte(":"))
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	if len(addrHex) != 8 && len(addrHex) != 32 {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", addrHex)
	}
	var raw [16]byte
	n, err := hex.Decode(raw[:], addrHex)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", addrHex)
	}
	for i := 0; i < n; i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := parseHex(portHex, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", portHex)
	}
	addr := netip.AddrFrom16(raw)
	if n == 4 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// parseHex is strconv.ParseUint(s, 16, bits) without converting s to a string.
func parseHex(s []byte, bits int) (uint64, error) {
	if len(s) == 0 || len(s) > bits/4 {
		return 0, fmt.Errorf("bad hex %q", s)
	}
	var v uint64
	for _, c := range s {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("bad hex %q", s)
		}
		v = v<<4 | uint64(d)
	}
	return v, nil
}

// ListeningPorts is every port something listens on, less exclude (the
// supervisor's own control port).
func ListeningPorts(socks []Socket, exclude ...uint16) map[uint16]bool {
	return listeningInto(map[uint16]bool{}, socks, exclude)
}

// listeningInto fills ports, emptied first, as ListeningPorts.
func listeningInto(ports map[uint16]bool, socks []Socket, exclude []uint16) map[uint16]bool {
	clear(ports)
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

// Sampler counts the sessions open now under ProcRoot (/proc): inbound
// connections to Ports (nil: every port something listens on, less
// Exclude) and ECS Exec workers, where the task's processes are visible.
// It keeps its buffers from one sample to the next: a sidecar samples for
// hours, and its heap must not grow with them. Not safe for concurrent use.
type Sampler struct {
	ProcRoot string
	Ports    map[uint16]bool
	Exclude  []uint16

	buf       []byte
	socks     []Socket
	listening map[uint16]bool
}

// Count takes one sample.
func (s *Sampler) Count() (int, error) {
	s.socks = s.socks[:0]
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		var err error
		s.buf, err = readInto(s.buf[:0], filepath.Join(s.ProcRoot, table))
		if errors.Is(err, fs.ErrNotExist) && table == "net/tcp6" {
			continue // IPv6 off
		}
		if err != nil {
			return 0, fmt.Errorf("sessions: %w", err)
		}
		if s.socks, err = appendTable(s.socks, s.buf); err != nil {
			return 0, err
		}
	}
	ports := s.Ports
	if ports == nil {
		if s.listening == nil {
			s.listening = map[uint16]bool{}
		}
		ports = listeningInto(s.listening, s.socks, s.Exclude)
	}
	n := Inbound(s.socks, ports)
	if workers, err := Workers(s.ProcRoot); err == nil {
		n += workers
	}
	return n, nil
}

// readInto appends the file's content to buf, growing it as needed.
func readInto(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
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
	var comm [64]byte // TASK_COMM_LEN is 16
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		f, err := os.Open(filepath.Join(procRoot, e.Name(), "comm"))
		if err != nil {
			continue
		}
		k, _ := io.ReadFull(f, comm[:])
		f.Close()
		if strings.TrimSpace(string(comm[:k])) == ExecWorker {
			n++
		}
	}
	return n, nil
}
