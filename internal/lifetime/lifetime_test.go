package lifetime

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
	if l.Expired(clk.Now()) || Left(l.Deadline(), clk.Now()) != 30*time.Minute {
		t.Fatalf("at start: expired=%v left=%v", l.Expired(clk.Now()), Left(l.Deadline(), clk.Now()))
	}
	_ = clk.Sleep(ctx, 30*time.Minute-time.Nanosecond)
	if l.Expired(clk.Now()) {
		t.Fatalf("1ns before: expired")
	}
	_ = clk.Sleep(ctx, time.Nanosecond)
	if !l.Expired(clk.Now()) || Left(l.Deadline(), clk.Now()) != 0 {
		t.Fatalf("at deadline: expired=%v left=%v", l.Expired(clk.Now()), Left(l.Deadline(), clk.Now()))
	}
	_ = clk.Sleep(ctx, time.Hour)
	if !l.Expired(clk.Now()) || Left(l.Deadline(), clk.Now()) != 0 {
		t.Fatalf("after: expired=%v left=%v", l.Expired(clk.Now()), Left(l.Deadline(), clk.Now()))
	}
}

func TestLifetimeUsesWallClockAcrossZones(t *testing.T) {
	l := Lifetime{Start: start, TTL: time.Hour}
	sydney := time.FixedZone("AEDT", 11*3600)
	if l.Expired(start.Add(59 * time.Minute).In(sydney)) {
		t.Fatal("time zone of now changed the decision")
	}
}

// Time left is rounded to the nearest second (a warning fired just after
// its mark says the mark), and LeftText cuts that to the minute from a
// minute on: nobody is told more than half a second too much.
func TestLeft(t *testing.T) {
	deadline := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		left time.Duration // deadline - now
		want time.Duration
		text string
	}{
		{2 * time.Hour, 2 * time.Hour, "2h"},
		{2*time.Hour + 59*time.Second, 2*time.Hour + 59*time.Second, "2h"},
		{time.Hour + 5*time.Minute + 59*time.Second + 400*time.Millisecond, time.Hour + 5*time.Minute + 59*time.Second, "1h5m"},
		{time.Hour + 5*time.Minute + 59*time.Second + 600*time.Millisecond, time.Hour + 6*time.Minute, "1h6m"},
		{10*time.Minute - 3*time.Millisecond, 10 * time.Minute, "10m"}, // the 10m warning, fired 3 ms late
		{12*time.Minute + 30*time.Second, 12*time.Minute + 30*time.Second, "12m"},
		{time.Minute, time.Minute, "1m"},
		{time.Minute - time.Nanosecond, time.Minute, "1m"},
		{59*time.Second + 400*time.Millisecond, 59 * time.Second, "59s"},
		{45*time.Second + 700*time.Millisecond, 46 * time.Second, "46s"},
		{45*time.Second + 300*time.Millisecond, 45 * time.Second, "45s"},
		{999 * time.Millisecond, time.Second, "1s"},
		{499 * time.Millisecond, 0, "0s"},
		{time.Nanosecond, 0, "0s"},
		{0, 0, "0s"},
		{-time.Hour, 0, "0s"},
	} {
		now := deadline.Add(-tt.left)
		if got := Left(deadline, now); got != tt.want {
			t.Errorf("Left with %v to go = %v, want %v", tt.left, got, tt.want)
		}
		if got := LeftText(deadline, now); got != tt.text {
			t.Errorf("LeftText with %v to go = %q, want %q", tt.left, got, tt.text)
		}
	}
}

func TestStopReason(t *testing.T) {
	l := Lifetime{Start: start.In(time.FixedZone("X", 3600)), TTL: 30 * time.Minute}
	if got, want := l.StopReason(), "TTL 30m0s expired (started 2026-11-24T10:00:00Z)"; got != want {
		t.Fatalf("StopReason = %q, want %q", got, want)
	}
}

// A stop reason is cut to ECS's 255 characters, not bytes, and never inside
// a character.
func TestCutStopReason(t *testing.T) {
	for _, tt := range []struct {
		reason string
		want   string
	}{
		{"", ""},
		{"bastion-ttl: stopped by alice", "bastion-ttl: stopped by alice"},
		{strings.Repeat("a", 255), strings.Repeat("a", 255)},
		{strings.Repeat("a", 256), strings.Repeat("a", 255)},
		{strings.Repeat("ü", 255), strings.Repeat("ü", 255)}, // 510 bytes: not cut
		{strings.Repeat("ü", 300), strings.Repeat("ü", 255)},
		{strings.Repeat("a", 254) + "日本", strings.Repeat("a", 254) + "日"},
	} {
		got := CutStopReason(tt.reason)
		if got != tt.want || !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxStopReason {
			t.Errorf("CutStopReason(%d runes) = %d runes %q, want %d runes", utf8.RuneCountInString(tt.reason), utf8.RuneCountInString(got), got, utf8.RuneCountInString(tt.want))
		}
	}
}

func ExampleLifetime() {
	l := Lifetime{Start: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), TTL: 2 * time.Hour}
	now := time.Date(2026, 11, 24, 11, 15, 0, 0, time.UTC)
	fmt.Println(l.Deadline().Format(time.RFC3339), Left(l.Deadline(), now), l.Expired(now))
	fmt.Println(l.StopReason())
	// Output:
	// 2026-11-24T12:00:00Z 45m0s false
	// TTL 2h0m0s expired (started 2026-11-24T10:00:00Z)
}
