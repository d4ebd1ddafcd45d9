// Package sessions counts the people on a bastion. The containers of an
// awsvpc task share one network namespace, so the supervisor sees the
// bastion's TCP connections in /proc/net/tcp and /proc/net/tcp6: an
// established connection to a port something listens on is a session, and
// one the box opened (the SSM agent's, a proxy's upstream) is not. With
// pidMode task it also sees the bastion's processes, where each
// ssm-session-worker is an ECS Exec session that never shows as a
// connection. A kind of session it cannot see (a configured port nothing
// listens on, ECS Exec without pidMode task) counts as in use: a bastion
// never stops for idleness because the supervisor was blind.
package sessions

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// TCP states, as the kernel writes them (include/net/tcp_states.h).
const (
	stateEstablished = 0x01
	stateListen      = 0x0A
)

// socket is one line of /proc/net/tcp or tcp6.
type socket struct {
	Local, Remote netip.AddrPort
	State         uint8
}

// appendTable appends the sockets of a /proc/net/tcp or /proc/net/tcp6
// table to socks. It allocates
// nothing but socks' growth: a sidecar samples for hours.
func appendTable(socks []socket, table []byte) ([]socket, error) {
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
		socks = append(socks, socket{Local: local, Remote: remote, State: uint8(state)})
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

// listeningInto fills ports, emptied first, with every port something
// listens on, less exclude (the supervisor's own control port).
func listeningInto(ports map[uint16]bool, socks []socket, exclude []uint16) map[uint16]bool {
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

// inbound counts the established connections to one of ports: the server
// side of a session. The client side of a connection the box opened has an
// ephemeral local port, so it is not counted.
func inbound(socks []socket, ports map[uint16]bool) int {
	n := 0
	for _, s := range socks {
		if s.State == stateEstablished && ports[s.Local.Port()] {
			n++
		}
	}
	return n
}

// Sample is what one look at /proc saw.
type Sample struct {
	// Sessions is the sessions seen open: inbound connections to the watched
	// ports and visible ECS Exec workers.
	Sessions int
	// Unheard is the configured ports nothing listens on, sorted: a session
	// there could not be seen (the port may be a typo, or its server not up
	// yet), so each counts as in use. Valid until the next sample.
	Unheard []uint16
	// Exec is whether the task can have ECS Exec sessions; ExecVisible,
	// whether their workers can be seen: /proc shows another container's
	// processes (pidMode task).
	Exec, ExecVisible bool
}

// ExecHidden reports that the task can have ECS Exec sessions that this
// sample could not see.
func (s Sample) ExecHidden() bool { return s.Exec && !s.ExecVisible }

// InUse reports whether the bastion counts as in use: a session seen, or a
// kind of session that could not be seen. Never idle for want of sight.
func (s Sample) InUse() bool { return s.Sessions > 0 || len(s.Unheard) > 0 || s.ExecHidden() }

// Sampler samples the sessions open now under ProcRoot (/proc): inbound
// connections to Ports (nil: every port something listens on, less
// Exclude) and ECS Exec workers, where the task's processes are visible.
// Exec says the task can have ECS Exec sessions (see ExecEnabled); an SSM
// agent seen in /proc says so too. It keeps its buffers from one sample to
// the next: a sidecar samples for hours, and its heap must not grow with
// them. Not safe for concurrent use.
type Sampler struct {
	ProcRoot string
	Ports    map[uint16]bool
	Exclude  []uint16
	Exec     bool

	buf        []byte
	socks      []socket
	listening  map[uint16]bool
	unheard    []uint16
	procs      procScan
	seesOthers bool // once another container's process was seen: pidMode is the task's for its life
}

// Count takes one sample.
func (s *Sampler) Count() (Sample, error) {
	s.socks = s.socks[:0]
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		var err error
		s.buf, err = readInto(s.buf[:0], filepath.Join(s.ProcRoot, table))
		if errors.Is(err, fs.ErrNotExist) && table == "net/tcp6" {
			continue // IPv6 off
		}
		if err != nil {
			return Sample{}, fmt.Errorf("sessions: %w", err)
		}
		if s.socks, err = appendTable(s.socks, s.buf); err != nil {
			return Sample{}, err
		}
	}
	if s.listening == nil {
		s.listening = map[uint16]bool{}
	}
	exclude := s.Exclude
	if s.Ports != nil {
		exclude = nil // the configured ports are the operator's word
	}
	listening := listeningInto(s.listening, s.socks, exclude)
	ports := s.Ports
	s.unheard = s.unheard[:0]
	if ports == nil {
		ports = listening
	}
	for p := range s.Ports {
		if !listening[p] {
			s.unheard = append(s.unheard, p)
		}
	}
	slices.Sort(s.unheard)
	sample := Sample{Sessions: inbound(s.socks, ports), Unheard: s.unheard}

	// Another container's processes matter only with ECS Exec, and are
	// looked for until one is seen: the bastion container may start after
	// this one. An SSM agent first seen in this scan has it scanned again.
	s.procs.lookForOthers = s.Exec && !s.seesOthers
	err := s.procs.scan(s.ProcRoot)
	if err == nil && !s.Exec && s.procs.agentSeen {
		s.Exec, s.procs.lookForOthers = true, true
		err = s.procs.scan(s.ProcRoot)
	}
	if err == nil {
		sample.Sessions += s.procs.workers
		s.seesOthers = s.seesOthers || s.procs.othersSeen
	}
	sample.Exec, sample.ExecVisible = s.Exec, s.seesOthers
	return sample, nil
}

// Listening is the ports something listened on at the last sample, sorted
// (less Exclude unless Ports is set).
func (s *Sampler) Listening() []uint16 { return slices.Sorted(maps.Keys(s.listening)) }

// Watched is the ports whose connections the last sample counted, sorted:
// the configured ones, or every port something listened on less Exclude.
func (s *Sampler) Watched() []uint16 {
	ports := s.Ports
	if ports == nil {
		ports = s.listening
	}
	return slices.Sorted(maps.Keys(ports))
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

// ExecWorker is the process of one ECS Exec (SSM) session, and ExecAgent
// the SSM agent that ECS runs in every container of a task with ECS Exec
// enabled.
const (
	ExecWorker = "ssm-session-worker"
	ExecAgent  = "amazon-ssm-agent"
)

// ExecAgentDir is where ECS mounts the SSM agent into every container of a
// task with ECS Exec enabled. The task metadata does not say whether it is
// enabled; this mount, in the supervisor's own container, does.
const ExecAgentDir = "/managed-agents/execute-command"

// ExecEnabled reports whether dir (ExecAgentDir) exists: the task can have
// ECS Exec sessions.
func ExecEnabled(dir string) bool {
	info, err := os.Stat(dir)
	return err == nil && info.IsDir()
}

// commLen is the most of a name that /proc/PID/comm keeps (TASK_COMM_LEN
// less the NUL): "ssm-session-worker" reads "ssm-session-wor" there.
const commLen = 15

// sameComm reports whether comm, as /proc shows it, is name's.
func sameComm(comm []byte, name string) bool {
	return string(comm) == name[:min(len(name), commLen)]
}

// countWorkers counts the processes named ExecWorker under procRoot (/proc). A
// process that ends while being read is skipped.
func countWorkers(procRoot string) (int, error) {
	var p procScan
	err := p.scan(procRoot)
	return p.workers, err
}

// procScan is one walk over the processes under a /proc.
type procScan struct {
	lookForOthers bool // compare each process's cgroups with the supervisor's own

	workers    int
	agentSeen  bool
	othersSeen bool
	self, cg   []byte
}

// scan walks procRoot. Another container's process is one whose cgroups
// differ from the supervisor's own (procRoot/self): every container has
// cgroups of its own, while a process that ECS Exec starts in a container
// joins that container's. The cgroup file, unlike a namespace link, is
// readable whatever user owns the process.
func (p *procScan) scan(procRoot string) error {
	p.workers, p.othersSeen = 0, false
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	lookForOthers := p.lookForOthers
	if lookForOthers {
		p.self, err = readInto(p.self[:0], filepath.Join(procRoot, "self", "cgroup"))
		lookForOthers = err == nil && len(p.self) > 0
	}
	var comm [64]byte
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		f, err := os.Open(filepath.Join(dir, "comm"))
		if err != nil {
			continue
		}
		k, _ := io.ReadFull(f, comm[:])
		f.Close()
		name := bytes.TrimSpace(comm[:k])
		switch {
		case sameComm(name, ExecWorker):
			p.workers++
		case sameComm(name, ExecAgent):
			p.agentSeen = true
		}
		if lookForOthers && !p.othersSeen {
			if p.cg, err = readInto(p.cg[:0], filepath.Join(dir, "cgroup")); err == nil && !bytes.Equal(p.cg, p.self) {
				p.othersSeen = true
			}
		}
	}
	return nil
}
