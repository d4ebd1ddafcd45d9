// Package clocktest holds the fake clock.Clocks of tests, so that code
// deciding by the clock is tested without waiting. Fake's Sleep returns at
// once and moves the time on; Manual's waits until the test advances it.
//
// Test support only, like the rest of internal/testenv: no production
// binary links it.
package clocktest

import (
	"context"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
)

var _ clock.Clock = (*Fake)(nil)

// Fake is a clock for tests: Sleep returns at once and moves the time on.
// Contexts from its WithDeadline end when its time reaches their deadline.
type Fake struct {
	mu        sync.Mutex
	now       time.Time
	sleeps    []time.Duration
	deadlines deadlines
}

// WithDeadline returns a context that ends once the fake time reaches t.
// Its Err is context.Canceled; its Cause, context.DeadlineExceeded.
func (f *Fake) WithDeadline(ctx context.Context, t time.Time) (context.Context, context.CancelFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deadlines.add(ctx, t, f.now)
}

// deadlines are the pending contexts of a fake clock's WithDeadline; the
// clock's lock guards them.
type deadlines []fakeDeadline

type fakeDeadline struct {
	at     time.Time
	cancel context.CancelCauseFunc
	done   <-chan struct{}
}

// add is WithDeadline at the time now.
func (ds *deadlines) add(ctx context.Context, t, now time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	*ds = append(*ds, fakeDeadline{at: t, cancel: cancel, done: ctx.Done()})
	ds.fire(now)
	return ctx, func() { cancel(context.Canceled) }
}

// fire ends the contexts whose deadline has come by now, and forgets those
// already ended otherwise (cancelled), so that they stop no later Sleep.
func (ds *deadlines) fire(now time.Time) {
	kept := (*ds)[:0]
	for _, d := range *ds {
		select {
		case <-d.done:
			continue
		default:
		}
		if d.at.After(now) {
			kept = append(kept, d)
		} else {
			d.cancel(context.DeadlineExceeded)
		}
	}
	*ds = kept
}

// next is the earliest pending deadline, if any.
func (ds deadlines) next() (time.Time, bool) {
	var next time.Time
	for _, d := range ds {
		if next.IsZero() || d.at.Before(next) {
			next = d.at
		}
	}
	return next, !next.IsZero()
}

// NewFake returns a fake clock reading now.
func NewFake(now time.Time) *Fake { return &Fake{now: now} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Sleep advances the fake time by d and records it. Like a timer raced
// against a deadline, it stops at the earliest pending WithDeadline
// deadline and then returns the context's error if that ended it.
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	if d > 0 {
		to := f.now.Add(d)
		f.deadlines.fire(f.now) // forget cancelled deadlines first
		if next, ok := f.deadlines.next(); ok && next.Before(to) {
			to = next
		}
		f.now = to
		f.deadlines.fire(f.now)
	}
	f.mu.Unlock()
	return ctx.Err()
}

// Advance moves the fake time by d; a negative d steps it back, as a wall
// clock may be.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.deadlines.fire(f.now)
}

// Sleeps returns the durations passed to Sleep, in order.
func (f *Fake) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}
