package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/sessions"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// grantingAPI answers POST /extend (the sidecar registers its TTL at start)
// with the TTL asked, and everything else with 202.
func grantingAPI() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/extend" {
			grantExtension(w, r)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
}

// grantExtension answers POST /extend with the TTL asked.
func grantExtension(w http.ResponseWriter, r *http.Request) {
	var req stopapi.ExtendRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	_ = json.NewEncoder(w).Encode(stopapi.Extended{TaskARN: req.TaskARN, TTL: req.TTL, MaxTTL: "12h0m0s"})
}

// bastionWithSessions is a listener on loopback with n client connections
// open to it: n sessions, as the supervisor reads them in /proc/net/tcp.
func bastionWithSessions(n int) (port string, closeAll func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			ln.Close()
			return "", nil, err
		}
		conns = append(conns, c)
	}
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() {
		for _, c := range conns {
			c.Close()
		}
		ln.Close()
	}, nil
}

// benchSampling measures the sidecar with an idle timeout of 10 s, so that
// it samples the sessions every second, the most often it ever does (every
// max(1 s, timeout/10)), with three sessions open: its CPU time (all its
// threads' schedstat, in nanoseconds) per sample, hence per minute at that
// rate and at a 15m timeout's (a sample every 90 s), and its resident
// memory at the start and the end of the window.
//
// The target applies in a task (task true): this host's kernel table and
// process list are many times a task's (see taskTableBuckets).
func benchSampling(supervisor string, window time.Duration, where string, task bool) ([]row, error) {
	port, closeAll, err := bastionWithSessions(3)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	meta, err := metadataServer(time.Now())
	if err != nil {
		return nil, err
	}
	defer meta.Close()
	api := grantingAPI()
	defer api.Close()
	control, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(supervisor, "watch")
	cmd.Env = append(supervisorEnv(meta.URL, api.URL, "1h", tmp),
		"BASTION_IDLE_TIMEOUT=10s", "BASTION_CONTROL_ADDR="+control)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	time.Sleep(3 * time.Second) // past start-up
	status, err := http.Get("http://" + control + "/status")
	if err != nil {
		return nil, err
	}
	var s struct{ Connections int }
	_ = json.NewDecoder(status.Body).Decode(&s)
	status.Body.Close()
	if s.Connections < 3 {
		return nil, fmt.Errorf("the sampling sidecar sees %d sessions, want at least the 3 to port %s", s.Connections, port)
	}
	pid := cmd.Process.Pid
	cpu0, err := schedstatNS(pid)
	if err != nil {
		return nil, err
	}
	rss0, err := procStatusKB(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	time.Sleep(window)
	cpu1, err := schedstatNS(pid)
	if err != nil {
		return nil, err
	}
	rss1, err := procStatusKB(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	perSample := float64(cpu1-cpu0) / 1e6 / window.Seconds() // ms; one sample a second
	at15m := perSample * 60 / 90
	target, met := "", ""
	if task {
		target, met = "<= 5 ms", verdict(at15m <= 5)
	}
	return []row{
		{fmt.Sprintf("`supervisor watch` sampling 3 sessions, %s: CPU per sample (all its threads, a sample a second for %s)", where, window), fmt.Sprintf("%.2f ms", perSample), "", ""},
		{"the same, CPU per minute at a 15m idle timeout (a sample every 90 s)", fmt.Sprintf("%.2f ms", at15m), target, met},
		{"the same, CPU per minute at 1 s sampling (an idle timeout of 10 s or less)", fmt.Sprintf("%.0f ms", perSample*60), "", ""},
		// Not a growth test: the heap fills to the GC's first target (4 MiB)
		// before any collection; the in-process row below is the one.
		{fmt.Sprintf("the same, resident memory %s apart", window), fmt.Sprintf("%.1f MiB, then %.1f MiB", float64(rss0)/1024, float64(rss1)/1024), "", ""},
	}, nil
}

// schedstatNS is the CPU time of the process's threads, in nanoseconds.
func schedstatNS(pid int) (int64, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("no schedstat for pid %d", pid)
	}
	var total int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		total += ns
	}
	return total, nil
}

// benchSampleInProcess times one sample (both TCP tables and the /proc scan
// for ECS Exec workers) and checks that samples retain nothing: the heap
// after ten hours' worth of samples at one a second. where says which
// kernel table the samples read.
func benchSampleInProcess(samples int, where string) ([]row, error) {
	_, closeAll, err := bastionWithSessions(3)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	s := &sessions.Sampler{ProcRoot: "/proc"}
	if got, err := s.Count(); err != nil || got.Sessions < 3 {
		return nil, fmt.Errorf("a sample found %d sessions (%v), want at least 3", got.Sessions, err)
	}
	times := make([]time.Duration, samples)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for i := range samples {
		began := time.Now()
		if _, err := s.Count(); err != nil {
			return nil, err
		}
		times[i] = time.Since(began)
	}
	grown := int64(heap()) - int64(before)
	slices.Sort(times)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	return []row{
		{fmt.Sprintf("one session sample, in process, %s (%d processes in /proc), back to back: median (p99) of %d", where, len(procs), samples),
			fmt.Sprintf("%.0f µs (%.0f µs)", float64(times[samples/2])/1e3, float64(times[samples*99/100])/1e3), "", ""},
		{fmt.Sprintf("heap retained after those %d samples (%.0f h at one a second)", samples, (time.Duration(samples) * time.Second).Hours()),
			fmt.Sprintf("%+.1f KiB", float64(grown)/1024), "no growth", verdict(grown <= 16<<10)},
	}, nil
}

// taskTableBuckets is the established-connection hash table of a 2 GiB
// Fargate task's kernel: the kernel sizes it to the memory (a bucket per
// 128 KiB), and reading /proc/net/tcp walks all of it.
const taskTableBuckets = 16384

// sandboxed runs this program with args in a task-like sandbox: a network
// namespace of its own whose table has taskTableBuckets buckets
// (net.ipv4.tcp_child_ehash_entries) and a PID namespace of its own, so
// that /proc shows a task's few processes, not this host's. It returns the
// rows the child prints, or one row saying why it could not run: it needs
// root, ip(8) and unshare(1).
func sandboxed(args ...string) ([]row, error) {
	const knob = "/proc/sys/net/ipv4/tcp_child_ehash_entries"
	old, err := os.ReadFile(knob)
	_, ipErr := exec.LookPath("ip")
	_, unshareErr := exec.LookPath("unshare")
	if err != nil || ipErr != nil || unshareErr != nil || os.Geteuid() != 0 {
		return []row{{"task-like sandbox", "not measured: needs root, ip(8), unshare(1) and " + knob, "", ""}}, nil
	}
	if err := os.WriteFile(knob, []byte(strconv.Itoa(taskTableBuckets)), 0o644); err != nil {
		return nil, err
	}
	defer func() { _ = os.WriteFile(knob, old, 0o644) }()
	ns := fmt.Sprintf("bastion-ttl-bench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("ip", "netns", "del", ns).Run() }()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("unshare", append([]string{"--pid", "--fork", "--mount-proc", "ip", "netns", "exec", ns, self}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("the sandbox: %w", err)
	}
	var rows []row
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r []string
		if err := json.Unmarshal([]byte(l), &r); err != nil || len(r) != 4 {
			return nil, fmt.Errorf("the sandbox printed %q", l)
		}
		rows = append(rows, row{r[0], r[1], r[2], r[3]})
	}
	return rows, nil
}

// inSandbox is the sandbox's side: loopback up, then the session rows,
// printed as one JSON array a line.
func inSandbox(supervisor string, window time.Duration, samples int) error {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	wake := benchWake(10)
	rows, err := sessionRows(supervisor, window, samples, fmt.Sprintf("task-like sandbox (a %d-bucket table, own PID namespace)", taskTableBuckets), true)
	if err != nil {
		return err
	}
	rows = append(rows, wake)
	for _, r := range rows {
		b, _ := json.Marshal([]string{r.what, r.value, r.target, r.verdict})
		fmt.Println(string(b))
	}
	return nil
}

// sessionRows measures the sampling sidecar and one sample in process, where.
func sessionRows(supervisor string, window time.Duration, samples int, where string, task bool) ([]row, error) {
	rows, err := benchSampling(supervisor, window, where, task)
	if err != nil {
		return nil, err
	}
	in, err := benchSampleInProcess(samples, where)
	if err != nil {
		return nil, err
	}
	return append(rows, in...), nil
}

// benchSessions is every session-sampling row: on this host, and in the
// task-like sandbox, which is what a bastion's sidecar sees.
func benchSessions(supervisor string, window time.Duration) ([]row, error) {
	const samples = 36_000
	host, err := sessionRows(supervisor, window, samples, "this host", false)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(supervisor)
	if err != nil {
		return nil, err
	}
	task, err := sandboxed("-sessions-in-sandbox", "-supervisor", abs, "-idle", window.String(), "-samples", strconv.Itoa(samples))
	if err != nil {
		return nil, err
	}
	return append(host, task...), nil
}

// benchWake is what any Go program pays to wake from a timer here: the CPU
// time of a process that only sleeps a second, n times. It is the floor
// under the sidecar's cost per sample.
func benchWake(n int) row {
	cpu0, _ := schedstatNS(os.Getpid())
	for range n {
		time.Sleep(time.Second)
	}
	cpu1, _ := schedstatNS(os.Getpid())
	return row{"for scale: a Go process that only wakes from a 1 s timer, CPU per wake on this machine", fmt.Sprintf("%.2f ms", float64(cpu1-cpu0)/1e6/float64(n)), "", ""}
}
