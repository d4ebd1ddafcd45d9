package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

func TestSleepUntilReArmsWhenWallClockIsBehind(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &steppingClock{Fake: clocktest.NewFake(t0), stepBack: 2 * time.Second}
	if err := sleepUntil(context.Background(), clk, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if clk.Now().Before(t0.Add(10 * time.Second)) {
		t.Fatalf("returned at %v, before the deadline", clk.Now())
	}
	if n := len(clk.Sleeps()); n != 2 {
		t.Fatalf("%d timers armed, want 2 (one, then one more after the step back)", n)
	}
}

// steppingClock steps the wall clock back once, during the first sleep.
type steppingClock struct {
	*clocktest.Fake
	stepBack time.Duration
	stepped  bool
}

func (c *steppingClock) Sleep(ctx context.Context, d time.Duration) error {
	err := c.Fake.Sleep(ctx, d)
	if !c.stepped {
		c.stepped = true
		c.Fake.Advance(-c.stepBack)
	}
	return err
}

// Each mark of BASTION_WARN_BEFORE gives one WARN line as the deadline
// nears; marks already passed at the start give one line together.
func TestWatchWarnings(t *testing.T) {
	clk := clocktest.NewFake(time.Now())
	api, _ := fakeClockAPI(t, clk, 202)
	var logs bytes.Buffer
	started := clk.Now().Add(-55 * time.Minute) // 5m left of 1h: the 10m mark has passed
	w := inProcessWatcher(t, metadataServer(t, started, 0).URL, api.URL, "1h", clk, &logs)
	w.cfg.WarnBefore = []time.Duration{10 * time.Minute, time.Minute}
	_ = w.run(context.Background())
	var lefts []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"the bastion stops soon"`) {
			var rec struct{ Level, Left, Limit string }
			_ = json.Unmarshal([]byte(line), &rec)
			if rec.Level != "WARN" || rec.Limit != "ttl" {
				t.Fatalf("warning %s", line)
			}
			lefts = append(lefts, rec.Left)
		}
	}
	if len(lefts) != 2 || lefts[0] != "5m0s" || lefts[1] != "1m0s" {
		t.Fatalf("warnings with %v left, want 5m0s then 1m0s", lefts)
	}
}
