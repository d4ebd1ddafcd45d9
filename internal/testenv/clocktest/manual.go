package clocktest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
)

var _ clock.Clock = (*Manual)(nil)

// Manual is a clock for tests of code that sleeps in several goroutines at
// once: its time moves only when the test calls Advance, and Sleep blocks
// until then. Fake's instant sleeps would let one goroutine's sleep move
// the time under another's.
type Manual struct {
	mu        sync.Mutex
	now       time.Time
	sleepers  []*sleeper
	deadlines deadlines
}

type sleeper struct {
	d    time.Duration
	wake time.Time
	done chan struct{}
}

// NewManual returns a manual clock reading now.
func NewManual(now time.Time) *Manual { return &Manual{now: now} }

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Sleep blocks until Advance has moved the time on by d, or ctx ends.
func (m *Manual) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	m.mu.Lock()
	s := &sleeper{d: d, wake: m.now.Add(d), done: make(chan struct{})}
	m.sleepers = append(m.sleepers, s)
	m.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		m.sleepers = slices.DeleteFunc(m.sleepers, func(o *sleeper) bool { return o == s })
		m.mu.Unlock()
		return ctx.Err()
	}
}

// WithDeadline returns a context that ends once Advance reaches t. Its Err
// is context.Canceled; its Cause, context.DeadlineExceeded.
func (m *Manual) WithDeadline(ctx context.Context, t time.Time) (context.Context, context.CancelFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deadlines.add(ctx, t, m.now)
}

// Advance moves the time on by d, and wakes the sleepers and ends the
// deadline contexts whose time has come.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	m.sleepers = slices.DeleteFunc(m.sleepers, func(s *sleeper) bool {
		if s.wake.After(m.now) {
			return false
		}
		close(s.done)
		return true
	})
	m.deadlines.fire(m.now)
}

// Sleeping returns the durations the pending sleeps were asked for, in the
// order they began.
func (m *Manual) Sleeping() []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []time.Duration
	for _, s := range m.sleepers {
		out = append(out, s.d)
	}
	return out
}
