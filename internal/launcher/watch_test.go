package launcher

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// The bastion is extended, then stops (its deadline) while connected: the
// person is told of the new deadline, then of the stop with its reason,
// and connect ends.
func TestConnectSaysWhenTheBastionStops(t *testing.T) {
	standInPlugin(t)
	r := newRig(t)
	host, dbPort := database(t)
	local := freePort(t)
	c := r.connect(t, "--to", fmt.Sprintf("%s:%d", host, dbPort), "--local-port", strconv.Itoa(local))
	c.until(t, "through ", 1)
	exchange(t, local, "working")
	arn := r.running(t)[0]
	// Someone on the bastion extends it: the tag moves, and connect says so.
	if _, err := r.ecs.TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: aws.String(arn),
		Tags: []types.Tag{{Key: aws.String(ttltag.Key), Value: aws.String("3h0m0s")}}}); err != nil {
		t.Fatal(err)
	}
	c.until(t, "the bastion's TTL is now 3h0m0s: it stops at ", 1)
	if !strings.Contains(c.out.String(), ", 3h left\n") && !strings.Contains(c.out.String(), ", 2h59m left\n") {
		t.Errorf("the new deadline's time left:\n%s", c.out.String())
	}
	if _, err := r.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("bastions"), Task: aws.String(arn),
		Reason: aws.String("bastion-ttl: TTL 2h0m0s expired")}); err != nil {
		t.Fatal(err)
	}
	code := c.exit(t)
	want := "bastion-ttl: the bastion " + taskID(arn) + " stopped (bastion-ttl: TTL 2h0m0s expired); the connection is closed"
	if code != 1 || !strings.Contains(c.errs.String(), want) {
		t.Fatalf("exit %d, want 1 and %q:\n%s%s", code, want, c.out.String(), c.errs.String())
	}
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(local), time.Second); err == nil {
		t.Error("the local port still listens after the bastion stopped")
	}
}

// connect reads the bastion-ttl tag by the rule ls and the sweeper read it
// (ttltag.Lifetime under the stack's cap): a tag saying 48h under a cap of
// 12h is announced as start+12h, the deadline ls shows and the sweeper
// honours; one that says no TTL means the cap.
func TestConnectAnnouncesTheDeadlineLsShows(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	start := now.Add(-time.Hour)
	const (
		cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
		maxTTL  = 12 * time.Hour
	)
	for _, tt := range []struct{ value, line string }{
		{"48h", "the bastion's TTL is now 12h0m0s: it stops at 23:00:00Z, 11h left\n"},
		{"forever", "the bastion's TTL is now 12h0m0s: it stops at 23:00:00Z, 11h left\n"},
		{"2h", "the bastion's TTL is now 2h0m0s: it stops at 13:00:00Z, 1h left\n"},
	} {
		arn := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"
		api := ecsapi.New()
		api.Add(ecsapi.Task{ARN: arn, ClusterARN: cluster, StartedAt: start, Tags: map[string]string{ttltag.Key: tt.value}})
		srv := httptest.NewServer(api)
		defer srv.Close()
		var out bytes.Buffer
		env := Env{Environ: map[string]string{}, Clock: clocktest.NewFake(now), Stdout: &out,
			ECS: ecs.New(ecs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})}
		bastions, err := list(t.Context(), env, "bastions", maxTTL)
		if err != nil || len(bastions) != 1 || bastions[0].Deadline == nil {
			t.Fatalf("%s: ls listed %+v, %v", tt.value, bastions, err)
		}
		c := &connection{env: env, cluster: "bastions", arn: arn, maxTTL: maxTTL, rearm: make(chan struct{}, 1)}
		if reason, gone := c.gone(t.Context()); gone {
			t.Fatalf("%s: gone (%s)", tt.value, reason)
		}
		want, _ := ttltag.Lifetime(tt.value, start, maxTTL)
		if !c.stopsAt().Equal(*bastions[0].Deadline) || !c.stopsAt().Equal(want.Deadline()) || out.String() != tt.line {
			t.Errorf("tag %q under a cap of %v: connect announced %v (%q); ls shows %v; the sweeper honours %v",
				tt.value, maxTTL, c.stopsAt(), out.String(), *bastions[0].Deadline, want.Deadline())
		}
	}
}

// The warnings before the deadline, on a fake clock: one at each mark, in
// order, at the mark; a mark already passed is not warned of.
func TestConnectWarnsBeforeTheDeadline(t *testing.T) {
	now := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		left   time.Duration
		sleeps []time.Duration
		want   string
	}{
		{"both marks", 25 * time.Minute, []time.Duration{15 * time.Minute, 9 * time.Minute},
			"warning: the bastion 0123 stops in 10m (at 14:25:00Z)\nwarning: the bastion 0123 stops in 1m (at 14:25:00Z)\n"},
		{"past the first", 5 * time.Minute, []time.Duration{4 * time.Minute},
			"warning: the bastion 0123 stops in 1m (at 14:05:00Z)\n"},
		{"past both", 30 * time.Second, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.NewFake(now)
			var out bytes.Buffer
			c := &connection{env: Env{Stdout: &out, Clock: clk}, arn: "arn:aws:ecs:eu-west-1:1:task/bastions/0123", deadline: now.Add(tc.left)}
			c.warnBefore(t.Context(), c.deadline)
			if out.String() != tc.want || fmt.Sprint(clk.Sleeps()) != fmt.Sprint(tc.sleeps) {
				t.Fatalf("said %q after sleeps %v; want %q after %v", out.String(), clk.Sleeps(), tc.want, tc.sleeps)
			}
		})
	}
}

// When the deadline moves (an extension), the warnings are armed anew
// against the new one.
func TestConnectWarnsAnewWhenTheDeadlineMoves(t *testing.T) {
	now := time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
	clk := clocktest.NewFake(now)
	out := &testenv.Buffer{}
	c := &connection{env: Env{Stdout: out, Clock: clk}, arn: "arn:aws:ecs:eu-west-1:1:task/bastions/0123", deadline: now.Add(25 * time.Minute), rearm: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.warn(ctx); close(done) }()
	waitLines := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(out.String(), "\n") < n {
			if time.Now().After(deadline) {
				t.Fatalf("want %d lines:\n%s", n, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitLines(2)
	c.mu.Lock()
	c.deadline = clk.Now().Add(time.Hour)
	moved := c.deadline
	c.mu.Unlock()
	c.rearm <- struct{}{}
	waitLines(4)
	cancel()
	<-done
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := "warning: the bastion 0123 stops in 10m (at " + when(moved) + ")"
	if len(lines) != 4 || lines[2] != want || !strings.HasPrefix(lines[3], "warning: the bastion 0123 stops in 1m (at "+when(moved)) {
		t.Fatalf("after the move:\n%s\nwant %q and the 1m one", out.String(), want)
	}
}
