package sweep_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/sweep"
)

type fakeLedger struct {
	mu    sync.Mutex
	stops map[string]ledger.Stop
	err   error
}

func (f *fakeLedger) SweptStop(_ context.Context, arn string, s ledger.Stop) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops[arn] = s
	return f.err
}

// Each stop the sweeper makes is recorded, in its own words; a dry run
// records none, and a ledger that fails holds no stop back.
func TestSweepRecordsItsStops(t *testing.T) {
	for _, fails := range []bool{false, true} {
		f := newFixture(t, "bastions")
		l := &fakeLedger{stops: map[string]ledger.Stop{}}
		if fails {
			l.err = errors.New("ledger down")
		}
		f.sw.Ledger = l
		f.ecs.Add(bastion("bastions", 1, 2*time.Hour, "1h"), bastion("bastions", 2, time.Minute, "1h"))
		rep, err := f.sw.Run(context.Background())
		if err != nil || rep.Stopped != 1 {
			t.Fatalf("ledger fails %v: %+v %v", fails, rep, err)
		}
		s, ok := l.stops[taskARN("bastions", 1)]
		if len(l.stops) != 1 || !ok || !s.At.Equal(now) || !strings.HasPrefix(s.Why, sweep.ReasonPrefix+"TTL 1h0m0s expired") {
			t.Errorf("recorded %+v", l.stops)
		}
		if got := strings.Contains(f.logs.String(), "sweeper's stop not recorded"); got != fails {
			t.Errorf("failure logged %v, want %v", got, fails)
		}
	}
	f := newFixture(t, "bastions")
	f.sw.DryRun = true
	l := &fakeLedger{stops: map[string]ledger.Stop{}}
	f.sw.Ledger = l
	f.ecs.Add(bastion("bastions", 1, 2*time.Hour, "1h"))
	if _, err := f.sw.Run(context.Background()); err != nil || len(l.stops) != 0 {
		t.Errorf("dry run recorded %v (%v)", l.stops, err)
	}
}
