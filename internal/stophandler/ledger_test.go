package stophandler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// fakeLedger records what the function hands the ledger, and fails with err.
type fakeLedger struct {
	registrations []ledger.Registration
	stops         []ledger.Stop
	err           error
}

func (f *fakeLedger) Extended(_ context.Context, _ string, r ledger.Registration) error {
	f.registrations = append(f.registrations, r)
	return f.err
}

func (f *fakeLedger) Stopping(_ context.Context, _ string, s ledger.Stop) error {
	f.stops = append(f.stops, s)
	return f.err
}

// POST /extend hands the ledger what was asked and granted, the cap, the
// supervisor's start and the task's owner and reason tags; POST /terminate
// its stop, how and why in the function's own words.
func TestLedgerRecords(t *testing.T) {
	f := &fakeECS{tags: map[string]map[string]string{taskARN: {ttltag.OwnerKey: "AROAEXAMPLE:alice", ttltag.ReasonKey: "INC-1234"}}}
	var log bytes.Buffer
	svc := newService(f, &log)
	l := &fakeLedger{}
	svc.Ledger = l
	started := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	b, _ := json.Marshal(stopapi.ExtendRequest{TaskARN: taskARN, TTL: "8h", StartedAt: started.Format(time.RFC3339Nano)})
	if resp, _ := svc.Handle(context.Background(), proven(extendEvent(string(b), self))); resp.StatusCode != 200 {
		t.Fatalf("extend: %d %s", resp.StatusCode, resp.Body)
	}
	if resp, _ := svc.Handle(context.Background(), proven(event("POST", body(taskARN, "TTL 4h0m0s expired (started 2026-12-01T09:00:00Z)"), self))); resp.StatusCode != 202 {
		t.Fatalf("terminate: %d %s", resp.StatusCode, resp.Body)
	}
	if len(l.registrations) != 1 || len(l.stops) != 1 {
		t.Fatalf("records %+v %+v", l.registrations, l.stops)
	}
	r := l.registrations[0]
	if r.Asked != 8*time.Hour || r.TTL != maxTTL || r.Cap != maxTTL || !r.Capped || !r.SupervisorStart.Equal(started) ||
		r.Owner != "AROAEXAMPLE:alice" || r.Reason != "INC-1234" || r.At.IsZero() {
		t.Errorf("registration %+v", r)
	}
	if s := l.stops[0]; s.How != ledger.EndingTTL || s.Why != "bastion-ttl: TTL 4h0m0s expired (started 2026-12-01T09:00:00Z)" || s.At.IsZero() {
		t.Errorf("stop %+v", s)
	}
	for reason, how := range map[string]ledger.Ending{"idle 15m: no session since 2026-12-01T09:10:00Z": ledger.EndingIdle, "": ledger.EndingOther, "done": ledger.EndingOther} {
		if got := stopHow(reason); got != how {
			t.Errorf("stopHow(%q) = %s, want %s", reason, got, how)
		}
	}
}

// A ledger that fails blocks nothing: the stop and the extension are
// answered as without it, and the failure is logged.
func TestLedgerFailureBlocksNothing(t *testing.T) {
	f := &fakeECS{tags: map[string]map[string]string{}}
	var log bytes.Buffer
	svc := newService(f, &log)
	svc.Ledger = &fakeLedger{err: errors.New("ProvisionedThroughputExceededException")}
	if resp, _ := svc.Handle(context.Background(), proven(extendEvent(extendBody(taskARN, "2h"), self))); resp.StatusCode != 200 {
		t.Fatalf("extend: %d %s", resp.StatusCode, resp.Body)
	}
	if resp, _ := svc.Handle(context.Background(), proven(event("POST", body(taskARN, "TTL 2h0m0s expired"), self))); resp.StatusCode != 202 || len(f.calls) != 1 {
		t.Fatalf("terminate: %d %s", resp.StatusCode, resp.Body)
	}
	if n := strings.Count(log.String(), `not recorded`); n != 2 {
		t.Errorf("%d failures logged, want 2:\n%s", n, log.String())
	}
}

// startedAt must be a time; none is fine (older supervisors). One the
// task cannot have started at (before now - MaxTTL - 1h, or in the
// future) is not recorded, and the extension goes through.
func TestExtendStartedAt(t *testing.T) {
	for given, want := range map[time.Time]bool{
		time.Now().Add(-time.Hour): true, time.Now().Add(-maxTTL - 2*time.Hour): false, time.Now().Add(time.Hour): false,
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC): false, time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC): false,
	} {
		b, _ := json.Marshal(stopapi.ExtendRequest{TaskARN: taskARN, TTL: "2h", StartedAt: given.Format(time.RFC3339Nano)})
		svc := newService(&fakeECS{tags: map[string]map[string]string{}}, new(bytes.Buffer))
		l := &fakeLedger{}
		svc.Ledger = l
		if resp, _ := svc.Handle(context.Background(), proven(extendEvent(string(b), self))); resp.StatusCode != 200 || len(l.registrations) != 1 {
			t.Fatalf("startedAt %v: %d %s", given, resp.StatusCode, resp.Body)
		}
		if got := !l.registrations[0].SupervisorStart.IsZero(); got != want {
			t.Errorf("startedAt %v recorded: %v, want %v", given, got, want)
		}
	}
	for given, want := range map[string]int{"": 200, "2026-12-01T09:00:00Z": 200, "yesterday": 400, "2026-12-01 09:00": 400} {
		b, _ := json.Marshal(stopapi.ExtendRequest{TaskARN: taskARN, TTL: "2h", StartedAt: given})
		var log bytes.Buffer
		resp, _ := newService(&fakeECS{tags: map[string]map[string]string{}}, &log).Handle(context.Background(), proven(extendEvent(string(b), self)))
		if resp.StatusCode != want {
			t.Errorf("startedAt %q: %d %s, want %d", given, resp.StatusCode, resp.Body, want)
		}
	}
}
