package ledger_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

const table = "bastion-ttl-ledger"

var (
	policy = ledger.Policy{Grace: 2 * time.Minute, SweepPeriod: 5 * time.Minute, SupervisorContainer: "supervisor", Retention: 400 * 24 * time.Hour}
	start  = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

// store is a Store on a fresh table in moto, and its log.
func store(t *testing.T) (*ledger.Store, *dynamodb.Client, *testenv.Buffer) {
	t.Helper()
	_, db := testenv.MotoDynamoDB(t)
	testenv.CreateLedgerTable(t, db, table)
	var log testenv.Buffer
	return &ledger.Store{DB: db, Table: table, Policy: policy, Log: slog.New(slog.NewJSONHandler(&log, nil))}, db, &log
}

// event is a stored event made this bastion's: its ARNs, family, the
// sidecar's containers, and times around start.
func event(t *testing.T, name, arn string, version int64, mutate func(*ledger.TaskStateChange)) ledger.TaskStateChange {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ledger.ParseEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	e.TaskARN, e.ClusterARN = arn, "arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"
	e.TaskDefinitionARN, e.Group, e.StartedBy = "arn:aws:ecs:eu-west-1:123456789012:task-definition/bastion-ssh:7", "family:bastion-ssh", "bastion-ttl"
	e.Version = version
	at := func(d time.Duration) *time.Time { x := start.Add(d); return &x }
	e.CreatedAt, e.ConnectivityAt, e.PullStartedAt, e.StartedAt = at(-40*time.Second), at(-35*time.Second), at(-30*time.Second), at(5*time.Second)
	if e.StoppingAt != nil {
		e.StoppingAt, e.StoppedAt = at(time.Hour+2*time.Second), at(time.Hour+40*time.Second)
	}
	for i := range e.Containers {
		e.Containers[i].Name = "bastion"
	}
	if mutate != nil {
		mutate(&e)
	}
	return e
}

func registration() ledger.Registration {
	return ledger.Registration{At: start.Add(2 * time.Second), Asked: time.Hour, TTL: time.Hour, Cap: 12 * time.Hour,
		SupervisorStart: start, Owner: "AROAEXAMPLEDEVELOPER1:alice", Reason: "INC-1234"}
}

func ttlStop() ledger.Stop {
	return ledger.Stop{At: start.Add(time.Hour + time.Second), How: ledger.EndingTTL, Why: "bastion-ttl: TTL 1h0m0s expired (started 2026-12-01T09:00:00Z)"}
}

func get(t *testing.T, s *ledger.Store, arn string) ledger.Item {
	t.Helper()
	it, ok, err := s.Get(context.Background(), arn)
	if err != nil || !ok {
		t.Fatalf("get %s: %v, %v", arn, ok, err)
	}
	return it
}

// Every order of the writers' arrival, duplicates included, converges on
// one item: ECS's newest event's attributes, the function's records, and
// the outcome of them all.
func TestStoreConverges(t *testing.T) {
	s, _, log := store(t)
	ctx := context.Background()
	arn := func(i int) string {
		return "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + strings.Repeat(string(rune('a'+i)), 32)
	}
	type step func(t *testing.T, arn string) error
	running := func(t *testing.T, a string) error { return s.ApplyEvent(ctx, event(t, "running.json", a, 4, nil)) }
	stoppedEv := func(t *testing.T, a string) error {
		return s.ApplyEvent(ctx, event(t, "stopped-user-initiated.json", a, 9, nil))
	}
	register := func(t *testing.T, a string) error { return s.Extended(ctx, a, registration()) }
	stop := func(t *testing.T, a string) error { return s.Stopping(ctx, a, ttlStop()) }
	orders := map[string][]step{
		"in order":             {running, register, stop, stoppedEv},
		"reversed":             {stoppedEv, stop, register, running},
		"duplicated":           {running, running, register, register, stop, stoppedEv, stop, stoppedEv, running},
		"record after STOPPED": {register, running, stoppedEv, stop},
		"registration last":    {stop, stoppedEv, running, register},
	}
	i := 0
	for name, steps := range orders {
		t.Run(name, func(t *testing.T) {
			a := arn(i)
			i++
			for _, st := range steps {
				if err := st(t, a); err != nil {
					t.Fatal(err)
				}
			}
			it := get(t, s, a)
			o := it.Outcome
			if it.ECSVersion != 9 || it.LastStatus != "STOPPED" || it.StopCode != "UserInitiated" || it.Family != "bastion-ssh" ||
				!it.StoppingAt.Equal(start.Add(time.Hour+2*time.Second)) || !it.ConnectivityAt.Equal(start.Add(-35*time.Second)) {
				t.Errorf("ECS's attributes: %+v", it)
			}
			if it.Owner != "AROAEXAMPLEDEVELOPER1:alice" || it.Reason != "INC-1234" || it.TTL != time.Hour || it.Cap != 12*time.Hour ||
				!it.SupervisorStart.Equal(start) || it.Stop == nil || it.Stop.How != ledger.EndingTTL || len(it.Extensions) != 0 {
				t.Errorf("the function's attributes: %+v", it)
			}
			if o.Ending != ledger.EndingTTL || o.Verdict != ledger.OnTime || !o.HasLateness || o.Lateness != 2*time.Second ||
				!o.Deadline.Equal(start.Add(time.Hour)) || !o.ExpiresAt.Equal(start.Add(time.Hour+40*time.Second+400*24*time.Hour)) {
				t.Errorf("outcome %+v", o)
			}
		})
	}
	if n := strings.Count(log.String(), `"Lateness"`); n < len(orders) {
		t.Errorf("%d lateness metrics for %d bastions:\n%s", n, len(orders), log.String())
	}
	if strings.Contains(log.String(), `"PromiseBroken"`) {
		t.Errorf("a promise broken:\n%s", log.String())
	}
}

// ECS's STOPPED event alone still makes an item, for a bastion the
// function never heard of: a person stopped it, and no deadline is known.
func TestStoreStoppedAlone(t *testing.T) {
	s, _, _ := store(t)
	a := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef"
	if err := s.ApplyEvent(context.Background(), event(t, "stopped-user-initiated.json", a, 9, nil)); err != nil {
		t.Fatal(err)
	}
	it := get(t, s, a)
	if o := it.Outcome; o.Ending != ledger.EndingPerson || o.Verdict != ledger.Unknown || !strings.Contains(o.Why, "never reached POST /extend") || o.HasLateness {
		t.Errorf("outcome %+v", o)
	}
	// The size Fargate bills, as the stored event gives it.
	if it.CPU != "512" || it.Memory != "1024" || it.CPUArchitecture != "x86_64" {
		t.Errorf("size: cpu %q, memory %q, architecture %q", it.CPU, it.Memory, it.CPUArchitecture)
	}
}

// An older event after a newer one changes nothing: the item keeps the
// newer's status.
func TestStoreIgnoresOlderEvents(t *testing.T) {
	s, _, _ := store(t)
	ctx := context.Background()
	a := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/11111111111111111111111111111111"
	if err := s.ApplyEvent(ctx, event(t, "stopped-user-initiated.json", a, 9, nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyEvent(ctx, event(t, "running.json", a, 4, nil)); err != nil {
		t.Fatal(err)
	}
	if it := get(t, s, a); it.LastStatus != "STOPPED" || it.ECSVersion != 9 {
		t.Errorf("an older event applied: %s v%d", it.LastStatus, it.ECSVersion)
	}
}

// Extensions are appended once each (a retry of one appends nothing), the
// TTL and the deadline follow them, and the registration stays the first.
func TestStoreExtensions(t *testing.T) {
	s, _, _ := store(t)
	ctx := context.Background()
	a := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/22222222222222222222222222222222"
	r := registration()
	for _, step := range []ledger.Registration{r, r, // the registration, and its retry
		{At: start.Add(50 * time.Minute), Asked: 2 * time.Hour, TTL: 2 * time.Hour, Cap: 12 * time.Hour, SupervisorStart: start},
		{At: start.Add(51 * time.Minute), Asked: 2 * time.Hour, TTL: 2 * time.Hour, Cap: 12 * time.Hour, SupervisorStart: start}, // its retry
		{At: start.Add(110 * time.Minute), Asked: 20 * time.Hour, TTL: 12 * time.Hour, Cap: 12 * time.Hour, Capped: true, SupervisorStart: start},
	} {
		if err := s.Extended(ctx, a, step); err != nil {
			t.Fatal(err)
		}
	}
	later := stopapi.Usage{Samples: 3, From: start, To: start.Add(2 * time.Minute), MemoryPeakBytes: 73400320, MemoryLimitBytes: 512 << 20, CPUSeconds: 1.5}
	earlier := stopapi.Usage{Samples: 2, From: start, To: start.Add(time.Minute), MemoryPeakBytes: 1 << 20}
	for _, u := range []stopapi.Usage{later, earlier, later} { // an earlier summary delivered late changes nothing
		if err := s.RecordUsage(ctx, a, u); err != nil {
			t.Fatal(err)
		}
	}
	it := get(t, s, a)
	if !it.RegisteredAt.Equal(r.At) || it.TTLAsked != time.Hour || it.TTL != 12*time.Hour || len(it.Extensions) != 2 ||
		it.Extensions[0].TTL != 2*time.Hour || !it.Extensions[0].At.Equal(start.Add(50*time.Minute)) || !it.Extensions[1].Capped || it.Extensions[1].Asked != 20*time.Hour {
		t.Errorf("item %+v", it)
	}
	if !it.Outcome.Deadline.Equal(start.Add(12*time.Hour)) || it.Outcome.Verdict != "" {
		t.Errorf("outcome %+v", it.Outcome)
	}
	if it.Usage == nil || *it.Usage != later {
		t.Errorf("usage %+v, want the later summary %+v", it.Usage, later)
	}
}

// Early and late verdicts are promises broken: logged at WARN with the
// PromiseBroken metric, once.
func TestStorePromiseBroken(t *testing.T) {
	s, _, log := store(t)
	ctx := context.Background()
	a := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/33333333333333333333333333333333"
	if err := s.Extended(ctx, a, registration()); err != nil {
		t.Fatal(err)
	}
	early := ledger.Stop{At: start.Add(30 * time.Minute), How: ledger.EndingTTL, Why: "bastion-ttl: TTL 30m0s expired"}
	if err := s.Stopping(ctx, a, early); err != nil {
		t.Fatal(err)
	}
	ev := event(t, "stopped-user-initiated.json", a, 9, func(e *ledger.TaskStateChange) {
		x, y := start.Add(30*time.Minute+time.Second), start.Add(31*time.Minute)
		e.StoppingAt, e.StoppedAt = &x, &y
	})
	for range 2 {
		if err := s.ApplyEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if o := get(t, s, a).Outcome; o.Verdict != ledger.Early {
		t.Errorf("outcome %+v", o)
	}
	if n := strings.Count(log.String(), `"PromiseBroken":1`); n != 1 {
		t.Errorf("%d PromiseBroken metrics, want 1:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), `"level":"WARN","msg":"bastion accounted for"`) {
		t.Errorf("no WARN line:\n%s", log.String())
	}
}

// A person's bastions are read through the owner index: what the launcher
// policy allows (dynamodb:LeadingKeys on the caller's user ID).
func TestStoreOwnerIndex(t *testing.T) {
	s, db, _ := store(t)
	ctx := context.Background()
	for i, owner := range []string{"AROAEXAMPLEDEVELOPER1:alice", "AROAEXAMPLEDEVELOPER1:bob", "AROAEXAMPLEDEVELOPER1:alice"} {
		a := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + strings.Repeat(string(rune('0'+i)), 32)
		r := registration()
		r.Owner = owner
		if err := s.Extended(ctx, a, r); err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyEvent(ctx, event(t, "running.json", a, 4, nil)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table), IndexName: aws.String(ledger.OwnerIndex),
		KeyConditionExpression:    aws.String("#o = :o"),
		ExpressionAttributeNames:  map[string]string{"#o": ledger.AttrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": &types.AttributeValueMemberS{Value: "AROAEXAMPLEDEVELOPER1:alice"}},
	})
	if err != nil || len(out.Items) != 2 {
		t.Fatalf("query: %v, %d items", err, len(out.Items))
	}
}

// A task that extends a second at a time cannot grow its item past
// MaxExtensions entries: the TTL still moves, the rest are counted.
func TestStoreBoundsExtensions(t *testing.T) {
	s, _, _ := store(t)
	ctx := context.Background()
	a := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/33333333333333333333333333333333"
	r := registration()
	if err := s.Extended(ctx, a, r); err != nil {
		t.Fatal(err)
	}
	const more = 5
	for i := 1; i <= ledger.MaxExtensions+more; i++ {
		step := r
		step.At, step.TTL, step.Asked = r.At.Add(time.Duration(i)*time.Second), r.TTL+time.Duration(i)*time.Second, r.TTL+time.Duration(i)*time.Second
		if err := s.Extended(ctx, a, step); err != nil {
			t.Fatal(err)
		}
	}
	it := get(t, s, a)
	if len(it.Extensions) != ledger.MaxExtensions || it.ExtensionsOmitted != more || it.TTL != r.TTL+(ledger.MaxExtensions+more)*time.Second {
		t.Errorf("%d extensions, %d omitted, TTL %v", len(it.Extensions), it.ExtensionsOmitted, it.TTL)
	}
}
