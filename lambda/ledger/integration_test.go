package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/moto"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

const (
	cluster = "ledgered" // in no other test's cluster name: moto's ListTasks matches substrings
	table   = "bastion-ttl-ledger"
	owner   = "AROAEXAMPLEDEVELOPER1:alice"
)

var (
	start    = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // the supervisor's start
	deadline = start.Add(time.Hour)
)

// adapt is the stored event file made one of this test's bastions: its
// task, cluster and family, version and status, times around start, and the
// sidecar's two containers (the capture's first container, renamed, with
// exitCodes: -1 leaves the member out). set overrides detail members (nil
// deletes one). Everything else is the capture's.
func adapt(t *testing.T, file, arn string, version int, exits map[string]int, set map[string]any) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../internal/ledger/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev["region"], ev["account"], ev["resources"] = testenv.Region, testenv.Account, []any{arn}
	d := ev["detail"].(map[string]any)
	at := func(x time.Duration) string { return start.Add(x).Format("2006-01-02T15:04:05.000Z") }
	d["taskArn"], d["clusterArn"], d["version"] = arn, "arn:aws:ecs:"+testenv.Region+":"+testenv.Account+":cluster/"+cluster, version
	d["taskDefinitionArn"], d["group"], d["startedBy"] = "arn:aws:ecs:"+testenv.Region+":"+testenv.Account+":task-definition/bastion-ssh:7", "family:bastion-ssh", "bastion-ttl"
	d["createdAt"], d["connectivityAt"], d["pullStartedAt"], d["startedAt"] = at(-40*time.Second), at(-35*time.Second), at(-30*time.Second), at(5*time.Second)
	template := d["containers"].([]any)[0].(map[string]any)
	var containers []any
	for _, name := range []string{"bastion", "supervisor"} {
		c := map[string]any{}
		for k, v := range template {
			c[k] = v
		}
		c["name"], c["taskArn"] = name, arn
		delete(c, "exitCode")
		if code, ok := exits[name]; ok && code >= 0 {
			c["exitCode"] = code
		}
		containers = append(containers, c)
	}
	d["containers"] = containers
	for k, v := range set {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The events of one bastion's life, each as ECS sends it.
func running(t *testing.T, arn string) []byte {
	return adapt(t, "running.json", arn, 4, nil, nil)
}

// stopping is DEPROVISIONING (version 6), stopped STOPPED (version 9), with
// code, the stop beginning at at.
func stopping(t *testing.T, arn, code string, at time.Time, exits map[string]int) []byte {
	return adapt(t, "deprovisioning-essential-container-exited.json", arn, 6, exits, map[string]any{
		"stopCode": code, "stoppingAt": at.Format(time.RFC3339Nano), "stoppedReason": reasonOf(code)})
}

func stopped(t *testing.T, arn, code string, at time.Time, exits map[string]int) []byte {
	return adapt(t, "stopped-user-initiated.json", arn, 9, exits, map[string]any{"stopCode": code, "stoppedReason": reasonOf(code),
		"stoppingAt": at.Format(time.RFC3339Nano), "executionStoppedAt": at.Add(10 * time.Second).Format(time.RFC3339Nano),
		"stoppedAt": at.Add(40 * time.Second).Format(time.RFC3339Nano), "updatedAt": at.Add(40 * time.Second).Format(time.RFC3339Nano)})
}

// bastionAlone is the event raw with the bastion container alone: the
// health-check variant, whose supervisor runs inside it.
func bastionAlone(t *testing.T, raw []byte) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	d := ev["detail"].(map[string]any)
	var kept []any
	for _, c := range d["containers"].([]any) {
		if c.(map[string]any)["name"] == "bastion" {
			kept = append(kept, c)
		}
	}
	d["containers"] = kept
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func reasonOf(code string) string {
	switch code {
	case "UserInitiated":
		return "Task stopped by user"
	case "EssentialContainerExited":
		return "Essential container in task exited"
	}
	return "Task failed to start"
}

// The real bootstrap under the Runtime Interface Emulator, fed ECS Task
// State Change events shaped as AWS sends them, in order, reversed,
// duplicated and alone, against DynamoDB (and ECS, for the tags) in moto.
// The terminate function's and the sweeper's records are written as they
// write them (package ledger's Store, the code both run), before, between
// or after the events. Each way a bastion ends gives its item and verdict.
func TestLambdaRecordsEachEnding(t *testing.T) {
	base := testenv.Moto(t)
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(moto.New(target))
	t.Cleanup(proxy.Close)
	ecsClient := testenv.ECSClient(proxy.URL)
	db := testenv.DynamoDBClient(base)
	testenv.CreateLedgerTable(t, db, table)
	cfg, err := ledger.Load(map[string]string{"LEDGER_TABLE": table})
	if err != nil {
		t.Fatal(err)
	}
	var theirs testenv.Buffer // the log of the other functions' writes
	store := ledger.NewStore(cfg, db, slog.New(slog.NewJSONHandler(&theirs, nil)))

	fn := testenv.StartLambda(t, testenv.BuildLambda(t, "../..", "lambda/ledger"), map[string]string{
		"AWS_ENDPOINT_URL_ECS":        proxy.URL,
		"AWS_ENDPOINT_URL_DYNAMODB":   base,
		"AWS_REGION":                  testenv.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"LEDGER_TABLE":                table,
		"BASTION_CLUSTER":             cluster,
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
	})
	ctx := context.Background()
	invoke := func(t *testing.T, ev []byte) {
		t.Helper()
		if out := fn.Invoke(t, ev); string(out) != "null" {
			t.Fatalf("answer %s", out)
		}
	}
	register := func(t *testing.T, arn string) {
		t.Helper()
		if err := store.Extended(ctx, arn, ledger.Registration{At: start.Add(2 * time.Second), Asked: time.Hour, TTL: time.Hour, Cap: 12 * time.Hour,
			SupervisorStart: start, Owner: owner, Reason: "INC-1234"}); err != nil {
			t.Fatal(err)
		}
	}
	terminated := func(how ledger.Ending, at time.Time) func(*testing.T, string) {
		return func(t *testing.T, arn string) {
			if err := store.Stopping(ctx, arn, ledger.Stop{At: at, How: how, Why: "bastion-ttl: " + string(how)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	swept := func(at time.Time) func(*testing.T, string) {
		return func(t *testing.T, arn string) {
			if err := store.SweptStop(ctx, arn, ledger.Stop{At: at, Why: "bastion-ttl sweeper: TTL 1h0m0s expired (started 2026-12-01T09:00:00Z)"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ev := func(f func(*testing.T, string) []byte) func(*testing.T, string) {
		return func(t *testing.T, arn string) { invoke(t, f(t, arn)) }
	}
	reg := func(t *testing.T, arn string) { register(t, arn) }
	sidecarOK := map[string]int{"bastion": 143, "supervisor": 0}
	stopAt := func(code string, at time.Time, exits map[string]int) (func(*testing.T, string), func(*testing.T, string)) {
		return ev(func(t *testing.T, arn string) []byte { return stopping(t, arn, code, at, exits) }),
			ev(func(t *testing.T, arn string) []byte { return stopped(t, arn, code, at, exits) })
	}
	run := ev(running)
	ttlDeprov, ttlStopped := stopAt("UserInitiated", deadline.Add(2*time.Second), sidecarOK)
	ttlStop := terminated(ledger.EndingTTL, deadline.Add(time.Second))

	cases := []struct {
		name    string
		steps   []func(*testing.T, string)
		ending  ledger.Ending
		verdict ledger.Verdict
		owner   string        // "" none known
		late    time.Duration // the lateness, when a verdict has one
	}{
		{"ttl, in order", []func(*testing.T, string){run, reg, ttlStop, ttlDeprov, ttlStopped}, ledger.EndingTTL, ledger.OnTime, owner, 2 * time.Second},
		{"ttl, reversed", []func(*testing.T, string){ttlStopped, ttlDeprov, ttlStop, reg, run}, ledger.EndingTTL, ledger.OnTime, owner, 2 * time.Second},
		{"ttl, every event twice", []func(*testing.T, string){run, run, reg, ttlDeprov, ttlStop, ttlDeprov, ttlStopped, ttlStopped, run}, ledger.EndingTTL, ledger.OnTime, owner, 2 * time.Second},
		{"ttl, the record after STOPPED", []func(*testing.T, string){reg, run, ttlStopped, ttlStop}, ledger.EndingTTL, ledger.OnTime, owner, 2 * time.Second},
		{"STOPPED alone", []func(*testing.T, string){ttlStopped}, ledger.EndingPerson, ledger.Unknown, "", 0},
		{"idle", func() []func(*testing.T, string) {
			d, s := stopAt("UserInitiated", start.Add(20*time.Minute), sidecarOK)
			return []func(*testing.T, string){reg, run, terminated(ledger.EndingIdle, start.Add(20*time.Minute)), d, s}
		}(), ledger.EndingIdle, ledger.OnTime, owner, -40 * time.Minute},
		{"sweeper", func() []func(*testing.T, string) {
			d, s := stopAt("UserInitiated", deadline.Add(4*time.Minute), map[string]int{"bastion": 143, "supervisor": 143})
			return []func(*testing.T, string){reg, run, swept(deadline.Add(4 * time.Minute)), d, s}
		}(), ledger.EndingSweeper, ledger.Fallback, owner, 4 * time.Minute},
		{"sweeper, never registered (supervisor overridden away)", func() []func(*testing.T, string) {
			_, s := stopAt("UserInitiated", deadline.Add(4*time.Minute), sidecarOK)
			return []func(*testing.T, string){run, s, swept(deadline.Add(4 * time.Minute))}
		}(), ledger.EndingSweeper, ledger.Unknown, owner, 0},
		{"fail-safe", func() []func(*testing.T, string) {
			exits := map[string]int{"bastion": 137, "supervisor": 1}
			d, s := stopAt("EssentialContainerExited", deadline.Add(2*time.Minute+time.Second), exits)
			return []func(*testing.T, string){reg, run, d, s}
		}(), ledger.EndingFailSafe, ledger.Fallback, owner, 2*time.Minute + time.Second},
		{"fail-safe, health check (SIGTERM to the bastion's PID 1 at deadline + grace)", func() []func(*testing.T, string) {
			at, exits := deadline.Add(2*time.Minute+20*time.Second), map[string]int{"bastion": 143}
			d := ev(func(t *testing.T, arn string) []byte {
				return bastionAlone(t, stopping(t, arn, "EssentialContainerExited", at, exits))
			})
			s := ev(func(t *testing.T, arn string) []byte {
				return bastionAlone(t, stopped(t, arn, "EssentialContainerExited", at, exits))
			})
			return []func(*testing.T, string){reg, run, d, s}
		}(), ledger.EndingFailSafe, ledger.Fallback, owner, 2*time.Minute + 20*time.Second},
		{"other, health check: SIGTERM before deadline + grace", func() []func(*testing.T, string) {
			at, exits := start.Add(10*time.Minute), map[string]int{"bastion": 143}
			s := ev(func(t *testing.T, arn string) []byte {
				return bastionAlone(t, stopped(t, arn, "EssentialContainerExited", at, exits))
			})
			return []func(*testing.T, string){reg, run, s}
		}(), ledger.EndingOther, ledger.OnTime, owner, -50 * time.Minute},
		{"stopped by a person", func() []func(*testing.T, string) {
			_, s := stopAt("UserInitiated", start.Add(30*time.Minute), sidecarOK)
			return []func(*testing.T, string){run, reg, s}
		}(), ledger.EndingPerson, ledger.OnTime, owner, -30 * time.Minute},
		{"other: the bastion crashed", func() []func(*testing.T, string) {
			d, s := stopAt("EssentialContainerExited", start.Add(10*time.Minute), map[string]int{"bastion": 1, "supervisor": 143})
			return []func(*testing.T, string){run, reg, d, s}
		}(), ledger.EndingOther, ledger.OnTime, owner, -50 * time.Minute},
		{"late: a person, long after every stop failed", func() []func(*testing.T, string) {
			_, s := stopAt("UserInitiated", deadline.Add(time.Hour), sidecarOK)
			return []func(*testing.T, string){run, reg, s}
		}(), ledger.EndingPerson, ledger.Late, owner, time.Hour},
		{"early: stopped for its TTL before the deadline", func() []func(*testing.T, string) {
			_, s := stopAt("UserInitiated", deadline.Add(-10*time.Minute), sidecarOK)
			return []func(*testing.T, string){run, reg, terminated(ledger.EndingTTL, deadline.Add(-10*time.Minute)), s}
		}(), ledger.EndingTTL, ledger.Early, owner, -10 * time.Minute},
	}
	tags := []types.Tag{{Key: aws.String(ttltag.Key), Value: aws.String("1h")}, {Key: aws.String(ttltag.OwnerKey), Value: aws.String(owner)},
		{Key: aws.String(ttltag.ReasonKey), Value: aws.String("INC-1234")}}
	arns := testenv.RunTasks(t, ecsClient, cluster, int32(len(cases)), tags...)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arn := arns[i]
			for _, step := range c.steps {
				step(t, arn)
			}
			it, ok, err := store.Get(ctx, arn)
			if err != nil || !ok {
				t.Fatalf("no item: %v", err)
			}
			o := it.Outcome
			if o.Ending != c.ending || o.Verdict != c.verdict {
				t.Fatalf("ending %q, verdict %q (%s); want %q, %q", o.Ending, o.Verdict, o.Why, c.ending, c.verdict)
			}
			if c.verdict != ledger.Unknown && (!o.HasLateness || o.Lateness != c.late) {
				t.Errorf("lateness %v (%v), want %v", o.Lateness, o.HasLateness, c.late)
			}
			if it.Owner != c.owner || (c.owner != "" && it.Reason != "INC-1234") {
				t.Errorf("owner %q, reason %q; want %q", it.Owner, it.Reason, c.owner)
			}
			if it.ECSVersion != 9 || it.LastStatus != "STOPPED" || it.Family != "bastion-ssh" || it.StartedBy != "bastion-ttl" ||
				!it.CreatedAt.Equal(start.Add(-40*time.Second)) || !it.ConnectivityAt.Equal(start.Add(-35*time.Second)) || it.StoppedAt.IsZero() {
				t.Errorf("ECS's attributes: version %d, %s, family %q, startedBy %q, created %v, connectivity %v, stopped %v",
					it.ECSVersion, it.LastStatus, it.Family, it.StartedBy, it.CreatedAt, it.ConnectivityAt, it.StoppedAt)
			}
			if !o.ExpiresAt.Equal(it.StoppedAt.Add(400 * 24 * time.Hour).Truncate(time.Second)) {
				t.Errorf("expires %v, want stoppedAt + 400 days", o.ExpiresAt)
			}
			if c.verdict == ledger.Unknown && o.Why == "" {
				t.Error("unknown, and no why")
			}
		})
	}

	// An event of another cluster is dropped, and says so; nothing is written.
	stray := arns[0][:strings.LastIndex(arns[0], "/")+1] + "ffffffffffffffffffffffffffffffff"
	other := strings.Replace(string(running(t, stray)), "cluster/"+cluster, "cluster/production", 1)
	invoke(t, []byte(other))
	if _, ok, err := store.Get(ctx, stray); ok || err != nil {
		t.Errorf("an event of another cluster was recorded (%v)", err)
	}
	fn.WaitOutput(t, 5*time.Second, `"msg":"event of another cluster dropped"`)
	// The broken promises are counted once each, by whichever write judged
	// them: the late one by the function (its STOPPED event), the early one
	// by the terminate function's record of its stop.
	if n, m := strings.Count(fn.Output(), `"PromiseBroken":1`), strings.Count(theirs.String(), `"PromiseBroken":1`); n != 1 || m != 1 {
		t.Errorf("PromiseBroken counted %d times by the function and %d by the other writers, want once each (late, early)", n, m)
	}
}
