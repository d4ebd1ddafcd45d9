package sessions

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/tcp and tcp6 were captured in a network namespace of their own
// with a listener on 127.0.0.1:2222 (IPv4) and on [::]:2223 (dual stack),
// and three client connections: 127.0.0.1 -> :2222, [::1] -> :2223 and
// 127.0.0.1 -> :2223 (IPv4-mapped on the IPv6 listener).
func parseFile(t *testing.T, name string) []Socket {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	socks, err := ParseTCP(f)
	if err != nil {
		t.Fatal(err)
	}
	return socks
}

func TestParseTCP(t *testing.T) {
	v4, v6 := parseFile(t, "tcp"), parseFile(t, "tcp6")
	if len(v4) != 4 || len(v6) != 4 {
		t.Fatalf("%d IPv4 and %d IPv6 sockets, want 4 and 4", len(v4), len(v6))
	}
	if want := netip.MustParseAddrPort("127.0.0.1:2222"); v4[0].Local != want || v4[0].State != stateListen {
		t.Errorf("first IPv4 socket %+v, want a listener on %v", v4[0], want)
	}
	if want := netip.MustParseAddrPort("[::1]:2223"); v6[1].Local != want || v6[1].State != stateEstablished {
		t.Errorf("IPv6 socket %+v, want established on %v", v6[1], want)
	}
	// IPv4-mapped addresses read as plain IPv4.
	if want := netip.MustParseAddrPort("127.0.0.1:2223"); v6[2].Local != want {
		t.Errorf("IPv4-mapped socket %v, want %v", v6[2].Local, want)
	}
}

func TestInboundSessions(t *testing.T) {
	socks := append(parseFile(t, "tcp"), parseFile(t, "tcp6")...)
	ports := ListeningPorts(socks)
	if len(ports) != 2 || !ports[2222] || !ports[2223] {
		t.Fatalf("listening ports %v, want 2222 and 2223", ports)
	}
	// Three server sides; the three client sides have ephemeral ports.
	if n := Inbound(socks, ports); n != 3 {
		t.Errorf("%d inbound sessions, want 3", n)
	}
	if n := Inbound(socks, ListeningPorts(socks, 2223)); n != 1 {
		t.Errorf("%d sessions with 2223 excluded, want 1", n)
	}
	if n := Inbound(socks, map[uint16]bool{22: true}); n != 0 {
		t.Errorf("%d sessions on port 22, want 0", n)
	}
}

func TestParseTCPRejectsGarbage(t *testing.T) {
	for _, bad := range []string{
		"header\n   0: 0100007F:08AE 00000000:0000 ZZ 0",
		"header\n   0: 0100007F 00000000:0000 0A 0",
		"header\n   0: 01007F:08AE 00000000:0000 0A 0",
		"header\n   0: 0100007F:08AE 00000000:0000",
		"header\n   0: 0100007F:108AE 00000000:0000 0A 0",
		"header\n   0: 0100007F0100007F0100007F0100007F0100007F:08AE 00000000:0000 0A 0",
		"header\n   0: 0100007F:08AE 00000000:0000 10A 0",
	} {
		if _, err := ParseTCP(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseTCP(%q) accepted", bad)
		}
	}
}

func TestWorkers(t *testing.T) {
	proc := t.TempDir()
	for pid, comm := range map[string]string{"1": "sshd\n", "42": ExecWorker + "\n", "43": ExecWorker + "\n", "44": "bash\n", "self": ExecWorker + "\n"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := Workers(proc); err != nil || n != 2 {
		t.Fatalf("Workers = %d, %v; want 2", n, err)
	}
}

// A real listener and a real client on loopback, read back from this
// process's own /proc/net/tcp: one inbound session on the listener's port,
// none once the client has gone.
func TestInboundLive(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	count := func() int {
		f, err := os.Open("/proc/net/tcp")
		if err != nil {
			t.Skip("no /proc/net/tcp here")
		}
		defer f.Close()
		socks, err := ParseTCP(f)
		if err != nil {
			t.Fatal(err)
		}
		if !ListeningPorts(socks)[port] {
			t.Fatalf("port %d not seen listening", port)
		}
		return Inbound(socks, map[uint16]bool{port: true})
	}
	if n := count(); n != 1 {
		t.Fatalf("%d sessions with one client connected, want 1", n)
	}
	client.Close()
	server.Close()
	if n := count(); n != 0 {
		t.Fatalf("%d sessions after the client left, want 0", n)
	}
}

// The Sampler over a /proc of the captured tables and two ECS Exec workers:
// three inbound sessions and two workers; each sample allocates little, and
// parsing the tables nothing.
func TestSampler(t *testing.T) {
	proc := t.TempDir()
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join("testdata", table))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(proc, "net"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, "net", table), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pid, comm := range map[string]string{"1": "sshd\n", "7": ExecWorker + "\n", "9": ExecWorker + "\n"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &Sampler{ProcRoot: proc, Exclude: []uint16{2223}}
	for range 3 { // the buffers carry over
		if n, err := s.Count(); err != nil || n != 1+2 {
			t.Fatalf("Count = %d, %v; want 1 session (2223 excluded) + 2 workers", n, err)
		}
	}
	s.Exclude = nil
	if n, err := s.Count(); err != nil || n != 3+2 {
		t.Fatalf("Count = %d, %v; want 3 sessions + 2 workers", n, err)
	}
	if n, err := (&Sampler{ProcRoot: proc, Ports: map[uint16]bool{22: true}}).Count(); err != nil || n != 2 {
		t.Fatalf("Count on port 22 = %d, %v; want the 2 workers", n, err)
	}

	table, _ := os.ReadFile(filepath.Join("testdata", "tcp6"))
	socks := make([]Socket, 0, 16)
	if allocs := testing.AllocsPerRun(100, func() { socks, _ = appendTable(socks[:0], table) }); allocs != 0 {
		t.Errorf("parsing a table allocates %v times", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = s.Count() }); allocs > 40 {
		t.Errorf("a sample allocates %v times, want the directory listing's few", allocs)
	}
	if err := os.Remove(filepath.Join(proc, "net", "tcp6")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(); err != nil || n != 1+2 {
		t.Fatalf("without IPv6: Count = %d, %v; want the one IPv4 session + 2 workers", n, err)
	}
	if err := os.Remove(filepath.Join(proc, "net", "tcp")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Count(); err == nil {
		t.Fatal("no /proc/net/tcp: no error")
	}
}

// Whatever the table holds, parsing returns sockets or an error, never panics.
func FuzzParseTCP(f *testing.F) {
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("header\n   0: 0100007F0100007F0100007F0100007F0100007F:08AE 00000000:0000 0A 0"))
	f.Fuzz(func(t *testing.T, table []byte) {
		socks, err := appendTable(nil, table)
		if err != nil && socks != nil {
			t.Fatalf("sockets and an error")
		}
	})
}
