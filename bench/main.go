// Command bench measures what docs/performance.md's table reports and
// prints that table: `make bench` builds the binaries and runs it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
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

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

func main() {
	supervisor := flag.String("supervisor", "bin/supervisor", "the stripped supervisor binary")
	empty := flag.String("empty", "bin/empty", "an empty Go program")
	idle := flag.Duration("idle", 30*time.Second, "how long to watch the sidecar wait")
	usageWindow := flag.Duration("usage-window", 5*time.Minute, "how long to watch the waiting sidecars sample their usage")
	lagRuns := flag.Int("lag-runs", 7, "deadlines to measure the stop request's lag on")
	terminateLocal := flag.String("terminate", "bin/terminate-local/bootstrap", "the terminate bootstrap for this machine, run under the emulator")
	terminateARM := flag.String("terminate-arm64", "bin/terminate-arm64/bootstrap", "the terminate bootstrap as deployed (arm64)")
	only := flag.String("only", "", "sessions: only the session-sampling rows; usage: only the waiting sidecar's and usage sampling's; terminate: only the terminate function's")
	sandbox := flag.Bool("sessions-in-sandbox", false, "internal: the session rows, run inside the task-like sandbox")
	samples := flag.Int("samples", 36_000, "internal: session samples in process")
	flag.Parse()
	if *sandbox {
		if err := inSandbox(*supervisor, *idle, *samples); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *only != "" {
		var rows []row
		var err error
		switch *only {
		case "sessions":
			rows, err = benchSessions(*supervisor, *idle)
		case "usage":
			rows, err = usageRows(*supervisor, *idle, *usageWindow)
		case "terminate":
			rows, err = benchTerminate(*terminateLocal, *terminateARM)
		default:
			err = fmt.Errorf("-only=%s: use sessions, usage or terminate", *only)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		printTable(rows)
		return
	}
	if err := run(*supervisor, *empty, *idle, *usageWindow, *lagRuns, *terminateLocal, *terminateARM); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type row struct{ what, value, target, verdict string }

// benchTerminate is the terminate function's rows: warm in process and under
// the emulator, the proof, the cold start and the bootstrap's size.
func benchTerminate(terminateLocal, terminateARM string) ([]row, error) {
	warm, err := benchWarmHandler(2000)
	if err != nil {
		return nil, err
	}
	rie, err := testenv.FindTool("aws-lambda-rie") // make tools installs it
	if err != nil {
		return nil, err
	}
	cold, err := benchColdStart(rie, terminateLocal, 9)
	if err != nil {
		return nil, err
	}
	warmRIE, err := benchWarmEmulator(rie, terminateLocal, 500)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(terminateARM)
	if err != nil {
		return nil, err
	}
	proof, err := benchProve(2000)
	if err != nil {
		return nil, err
	}
	rows := append([]row{warmRIE}, warm...)
	return append(rows, proof, cold, row{"terminate bootstrap, linux/arm64, stripped", mib(st.Size()), "< 12 MB", verdict(float64(st.Size()) < 12e6)}), nil
}

func run(supervisor, empty string, idle, usageWindow time.Duration, lagRuns int, terminateLocal, terminateARM string) error {
	var rows []row
	check, err := benchCheck(supervisor, empty, 5)
	if err != nil {
		return err
	}
	rows = append(rows, check...)
	// The waiting sidecars and the session-sampling one side by side: each
	// is measured on its own threads, and the run is no longer.
	sampling := make(chan []row, 1)
	samplingErr := make(chan error, 1)
	go func() {
		r, err := benchSessions(supervisor, idle)
		sampling <- r
		samplingErr <- err
	}()
	waiting, err := benchWaiting(supervisor, idle, usageWindow)
	if err != nil {
		return err
	}
	if err := <-samplingErr; err != nil {
		return err
	}
	// Alone: it measures this process's heap.
	usageIn, err := benchUsageInProcess(10_000)
	if err != nil {
		return err
	}
	rows = append(rows, waiting...)
	rows = append(rows, usageIn...)
	rows = append(rows, <-sampling...)
	lag, err := benchLag(supervisor, lagRuns)
	if err != nil {
		return err
	}
	rows = append(rows, lag)
	st, err := os.Stat(supervisor)
	if err != nil {
		return err
	}
	rows = append(rows, row{"supervisor binary, static, stripped (linux/" + runtime.GOARCH + ")", mib(st.Size()), "<= 10 MB", verdict(float64(st.Size()) <= 10e6)})

	terminate, err := benchTerminate(terminateLocal, terminateARM)
	if err != nil {
		return err
	}
	rows = append(rows, terminate...)

	sw, err := benchSweep(10_000, 5)
	if err != nil {
		return err
	}
	rows = append(rows, sw)
	rows = append(rows, benchImage()...)

	printTable(rows)
	return nil
}

func printTable(rows []row) {
	cpu, _ := os.ReadFile("/proc/cpuinfo")
	model := "unknown CPU"
	for _, l := range strings.Split(string(cpu), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			break
		}
	}
	fmt.Printf("\nbastion-ttl benchmarks, %s, %d cores (%s), %s\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), model, runtime.Version())
	fmt.Println("| measure | result | target | |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s |\n", r.what, r.value, r.target, r.verdict)
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**NOT met**"
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB (%.2f MB)", float64(n)/(1<<20), float64(n)/1e6)
}

// metadataServer serves the real v4 Fargate sample, its container started
// at startedAt, and its stats.
func metadataServer(startedAt time.Time) (*httptest.Server, error) {
	return newStatsServer(startedAt).Server, nil
}

func supervisorEnv(meta, api, ttl, tmp string) []string {
	return append(os.Environ(),
		"ECS_CONTAINER_METADATA_URI_V4="+meta+"/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-2495160603",
		"BASTION_TERMINATE_URL="+api+"/terminate",
		"BASTION_TTL="+ttl,
		"AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=bench", "AWS_REGION=eu-west-1",
		"TMPDIR="+tmp)
}

// benchCheck times the healthy health check against the shell script and an
// empty Go program. The three are timed in interleaved rounds (one hyperfine
// run each) so that drift of a shared machine hits them alike; each figure is
// the median over rounds of the per-round medians, and ratios are per round.
func benchCheck(supervisor, empty string, rounds int) ([]row, error) {
	meta, err := metadataServer(time.Now())
	if err != nil {
		return nil, err
	}
	defer meta.Close()
	tmp, err := os.MkdirTemp("", "bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var check, script, floor, speedup, overFloor []float64
	for round := range rounds {
		out := filepath.Join(tmp, fmt.Sprintf("hyperfine-%d.json", round))
		cmd := exec.Command("hyperfine", "-N", "--warmup", "10", "--runs", "100", "--style", "none", "--export-json", out,
			"-n", "supervisor check", supervisor+" check",
			"-n", "curl+jq+date script", "bench/check.sh",
			"-n", "empty Go program", empty)
		cmd.Env = append(supervisorEnv(meta.URL, "http://127.0.0.1:9", "30m", tmp), "BASTION_TTL_SECONDS=1800")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("hyperfine: %w", err)
		}
		var res struct {
			Results []struct {
				Median   float64   `json:"median"`
				ExitCode []float64 `json:"exit_codes"`
			} `json:"results"`
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &res); err != nil || len(res.Results) != 3 {
			return nil, fmt.Errorf("hyperfine output: %v", err)
		}
		c, s, f := res.Results[0].Median*1e3, res.Results[1].Median*1e3, res.Results[2].Median*1e3
		check, script, floor = append(check, c), append(script, s), append(floor, f)
		speedup, overFloor = append(speedup, s/c), append(overFloor, c/f)
	}
	up, over := median(speedup), median(overFloor)
	return []row{
		{"`supervisor check`, healthy, median", fmt.Sprintf("%.2f ms", median(check)), "", ""},
		{"curl+jq+date script (bench/check.sh), median", fmt.Sprintf("%.2f ms", median(script)), "", ""},
		{"empty Go program, median", fmt.Sprintf("%.2f ms", median(floor)), "", ""},
		{"check speed-up over the script", fmt.Sprintf("%.1fx (rounds: %s)", up, list(speedup, "%.1f")), ">= 4x", verdict(up >= 4)},
		{"check time / empty Go program", fmt.Sprintf("%.2fx (rounds: %s)", over, list(overFloor, "%.2f")), "<= 2.5x", verdict(over <= 2.5)},
	}, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func list(v []float64, format string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

// cpuAndSwitches returns the process's CPU time (ms) and its threads' context switches.
func cpuAndSwitches(pid int) (int64, int, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	switches := 0
	for _, t := range tasks {
		for _, key := range []string{"voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"} {
			n, _ := statusField(t, key)
			switches += int(n)
		}
	}
	return (utime + stime) * 10, switches, nil // clock ticks of 10 ms
}

func procStatusKB(pid int, key string) (int64, error) {
	return statusField(fmt.Sprintf("/proc/%d/status", pid), key)
}

func statusField(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// benchLag measures how long after the deadline the stop request arrives.
func benchLag(supervisor string, runs int) (row, error) {
	var lags []time.Duration
	for range runs {
		got := make(chan time.Time, 1)
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/extend" { // the TTL's registration at start
				grantExtension(w, r)
				return
			}
			select {
			case got <- time.Now():
			default:
			}
			w.WriteHeader(http.StatusAccepted)
		}))
		startedAt := time.Now().Add(-10*time.Second + 1500*time.Millisecond)
		meta, err := metadataServer(startedAt)
		if err != nil {
			return row{}, err
		}
		tmp, _ := os.MkdirTemp("", "bench")
		cmd := exec.Command(supervisor, "watch")
		cmd.Env = supervisorEnv(meta.URL, api.URL, "10s", tmp)
		if err := cmd.Start(); err != nil {
			return row{}, err
		}
		select {
		case at := <-got:
			lags = append(lags, at.Sub(startedAt.Add(10*time.Second)))
		case <-time.After(10 * time.Second):
			return row{}, fmt.Errorf("no stop request")
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		api.Close()
		meta.Close()
		os.RemoveAll(tmp)
	}
	slices.Sort(lags)
	median, worst := lags[len(lags)/2], lags[len(lags)-1]
	return row{fmt.Sprintf("deadline to stop request received, median (max) of %d", runs),
		fmt.Sprintf("%.1f ms (%.1f ms)", ms(median), ms(worst)), "<= 100 ms", verdict(worst <= 100*time.Millisecond && lags[0] >= 0)}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
