package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// The demo's whole flow, as `make demo` runs it, with a 3 s TTL: on Linux a
// session (through bastion-ttl connect's forward of the bastion's port,
// which keeps it alive past its idle timeout), an extension, and an idle
// stop after the first deadline, with a second person connected to a
// database through bastion-ttl connect, bytes through it, told when the
// bastion stops.
func TestDemo(t *testing.T) {
	testenv.RealTime(t) // the supervisor's own loop, on the wall clock
	t.Parallel()
	if runtime.GOOS != "linux" {
		testenv.Skipped(t, "the session scenario reads /proc/net/tcp: Linux only")
	}
	const ttl = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	began := time.Now()
	if err := run(ctx, ttl, true, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if took := time.Since(began); took < ttl+time.Second {
		t.Errorf("the task was stopped after %v: the extension did not carry it past its %v TTL", took, ttl)
	}
	for _, want := range []string{
		"signature verified", "ops logs in", "$ supervisor extend 1m: extended: TTL 1m3s, ",
		"TTL extended from 3s to 1m3s", "recorded 1m3s in the task's bastion-ttl tag",
		"$ supervisor status --short: ", "the first deadline: still running, extended",
		"warning: the bastion stops in 1s (idle limit)", "API answered 202", "SIGTERM: exit 0",
		"task " + taskID + " STOPPED", `bastion-ttl: idle 3s: no session since `,
		"reusing your bastion " + taskID + " in default (stops at ",
		// ops logs in through connect's forward of the bastion's own port: that session keeps it alive.
		"ops: connect", taskID + "'s port ", "ops logs in through localhost:", "the bastion's TTL is now 1m3s: it stops at ",
		"bastion-ttl: the bastion " + taskID + " stopped (bastion-ttl: idle 3s: no session since ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("timeline lacks %q:\n%s", want, out.String())
		}
	}
	wantTwoForwards(t, out.String())
	// The ledger's line ends it: stopped for idleness, well before the
	// extended TTL's deadline, with the sidecar's usage.
	wantLedgerLine(t, out.String(), `^ledger: ended idle, on time, lateness -5\d\.\d+s, peak memory \d+\.\d MiB, CPU \d+\.\d\ds, task 256 CPU units / 512 MiB for \d+(\.\d+)?s, cost \$0\.000206 at us-east-1's rates of \d{4}-\d\d-\d\d \(billed 1m0s\)$`)
}

// wantTwoForwards checks the laptop's connect: one command, two
// connections of its bastion-ttl.yaml, each a forward through the one
// bastion with its own status line, and bytes through each. Its local
// ports are the kernel's: the remote ports are taken on this machine.
func wantTwoForwards(t *testing.T, out string) {
	t.Helper()
	if n := strings.Count(out, "laptop: connect    $ bastion-ttl connect db cache --ttl 30m\n"); n != 1 {
		t.Errorf("the laptop ran connect db cache %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "laptop: connect    reusing your bastion "+taskID); n != 1 {
		t.Errorf("the laptop's connect reused the bastion %d times, want once (two forwards, one bastion):\n%s", n, out)
	}
	for _, c := range []struct{ name, client, sent string }{{"db", "psql", "select 1"}, {"cache", "redis-cli", "PING"}} {
		status := regexp.MustCompile(`laptop: connect    `+c.name+`: localhost:(\d+) -> 127\.0\.0\.1:(\d+) through `+taskID+` \(stops at `).FindAllStringSubmatch(out, -1)
		if len(status) != 1 {
			t.Errorf("%d status lines for %s, want one %q: line:\n%s", len(status), c.name, c.name, out)
			continue
		}
		local, remote := status[0][1], status[0][2]
		if local == remote {
			t.Errorf("%s: local port %s is the remote one, which this machine's %s listens on", c.name, local, c.name)
		}
		answer := fmt.Sprintf("laptop             %s on localhost:%s sent %q, ", c.client, local, c.sent)
		if !strings.Contains(out, answer) || !strings.Contains(out, fmt.Sprintf("127.0.0.1:%s answered %q", remote, "pong: "+c.sent)) {
			t.Errorf("no answer through %s's forward (want %q ... from 127.0.0.1:%s):\n%s", c.name, answer, remote, out)
		}
	}
}

// wantLedgerLine checks the demo's last line: the ledger's, matching
// pattern (or saying why there is none, where tests may skip).
func wantLedgerLine(t *testing.T, out, pattern string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if why, skipped := strings.CutPrefix(last, "ledger: not run ("); skipped {
		testenv.Missing(t, "the ledger", why)
		return
	}
	if !regexp.MustCompile(pattern).MatchString(last) {
		t.Errorf("last line %q, want the ledger's line matching %s", last, pattern)
	}
}

// Where sessions cannot be read, the demo shows the TTL alone: the bastion
// stops at its deadline while the person is connected through it, and
// bastion-ttl connect warns before and says so after.
func TestDemoTTLOnly(t *testing.T) {
	testenv.RealTime(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out bytes.Buffer
	began := time.Now()
	if err := run(ctx, 3*time.Second, false, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if took := time.Since(began); took < 3*time.Second {
		t.Errorf("the task was stopped after %v, before its 3s TTL", took)
	}
	for _, want := range []string{"API answered 202", "SIGTERM: exit 0", `bastion-ttl: TTL 3s expired (started `,
		"warning: the bastion " + taskID + " stops in 1s",
		"bastion-ttl: the bastion " + taskID + " stopped (bastion-ttl: TTL 3s expired (started "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("timeline lacks %q:\n%s", want, out.String())
		}
	}
	wantTwoForwards(t, out.String())
	wantLedgerLine(t, out.String(), `^ledger: ended ttl, on time, lateness \d+(\.\d+)?m?s, peak memory \d+\.\d MiB, CPU \d+\.\d\ds, task 256 CPU units / 512 MiB for \d+(\.\d+)?s, cost \$0\.000206 at us-east-1's rates of \d{4}-\d\d-\d\d \(billed 1m0s\)$`)
}
