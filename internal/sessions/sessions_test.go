package sessions

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/loopback"
)

// testdata/tcp and tcp6 were captured in a network namespace of their own
// with a listener on 127.0.0.1:2222 (IPv4) and on [::]:2223 (dual stack),
// and three client connections: 127.0.0.1 -> :2222, [::1] -> :2223 and
// 127.0.0.1 -> :2223 (IPv4-mapped on the IPv6 listener).
func parseFile(t *testing.T, name string) []socket {
	t.Helper()
	table, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	socks, err := appendTable(nil, table)
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
	ports := listeningInto(map[uint16]bool{}, socks, nil)
	if len(ports) != 2 || !ports[2222] || !ports[2223] {
		t.Fatalf("listening ports %v, want 2222 and 2223", ports)
	}
	// Three server sides; the three client sides have ephemeral ports.
	if n := inbound(socks, ports); n != 3 {
		t.Errorf("%d inbound sessions, want 3", n)
	}
	if n := inbound(socks, listeningInto(map[uint16]bool{}, socks, []uint16{2223})); n != 1 {
		t.Errorf("%d sessions with 2223 excluded, want 1", n)
	}
	if n := inbound(socks, map[uint16]bool{22: true}); n != 0 {
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
		if _, err := appendTable(nil, []byte(bad)); err == nil {
			t.Errorf("appendTable(%q) accepted", bad)
		}
	}
}

func TestWorkers(t *testing.T) {
	proc := t.TempDir()
	// As the kernel shows them: comm keeps 15 bytes of a name.
	for pid, comm := range map[string]string{"1": "sshd\n", "42": "ssm-session-wor\n", "43": "ssm-session-wor\n", "44": "bash\n", "45": "ssm-session\n", "self": "ssm-session-wor\n"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := countWorkers(proc); err != nil || n != 2 {
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
		table, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Skip("no /proc/net/tcp here")
		}
		socks, err := appendTable(nil, table)
		if err != nil {
			t.Fatal(err)
		}
		if !listeningInto(map[uint16]bool{}, socks, nil)[port] {
			t.Fatalf("port %d not seen listening", port)
		}
		return inbound(socks, map[uint16]bool{port: true})
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
	for pid, comm := range map[string]string{"1": "sshd\n", "7": "ssm-session-wor\n", "9": "ssm-session-wor\n"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "comm"), []byte(comm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &Sampler{ProcRoot: proc, Exclude: []uint16{2223}}
	for range 3 { // the buffers carry over
		if got, err := s.Count(); err != nil || got.Sessions != 1+2 || len(got.Unheard) != 0 {
			t.Fatalf("Count = %+v, %v; want 1 session (2223 excluded) + 2 workers", got, err)
		}
	}
	s.Exclude = nil
	if got, err := s.Count(); err != nil || got.Sessions != 3+2 {
		t.Fatalf("Count = %+v, %v; want 3 sessions + 2 workers", got, err)
	}
	if got, err := (&Sampler{ProcRoot: proc, Ports: map[uint16]bool{22: true}}).Count(); err != nil || got.Sessions != 2 || !slices.Equal(got.Unheard, []uint16{22}) || !got.InUse() {
		t.Fatalf("Count on port 22 = %+v, %v; want the 2 workers, and 22 unheard", got, err)
	}

	table, _ := os.ReadFile(filepath.Join("testdata", "tcp6"))
	socks := make([]socket, 0, 16)
	if allocs := testing.AllocsPerRun(100, func() { socks, _ = appendTable(socks[:0], table) }); allocs != 0 {
		t.Errorf("parsing a table allocates %v times", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = s.Count() }); allocs > 40 {
		t.Errorf("a sample allocates %v times, want the directory listing's few", allocs)
	}
	if err := os.Remove(filepath.Join(proc, "net", "tcp6")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Count(); err != nil || got.Sessions != 1+2 {
		t.Fatalf("without IPv6: Count = %+v, %v; want the one IPv4 session + 2 workers", got, err)
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

// waitSessions samples until want sessions show (the kernel lists an
// accepted connection at once; the accept goroutine may lag a little).
func waitSessions(t *testing.T, s *Sampler, want int) Sample {
	t.Helper()
	var got Sample
	for range 100 {
		var err error
		if got, err = s.Count(); err != nil {
			t.Fatal(err)
		}
		if got.Sessions == want {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d sessions, want %d", got.Sessions, want)
	return got
}

// BASTION_IDLE_PORTS=<typo> while the server listens on another port, on
// real sockets: the typo'd port counts as in use at every sample, however
// busy or idle the other; once something listens on it (a server that
// starts late), its connections count as they should and it can be idle.
func TestSamplerUnheardPortLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp here")
	}
	typo, late := loopback.FreePort(t), loopback.FreePort(t)
	_, busy := loopback.Listen(t, 0)
	loopback.Dial(t, busy)

	s := &Sampler{ProcRoot: "/proc", Ports: map[uint16]bool{typo: true, late: true}}
	got := waitSessions(t, s, 0) // the session on the busy port is not watched
	if want := slices.Sorted(slices.Values([]uint16{typo, late})); !slices.Equal(got.Unheard, want) || !got.InUse() {
		t.Fatalf("sample %+v, want %v unheard and in use", got, want)
	}
	loopback.Listen(t, late)
	got = waitSessions(t, s, 0)
	if !slices.Equal(got.Unheard, []uint16{typo}) || !got.InUse() {
		t.Fatalf("once %d listens: %+v, want only %d unheard, still in use", late, got, typo)
	}
	s.Ports = map[uint16]bool{late: true} // the typo fixed
	if got = waitSessions(t, s, 0); len(got.Unheard) != 0 || got.InUse() {
		t.Fatalf("%d listening, no client: %+v, want idle", late, got)
	}
	c := loopback.Dial(t, late)
	if got = waitSessions(t, s, 1); !got.InUse() {
		t.Fatalf("a client on %d: %+v, want in use", late, got)
	}
	c.Close()
	if got = waitSessions(t, s, 0); got.InUse() {
		t.Fatalf("the client gone: %+v, want idle", got)
	}

	// The default, every listening port: nothing is ever unheard.
	if got, err := (&Sampler{ProcRoot: "/proc"}).Count(); err != nil || len(got.Unheard) != 0 {
		t.Fatalf("default ports: %+v, %v; want nothing unheard", got, err)
	}
}

// fakeProcs is a /proc whose net is this process's real one and whose
// processes are given as pid -> comm and cgroup; "self" is the supervisor.
func fakeProcs(t *testing.T, procs map[string][2]string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Symlink("/proc/self/net", filepath.Join(root, "net")); err != nil {
		t.Fatal(err)
	}
	addProcs(t, root, procs)
	return root
}

func addProcs(t *testing.T, root string, procs map[string][2]string) {
	t.Helper()
	for pid, p := range procs {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"comm": p[0] + "\n", "cgroup": p[1] + "\n"} {
			if err := os.WriteFile(filepath.Join(root, pid, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ECS Exec sessions: a task with ECS Exec whose /proc shows only the
// supervisor's own container (no pidMode task) counts as in use, with no
// connection anywhere; once another container's process shows (cgroups
// unlike the supervisor's), the workers are counted and it can be idle.
func TestSamplerExecVisibility(t *testing.T) {
	const sidecar, bastion = "0::/ecs/task/sidecar", "0::/ecs/task/bastion"
	_, port := loopback.Listen(t, 0)
	proc := fakeProcs(t, map[string][2]string{"self": {"supervisor", sidecar}, "1": {"supervisor", sidecar}})

	if got, err := (&Sampler{ProcRoot: proc, Ports: map[uint16]bool{port: true}}).Count(); err != nil || got.InUse() || got.Exec {
		t.Fatalf("no ECS Exec: %+v, %v; want idle", got, err)
	}
	s := &Sampler{ProcRoot: proc, Ports: map[uint16]bool{port: true}, Exec: true}
	if got, err := s.Count(); err != nil || got.Sessions != 0 || !got.ExecHidden() || !got.InUse() {
		t.Fatalf("ECS Exec, no pidMode task: %+v, %v; want hidden, in use", got, err)
	}
	// The SSM agent in the supervisor's own container tells of ECS Exec too.
	addProcs(t, proc, map[string][2]string{"5": {"amazon-ssm-agen", sidecar}})
	if got, err := (&Sampler{ProcRoot: proc, Ports: map[uint16]bool{port: true}}).Count(); err != nil || !got.Exec || !got.InUse() {
		t.Fatalf("an SSM agent, no pidMode task: %+v, %v; want ECS Exec hidden, in use", got, err)
	}
	// pidMode task: the bastion's sshd shows, in its own cgroup.
	addProcs(t, proc, map[string][2]string{"7": {"sshd", bastion}})
	if got, err := s.Count(); err != nil || !got.ExecVisible || got.InUse() {
		t.Fatalf("pidMode task, nobody on: %+v, %v; want visible, idle", got, err)
	}
	addProcs(t, proc, map[string][2]string{"9": {"ssm-session-wor", bastion}})
	if got, err := s.Count(); err != nil || got.Sessions != 1 || !got.InUse() {
		t.Fatalf("one ECS Exec session: %+v, %v; want 1 session", got, err)
	}
	// Seen once, visible for good: the task's pidMode does not change.
	for _, pid := range []string{"7", "9"} {
		if err := os.RemoveAll(filepath.Join(proc, pid)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Count(); err != nil || !got.ExecVisible || got.InUse() {
		t.Fatalf("the bastion's processes gone: %+v, %v; want visible, idle", got, err)
	}
}

func TestExecEnabled(t *testing.T) {
	dir := t.TempDir()
	if !ExecEnabled(dir) || ExecEnabled(filepath.Join(dir, "absent")) {
		t.Fatal("ExecEnabled does not follow the directory")
	}
}

// A real process named ssm-session-worker, as the SSM agent starts one per
// ECS Exec session, is counted from the real /proc: the kernel keeps 15
// bytes of its name.
func TestWorkersLive(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) to run as a worker")
	}
	if _, err := os.Stat("/proc/self/comm"); err != nil {
		t.Skip("no /proc here")
	}
	worker := filepath.Join(t.TempDir(), ExecWorker)
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(worker, b, 0o755); err != nil {
		t.Fatal(err)
	}
	before, err := countWorkers("/proc")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(worker, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Start returns once the exec is done: the process has its name.
	if n, err := countWorkers("/proc"); err != nil || n != before+1 {
		t.Fatalf("Workers = %d, %v with one worker running; want %d", n, err, before+1)
	}
}
