package ledger

import (
	"strings"
	"testing"
	"time"
)

var (
	policy   = Policy{Grace: 2 * time.Minute, SweepPeriod: 5 * time.Minute, SupervisorContainer: "supervisor", Retention: 400 * 24 * time.Hour}
	start    = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	deadline = start.Add(time.Hour)
)

func exit(code int) *int { return &code }

// registered is a bastion whose supervisor registered a 1h TTL at start.
func registered() Item {
	return Item{TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef",
		CreatedAt: start.Add(-40 * time.Second), StartedAt: start.Add(5 * time.Second),
		RegisteredAt: start.Add(2 * time.Second), SupervisorStart: start, TTLAsked: time.Hour, TTL: time.Hour, Cap: 12 * time.Hour,
		LastStatus: "RUNNING", DesiredStatus: "RUNNING"}
}

// stopped is it as ECS's STOPPED event leaves it, stopping at at.
func stopped(it Item, code string, at time.Time, containers map[string]Container) Item {
	it.LastStatus, it.DesiredStatus, it.StopCode = "STOPPED", "STOPPED", code
	it.StoppingAt, it.StoppedAt = at, at.Add(40*time.Second)
	it.Containers = containers
	return it
}

func TestDecide(t *testing.T) {
	ourStop := func(it Item, how Ending, at time.Time) Item {
		it.Stop = &Stop{At: at, How: how, Why: "bastion-ttl: " + string(how)}
		return it
	}
	sweep := func(it Item, at time.Time) Item {
		it.Sweep = &Stop{At: at, How: EndingSweeper, Why: "bastion-ttl sweeper: TTL 1h0m0s expired"}
		return it
	}
	sidecar := func(code int) map[string]Container {
		return map[string]Container{"bastion": {LastStatus: "STOPPED", ExitCode: exit(143)}, "supervisor": {LastStatus: "STOPPED", ExitCode: exit(code)}}
	}
	healthCheck := func(code int) map[string]Container {
		return map[string]Container{"bastion": {LastStatus: "STOPPED", ExitCode: exit(code)}}
	}
	unregistered := registered()
	unregistered.RegisteredAt, unregistered.SupervisorStart, unregistered.TTL, unregistered.TTLAsked = time.Time{}, time.Time{}, 0, 0
	noStart := registered()
	noStart.SupervisorStart = time.Time{}
	extended := registered()
	extended.TTL = 3 * time.Hour
	// A task that lies about its start, to move its own deadline.
	startLater, startEarlier := registered(), registered()
	startLater.SupervisorStart, startEarlier.SupervisorStart = start.Add(2*time.Hour), start.Add(-2*time.Hour)

	cases := []struct {
		name     string
		it       Item
		ending   Ending
		verdict  Verdict
		lateness time.Duration // checked when the verdict is not unknown
		why      string        // a part of Why
	}{
		{"running", registered(), "", "", 0, ""},
		{"stopping, no stop code yet", func() Item {
			it := registered()
			it.DesiredStatus, it.LastStatus = "STOPPED", "DEACTIVATING"
			return it
		}(), "", "", 0, ""},
		{"ttl, on time", stopped(ourStop(registered(), EndingTTL, deadline.Add(time.Second)), "UserInitiated", deadline.Add(2*time.Second), sidecar(0)), EndingTTL, OnTime, 2 * time.Second, "after the deadline"},
		{"ttl, record only (events lost)", ourStop(registered(), EndingTTL, deadline.Add(time.Second)), EndingTTL, OnTime, time.Second, ""},
		{"ttl, record before the STOPPED event", func() Item {
			it := ourStop(registered(), EndingTTL, deadline.Add(time.Second))
			it.DesiredStatus, it.LastStatus, it.StopCode, it.StoppingAt = "STOPPED", "DEACTIVATING", "UserInitiated", deadline.Add(2*time.Second)
			return it
		}(), EndingTTL, OnTime, 2 * time.Second, ""},
		{"ttl, within the clocks' tolerance", stopped(ourStop(registered(), EndingTTL, deadline.Add(-500*time.Millisecond)), "UserInitiated", deadline.Add(-500*time.Millisecond), sidecar(0)), EndingTTL, OnTime, -500 * time.Millisecond, "before the deadline"},
		{"ttl, early", stopped(ourStop(registered(), EndingTTL, deadline.Add(-10*time.Minute)), "UserInitiated", deadline.Add(-10*time.Minute), sidecar(0)), EndingTTL, Early, -10 * time.Minute, "before the deadline"},
		{"ttl, after an extension: on time at the new deadline", stopped(ourStop(extended, EndingTTL, start.Add(3*time.Hour)), "UserInitiated", start.Add(3*time.Hour+time.Second), sidecar(0)), EndingTTL, OnTime, time.Second, ""},
		{"ttl, late (retried past grace + period)", stopped(ourStop(registered(), EndingTTL, deadline.Add(8*time.Minute)), "UserInitiated", deadline.Add(8*time.Minute), sidecar(0)), EndingTTL, Late, 8 * time.Minute, "more than grace"},
		{"idle, long before the deadline", stopped(ourStop(registered(), EndingIdle, start.Add(20*time.Minute)), "UserInitiated", start.Add(20*time.Minute), sidecar(0)), EndingIdle, OnTime, -40 * time.Minute, ""},
		{"sweeper", stopped(sweep(registered(), deadline.Add(4*time.Minute)), "UserInitiated", deadline.Add(4*time.Minute), sidecar(0)), EndingSweeper, Fallback, 4 * time.Minute, "sweeper"},
		{"sweeper, late (a sweep missed)", stopped(sweep(registered(), deadline.Add(12*time.Minute)), "UserInitiated", deadline.Add(12*time.Minute), sidecar(0)), EndingSweeper, Late, 12 * time.Minute, "more than grace"},
		{"sweeper and terminate: the first stop", stopped(ourStop(sweep(registered(), deadline.Add(3*time.Minute)), EndingTTL, deadline.Add(3*time.Minute+time.Second)), "UserInitiated", deadline.Add(3*time.Minute), nil), EndingSweeper, Fallback, 3 * time.Minute, ""},
		{"fail-safe (supervisor exit 1)", stopped(registered(), "EssentialContainerExited", deadline.Add(2*time.Minute+time.Second), sidecar(1)), EndingFailSafe, Fallback, 2*time.Minute + time.Second, "fail-safe"},
		// The health-check variant: no sidecar; its fail-safe's SIGTERM ends the bastion container (143).
		{"fail-safe (health check: SIGTERM at deadline + grace)", stopped(registered(), "EssentialContainerExited", deadline.Add(2*time.Minute+20*time.Second), healthCheck(143)), EndingFailSafe, Fallback, 2*time.Minute + 20*time.Second, "fail-safe"},
		{"fail-safe (health check: at deadline + grace, the clocks' tolerance)", stopped(registered(), "EssentialContainerExited", deadline.Add(2*time.Minute-500*time.Millisecond), healthCheck(143)), EndingFailSafe, Fallback, 2*time.Minute - 500*time.Millisecond, ""},
		{"health check: SIGTERM before deadline + grace (not the fail-safe)", stopped(registered(), "EssentialContainerExited", deadline.Add(time.Minute), healthCheck(143)), EndingOther, OnTime, time.Minute, ""},
		{"health check: SIGKILL after deadline + grace (not the fail-safe's signal)", stopped(registered(), "EssentialContainerExited", deadline.Add(3*time.Minute), healthCheck(137)), EndingOther, OnTime, 3 * time.Minute, ""},
		{"health check: SIGTERM, no deadline registered", stopped(unregistered, "EssentialContainerExited", deadline.Add(3*time.Minute), healthCheck(143)), EndingOther, Unknown, 0, "never reached POST /extend"},
		{"sidecar: the bastion's SIGTERM after deadline + grace (not the fail-safe)", stopped(registered(), "EssentialContainerExited", deadline.Add(3*time.Minute), map[string]Container{"bastion": {ExitCode: exit(143)}, "supervisor": {ExitCode: exit(0)}}), EndingOther, OnTime, 3 * time.Minute, ""},
		{"supervisor exit 2 (configuration)", stopped(registered(), "EssentialContainerExited", start.Add(time.Minute), sidecar(2)), EndingOther, OnTime, -59 * time.Minute, ""},
		{"bastion crashed", stopped(registered(), "EssentialContainerExited", start.Add(time.Minute), map[string]Container{"bastion": {ExitCode: exit(1)}, "supervisor": {ExitCode: exit(0)}}), EndingOther, OnTime, -59 * time.Minute, ""},
		{"stopped by a person", stopped(registered(), "UserInitiated", start.Add(10*time.Minute), nil), EndingPerson, OnTime, -50 * time.Minute, ""},
		{"stopped by a person, long after every stop failed", stopped(registered(), "UserInitiated", deadline.Add(time.Hour), nil), EndingPerson, Late, time.Hour, ""},
		{"failed to start", stopped(registered(), "TaskFailedToStart", start.Add(time.Second), nil), EndingOther, OnTime, -time.Hour + time.Second, ""},
		{"spot interruption, late", stopped(registered(), "SpotInterruption", deadline.Add(10*time.Minute), nil), EndingOther, Late, 10 * time.Minute, ""},
		{"never registered, swept (supervisor overridden away)", stopped(sweep(unregistered, deadline.Add(4*time.Minute)), "UserInitiated", deadline.Add(4*time.Minute), nil), EndingSweeper, Unknown, 0, "never reached POST /extend"},
		{"registered without a start", stopped(ourStop(noStart, EndingTTL, deadline), "UserInitiated", deadline, nil), EndingTTL, Unknown, 0, "without the supervisor's start"},
		{"a start after its registration (made early)", stopped(ourStop(startLater, EndingTTL, deadline), "UserInitiated", deadline, nil), EndingTTL, Unknown, 0, "not believed"},
		{"a start before its creation (made late)", stopped(ourStop(startEarlier, EndingTTL, deadline), "UserInitiated", deadline, nil), EndingTTL, Unknown, 0, "not believed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := policy.Decide(c.it)
			if o.Ending != c.ending || o.Verdict != c.verdict {
				t.Fatalf("ending %q, verdict %q (%s); want %q, %q", o.Ending, o.Verdict, o.Why, c.ending, c.verdict)
			}
			if c.verdict != "" && c.verdict != Unknown && (!o.HasLateness || o.Lateness != c.lateness) {
				t.Errorf("lateness %v (%v), want %v", o.Lateness, o.HasLateness, c.lateness)
			}
			if !strings.Contains(o.Why, c.why) {
				t.Errorf("why %q, want it to say %q", o.Why, c.why)
			}
			if c.verdict != "" && o.Why == "" {
				t.Error("a verdict without a why")
			}
			if c.it.Deadline().IsZero() != o.Deadline.IsZero() {
				t.Errorf("deadline %v", o.Deadline)
			}
		})
	}
}

func TestExpiresAfterTheLatestKnownTime(t *testing.T) {
	it := stopped(registered(), "UserInitiated", deadline, nil)
	if got, want := policy.Decide(it).ExpiresAt, deadline.Add(40*time.Second+400*24*time.Hour); !got.Equal(want) {
		t.Errorf("expires %v, want stoppedAt + 400 days %v", got, want)
	}
	// A bastion whose events never came still goes, from its registration.
	it = Item{RegisteredAt: start}
	if got, want := policy.Decide(it).ExpiresAt, start.Add(400*24*time.Hour); !got.Equal(want) {
		t.Errorf("expires %v, want registration + 400 days %v", got, want)
	}
}

func TestBroken(t *testing.T) {
	for v, want := range map[Verdict]bool{OnTime: false, Fallback: false, Late: true, Early: true, Unknown: false} {
		if v.Broken() != want {
			t.Errorf("%s broken = %v", v, !want)
		}
	}
}

func TestSchedulePeriod(t *testing.T) {
	for expr, want := range map[string]time.Duration{"rate(5 minutes)": 5 * time.Minute, "rate(1 minute)": time.Minute, "rate(2 hours)": 2 * time.Hour,
		"rate(1 day)": 24 * time.Hour, "cron(0/10 * * * ? *)": time.Hour} {
		if got, err := SchedulePeriod(expr); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{"", "rate(5 minutes", "rate(0 minutes)", "every 5m", "rate(5 seconds)"} {
		if _, err := SchedulePeriod(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
