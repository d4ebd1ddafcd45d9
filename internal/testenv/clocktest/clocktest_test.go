package clocktest

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	_ = f.Sleep(context.Background(), time.Minute)
	f.Advance(time.Second)
	if got := f.Now().Sub(t0); got != time.Minute+time.Second {
		t.Fatalf("advanced %v", got)
	}
	if s := f.Sleeps(); len(s) != 1 || s[0] != time.Minute {
		t.Fatalf("sleeps %v", s)
	}
}

func TestFakeWithDeadline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	ctx, cancel := f.WithDeadline(context.Background(), t0.Add(10*time.Second))
	defer cancel()
	if err := f.Sleep(ctx, 4*time.Second); err != nil || ctx.Err() != nil {
		t.Fatalf("before the deadline: %v, %v", err, ctx.Err())
	}
	// A sleep past the deadline stops at it, as a timer raced against it would.
	if err := f.Sleep(ctx, time.Minute); err == nil || !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		t.Fatalf("after the deadline: %v, cause %v", err, context.Cause(ctx))
	}
	if got := f.Now().Sub(t0); got != 10*time.Second {
		t.Fatalf("time %v, want the deadline", got)
	}
	past, cancel2 := f.WithDeadline(context.Background(), t0)
	defer cancel2()
	if past.Err() == nil {
		t.Fatal("a deadline already past did not end the context")
	}
}

// A cancelled deadline no longer stops a sleep.
func TestFakeCancelledDeadlineIsForgotten(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	_, cancel := f.WithDeadline(context.Background(), t0.Add(time.Second))
	cancel()
	if err := f.Sleep(context.Background(), time.Minute); err != nil || f.Now().Sub(t0) != time.Minute {
		t.Fatalf("slept to %v (%v), want a full minute", f.Now().Sub(t0), err)
	}
}
