package supervisor

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// Whatever holds the control port answers supervisor extend: an error text
// with an escape sequence never reaches the terminal.
func TestExtendSquatterAnswersNeverReachTheTerminal(t *testing.T) {
	_, err := extendCLI(squatter(t), "30m")
	if err == nil || strings.Contains(err.Error(), "\x1b") || !strings.Contains(err.Error(), "answered 409") {
		t.Fatalf("extend: %q", err)
	}
}

// What supervisor extend prints, as --json and as its line, for an
// extension granted in full and one the API's cap cut.
func TestExtendGolden(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 1, 0, time.UTC)
	now := t0.Add(47*time.Minute + 20*time.Second)
	for name, tc := range map[string]struct {
		ttl, maxTTL time.Duration
		capped      bool
	}{
		"extended": {3 * time.Hour, 12 * time.Hour, false},
		"capped":   {12 * time.Hour, 12 * time.Hour, true},
	} {
		t.Run(name, func(t *testing.T) {
			l := newLive()
			l.set(taskmeta.Start{TaskARN: testTaskARN, Time: t0}, lifetime.Lifetime{Start: t0, TTL: 2 * time.Hour}, 12*time.Hour)
			l.adopt(tc.ttl, tc.maxTTL)
			s, _ := l.status(now, []time.Duration{10 * time.Minute, time.Minute})
			ans := controlapi.Extended{Status: s, Capped: tc.capped}
			if err := ans.Validate(); err != nil {
				t.Fatalf("the answer breaks the contract: %v", err)
			}
			var j, line bytes.Buffer
			if err := printJSON(&j, ans); err != nil {
				t.Fatal(err)
			}
			if err := printExtended(&line, ans); err != nil {
				t.Fatal(err)
			}
			golden(t, "extend-"+name+".json", j.Bytes())
			golden(t, "extend-"+name+".txt", line.Bytes())
		})
	}
}
