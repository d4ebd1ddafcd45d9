package lifetime

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

var start = time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)

func TestLifetimeWithFakeClock(t *testing.T) {
	l := Lifetime{Start: start, TTL: 30 * time.Minute}
	clk := clocktest.NewFake(start)
	ctx := context.Background()

	if want := time.Date(2026, 11, 24, 10, 30, 0, 123456789, time.UTC); !l.Deadline().Equal(want) {
		t.Fatalf("Deadline = %v, want %v", l.Deadline(), want)
	}
	if l.Expired(clk.Now()) || l.Left(clk.Now()) != 30*time.Minute {
		t.Fatalf("at start: expired=%v left=%v", l.Expired(clk.Now()), l.Left(clk.Now()))
	}
	_ = clk.Sleep(ctx, 30*time.Minute-time.Nanosecond)
	if l.Expired(clk.Now()) || l.Left(clk.Now()) != time.Nanosecond {
		t.Fatalf("1ns before: expired=%v left=%v", l.Expired(clk.Now()), l.Left(clk.Now()))
	}
	_ = clk.Sleep(ctx, time.Nanosecond)
	if !l.Expired(clk.Now()) || l.Left(clk.Now()) != 0 {
		t.Fatalf("at deadline: expired=%v left=%v", l.Expired(clk.Now()), l.Left(clk.Now()))
	}
	_ = clk.Sleep(ctx, time.Hour)
	if !l.Expired(clk.Now()) || l.Left(clk.Now()) != 0 {
		t.Fatalf("after: expired=%v left=%v", l.Expired(clk.Now()), l.Left(clk.Now()))
	}
}

func TestLifetimeUsesWallClockAcrossZones(t *testing.T) {
	l := Lifetime{Start: start, TTL: time.Hour}
	sydney := time.FixedZone("AEDT", 11*3600)
	if l.Expired(start.Add(59 * time.Minute).In(sydney)) {
		t.Fatal("time zone of now changed the decision")
	}
}

func TestStopReason(t *testing.T) {
	l := Lifetime{Start: start.In(time.FixedZone("X", 3600)), TTL: 30 * time.Minute}
	if got, want := l.StopReason(), "TTL 30m0s expired (started 2026-11-24T10:00:00Z)"; got != want {
		t.Fatalf("StopReason = %q, want %q", got, want)
	}
}

func ExampleLifetime() {
	l := Lifetime{Start: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), TTL: 2 * time.Hour}
	now := time.Date(2026, 11, 24, 11, 15, 0, 0, time.UTC)
	fmt.Println(l.Deadline().Format(time.RFC3339), l.Left(now), l.Expired(now))
	fmt.Println(l.StopReason())
	// Output:
	// 2026-11-24T12:00:00Z 45m0s false
	// TTL 2h0m0s expired (started 2026-11-24T10:00:00Z)
}
