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

// A manual clock's sleeps wait for Advance, each to its own time; a
// cancelled one is no longer pending.
func TestManual(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewManual(t0)
	short, long := make(chan error, 1), make(chan error, 1)
	go func() { short <- m.Sleep(context.Background(), time.Second) }()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { long <- m.Sleep(ctx, time.Minute) }()
	for len(m.Sleeping()) < 2 {
		time.Sleep(time.Millisecond)
	}
	m.Advance(999 * time.Millisecond)
	select {
	case <-short:
		t.Fatal("a 1s sleep returned after 999ms")
	case <-time.After(20 * time.Millisecond):
	}
	m.Advance(time.Millisecond)
	if err := <-short; err != nil {
		t.Fatal(err)
	}
	if got := m.Sleeping(); len(got) != 1 || got[0] != time.Minute {
		t.Fatalf("pending %v, want the minute's", got)
	}
	cancel()
	if err := <-long; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sleep: %v", err)
	}
	if got := m.Sleeping(); len(got) != 0 || !m.Now().Equal(t0.Add(time.Second)) {
		t.Fatalf("pending %v at %v", got, m.Now())
	}
	dctx, dcancel := m.WithDeadline(context.Background(), t0.Add(2*time.Second))
	defer dcancel()
	m.Advance(time.Second)
	if !errors.Is(context.Cause(dctx), context.DeadlineExceeded) {
		t.Fatalf("deadline context at its deadline: %v", context.Cause(dctx))
	}
}
