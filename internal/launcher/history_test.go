package launcher

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bastion-ttl/bastion-ttl/internal/fargate"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

const (
	ledgerTable = "bastion-ttl-ledger"
	aliceID     = "AROAEXAMPLEDEVELOPER1:alice"
	bobID       = "AROAEXAMPLEDEVELOPER1:bob"
	jobFamily   = "nightly-export"
)

var (
	historyStart = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	historyNow   = historyStart.Add(4 * 24 * time.Hour)
)

// recordingLedger is moto's DynamoDB, with each Query's index and
// partition key value kept: the request shape IAM judges.
type recordingLedger struct {
	db *dynamodb.Client
	mu sync.Mutex
	// queries are "<index> <partition key value>".
	queries []string
}

func (r *recordingLedger) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	key := ""
	for name, v := range in.ExpressionAttributeValues {
		if s, ok := v.(*types.AttributeValueMemberS); ok && strings.HasPrefix(aws.ToString(in.KeyConditionExpression), "#"+ledger.AttrOwner+" = "+name) ||
			strings.HasPrefix(aws.ToString(in.KeyConditionExpression), "#"+ledger.AttrFamily+" = "+name) {
			key = s.Value
		}
	}
	r.mu.Lock()
	r.queries = append(r.queries, aws.ToString(in.IndexName)+" "+key)
	r.mu.Unlock()
	return r.db.Query(ctx, in, opts...)
}

// bastionRun is one task the ledger saw.
type bastionRun struct {
	id, family, region, cpu, memory, arch, owner, reason string
	start                                                time.Time
	life                                                 time.Duration
	usage                                                *stopapi.Usage
	registered                                           bool // a supervisor registered a TTL (bastions; jobs here do not)
}

// write records r as the ledger's writers do: ECS's RUNNING and STOPPED
// events, the tags or the registration, the usage, the stop.
func (r bastionRun) write(t *testing.T, s *ledger.Store) string {
	t.Helper()
	ctx := context.Background()
	arn := "arn:aws:ecs:" + r.region + ":123456789012:task/bastions/" + r.id
	at := func(d time.Duration) *time.Time { x := r.start.Add(d); return &x }
	e := ledger.TaskStateChange{
		TaskARN: arn, ClusterARN: "arn:aws:ecs:" + r.region + ":123456789012:cluster/bastions",
		TaskDefinitionARN: "arn:aws:ecs:" + r.region + ":123456789012:task-definition/" + r.family + ":3", Group: "family:" + r.family,
		LastStatus: "RUNNING", DesiredStatus: "RUNNING", CPU: r.cpu, Memory: r.memory,
		Attributes: []ledger.Attribute{{Name: "ecs.cpu-architecture", Value: r.arch}},
		CreatedAt:  at(-40 * time.Second), PullStartedAt: at(-30 * time.Second), StartedAt: at(0), Version: 3,
	}
	if err := s.ApplyEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if r.registered {
		if err := s.Extended(ctx, arn, ledger.Registration{At: r.start, Asked: r.life, TTL: r.life, Cap: 12 * time.Hour,
			SupervisorStart: r.start, Owner: r.owner, Reason: r.reason}); err != nil {
			t.Fatal(err)
		}
		if err := s.Stopping(ctx, arn, ledger.Stop{At: r.start.Add(r.life), How: ledger.EndingTTL, Why: "bastion-ttl: TTL expired"}); err != nil {
			t.Fatal(err)
		}
	} else if err := s.SetTags(ctx, arn, r.owner, r.reason); err != nil {
		t.Fatal(err)
	}
	if r.usage != nil {
		if err := s.RecordUsage(ctx, arn, *r.usage); err != nil {
			t.Fatal(err)
		}
	}
	if r.life > 0 {
		e.LastStatus, e.DesiredStatus, e.Version = "STOPPED", "STOPPED", 9
		e.StoppingAt, e.StoppedAt, e.StopCode = at(r.life+time.Second), at(r.life+40*time.Second), "UserInitiated"
		if !r.registered {
			e.StopCode = "EssentialContainerExited"
		}
		if err := s.ApplyEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	return arn
}

func usage(vcpu float64, mib int64, limitMiB int64) *stopapi.Usage {
	return &stopapi.Usage{Samples: 60, From: historyStart, To: historyStart.Add(time.Hour), MemoryPeakBytes: mib << 20,
		MemoryLimitBytes: limitMiB << 20, CPUSeconds: 10, CPUPeakVCPU: vcpu}
}

// historyEnv is a ledger in moto holding alice's two bastions and bob's
// one (family bastion-ssh, us-east-1, 1 vCPU and 2 GB, an hour each) and
// three runs of a job (nightly-export, eu-west-1, arm64, 2 vCPU and 8
// GB, 20 minutes each, no supervisor registration), with alice calling.
func historyEnv(t *testing.T) (Env, *recordingLedger) {
	t.Helper()
	_, db := testenv.MotoDynamoDB(t)
	testenv.CreateLedgerTable(t, db, ledgerTable)
	s := &ledger.Store{DB: db, Table: ledgerTable, Policy: ledger.Policy{Grace: 2 * time.Minute, SweepPeriod: 5 * time.Minute,
		SupervisorContainer: "supervisor", Retention: 400 * 24 * time.Hour}}
	id := func(c byte) string { return strings.Repeat(string(c), 32) }
	for _, r := range []bastionRun{
		{id: id('a'), family: "bastion-ssh", region: "us-east-1", cpu: "1024", memory: "2048", arch: "x86_64", owner: aliceID, reason: "INC-1 " + evil,
			start: historyStart, life: time.Hour, usage: usage(0.1, 300, 2048), registered: true},
		{id: id('b'), family: "bastion-ssh", region: "us-east-1", cpu: "1024", memory: "2048", arch: "x86_64", owner: aliceID, reason: "INC-2",
			start: historyStart.Add(24 * time.Hour), life: time.Hour, usage: usage(0.2, 400, 2048), registered: true},
		{id: id('c'), family: "bastion-ssh", region: "us-east-1", cpu: "1024", memory: "2048", arch: "x86_64", owner: bobID, reason: "INC-3",
			start: historyStart.Add(2 * 24 * time.Hour), life: time.Hour, usage: usage(0.15, 350, 2048), registered: true},
		{id: id('d'), family: jobFamily, region: "eu-west-1", cpu: "2048", memory: "8192", arch: "arm64", owner: bobID, reason: "nightly",
			start: historyStart.Add(time.Hour), life: 20 * time.Minute, usage: usage(1.1, 7900, 8192)},
		{id: id('e'), family: jobFamily, region: "eu-west-1", cpu: "2048", memory: "8192", arch: "arm64", owner: bobID, reason: "nightly",
			start: historyStart.Add(25 * time.Hour), life: 20 * time.Minute, usage: usage(0.9, 5000, 8192)},
		{id: id('f'), family: jobFamily, region: "eu-west-1", cpu: "2048", memory: "8192", arch: "arm64", owner: bobID, reason: "nightly",
			start: historyStart.Add(49 * time.Hour), life: 20 * time.Minute, usage: usage(1.0, 6000, 8192)},
	} {
		r.write(t, s)
	}
	rec := &recordingLedger{db: db}
	return Env{
		Environ: map[string]string{},
		Clock:   clocktest.NewFake(historyNow),
		Stacks: fakeStack{"ClusterName": "bastions", "LedgerTableName": ledgerTable,
			"TaskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/bastion-ssh:3"},
		Caller: fakeCaller{arn: "arn:aws:sts::123456789012:assumed-role/developers/alice", userID: aliceID},
		Ledger: rec,
	}, rec
}

func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return v
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// An hour of 1 vCPU and 2 GB in us-east-1, billed from the pull (30 s
// before the start) to the stop (40 s after the hour).
var bastionCost = (1*0.04048 + 2*0.004445) * (time.Hour + 70*time.Second).Hours()

// history with no flags is the caller's own, through the owner index with
// her own user ID (the shape LauncherPolicy allows: template/ledger_test.go,
// "history: Query the owner index for her own"), newest first, with cost.
func TestHistoryMine(t *testing.T) {
	env, rec := historyEnv(t)
	out, errs, code := runCLI(env, "history", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows := decodeJSON[[]Past](t, out)
	if len(rows) != 2 || rows[0].TaskID != strings.Repeat("b", 32) || rows[1].TaskID != strings.Repeat("a", 32) {
		t.Fatalf("rows: %+v", rows)
	}
	r := rows[1]
	if r.Owner != aliceID || r.Family != "bastion-ssh" || r.Ending != "ttl" || r.Verdict != "on time" || r.CPU != 1024 || r.MemoryMiB != 2048 ||
		r.Region != "us-east-1" || r.Architecture != "x86_64" || r.LifetimeSeconds != 3640 || r.LatenessSeconds == nil || *r.LatenessSeconds != 1 ||
		r.PeakVCPU == nil || *r.PeakVCPU != 0.1 || r.PeakMemoryBytes == nil || *r.PeakMemoryBytes != 300<<20 || r.CostUSD == nil || !near(*r.CostUSD, bastionCost) {
		t.Errorf("row: %+v", r)
	}
	if len(rec.queries) != 1 || rec.queries[0] != ledger.OwnerIndex+" "+aliceID {
		t.Errorf("queries %q: want one of the owner index with alice's own ID", rec.queries)
	}
	if errs != "" {
		t.Errorf("stderr: %s", errs)
	}

	out, _, code = runCLI(env, "history")
	if code != 0 || !strings.Contains(out, "TASK") || !strings.Contains(out, "alice") || !strings.Contains(out, "$0.0503") ||
		!strings.Contains(out, "300 MiB of 2048") || !strings.Contains(out, "0.10 of 1 vCPU") || !strings.Contains(out, "+1s") {
		t.Errorf("table (exit %d):\n%s", code, out)
	}
	terminalSafe(t, "history's table", out)
}

// Another owner, a family (a job's: same item shape, no registration), and
// both: the right index each time; a region without a rate shows ? and one
// note, which --rates silences.
func TestHistoryOthersAndJobs(t *testing.T) {
	env, rec := historyEnv(t)
	out, _, code := runCLI(env, "history", "--owner", bobID, "--json")
	if rows := decodeJSON[[]Past](t, out); code != 0 || len(rows) != 4 {
		t.Errorf("bob's: exit %d, %d rows", code, len(rows))
	}
	out, errs, code := runCLI(env, "history", "--family", jobFamily)
	if code != 0 || strings.Count(out, jobFamily) != 3 || !strings.Contains(out, "?") || strings.Contains(out, "bastion-ssh") {
		t.Errorf("the job's (exit %d):\n%s", code, out)
	}
	if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "eu-west-1") || !strings.Contains(errs, "--rates") {
		t.Errorf("the missing rate's note: %q", errs)
	}
	rates := filepath.Join(t.TempDir(), "rates.json")
	if err := os.WriteFile(rates, []byte(`{"eu-west-1": {"arm64": {"vcpuHour": 0.03, "gbHour": 0.003}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = runCLI(env, "history", "--family", jobFamily, "--rates", rates, "--json")
	rows := decodeJSON[[]Past](t, out)
	want := (2*0.03 + 8*0.003) * (20*time.Minute + 70*time.Second).Hours()
	if code != 0 || errs != "" || len(rows) != 3 || rows[0].CostUSD == nil || !near(*rows[0].CostUSD, want) || rows[0].Ending != "other" || rows[0].Verdict != "unknown" {
		t.Errorf("with --rates (exit %d, %q): %+v", code, errs, rows)
	}
	out, _, code = runCLI(env, "history", "--owner", Me, "--family", "bastion-ssh", "--since", "2d", "--json")
	if rows := decodeJSON[[]Past](t, out); code != 0 || len(rows) != 0 {
		t.Errorf("alice's bastion-ssh of the last 2 days: %+v", rows)
	}
	out, _, code = runCLI(env, "history", "--owner", Me, "--family", "bastion-ssh", "--since", "5d", "--json")
	if rows := decodeJSON[[]Past](t, out); code != 0 || len(rows) != 2 {
		t.Errorf("alice's bastion-ssh of the last 5 days: %d rows", len(rows))
	}
	if want := []string{ledger.OwnerIndex + " " + bobID, ledger.FamilyIndex + " " + jobFamily, ledger.FamilyIndex + " " + jobFamily,
		ledger.OwnerIndex + " " + aliceID, ledger.OwnerIndex + " " + aliceID}; strings.Join(rec.queries, ",") != strings.Join(want, ",") {
		t.Errorf("queries %q, want %q", rec.queries, want)
	}
}

// Bad values exit 2 naming the flag, and ask the ledger nothing.
func TestHistoryBadFlags(t *testing.T) {
	env, rec := historyEnv(t)
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--since", "0d"}, "since"},
		{[]string{"--since", "soon"}, "since"},
		{[]string{"--since", "-3d"}, "since"},
		{[]string{"--rates", "/nonexistent/rates.json"}, "--rates"},
		{[]string{"--owner", "bob\x1b[2J"}, "--owner"},
		{[]string{"--family", "\u202eevil"}, "--family"},
		{[]string{"extra"}, "no arguments"},
	} {
		for _, cmd := range []string{"history", "rightsize"} {
			if cmd == "rightsize" && c.flag == "--owner" {
				continue
			}
			_, errs, code := runCLI(env, append([]string{cmd}, c.args...)...)
			if code != 2 || !strings.Contains(errs, c.flag) {
				t.Errorf("%s %q: exit %d, %q", cmd, c.args, code, errs)
			}
		}
	}
	if len(rec.queries) != 0 {
		t.Errorf("bad input queried the ledger: %q", rec.queries)
	}
	// The table: the flag, the environment, the stack.
	env.Stacks = fakeStack(nil)
	if _, errs, code := runCLI(env, "history"); code != 2 || !strings.Contains(errs, "--table") || !strings.Contains(errs, "BASTION_LEDGER_TABLE") {
		t.Errorf("no table: exit %d, %q", code, errs)
	}
	env.Environ["BASTION_LEDGER_TABLE"] = ledgerTable
	if _, errs, code := runCLI(env, "history"); code != 0 {
		t.Errorf("BASTION_LEDGER_TABLE: exit %d, %q", code, errs)
	}
}

// rightsize, the stack's family: peaks 0.2 vCPU and 400 MiB need 0.3 vCPU
// and 500 MiB, which 0.5 vCPU and 1 GB hold; the saving is the hourly
// difference times the three bastions' billed hours, over 4 days scaled
// to 30... within a 30-day window: their sum.
func TestRightsize(t *testing.T) {
	env, rec := historyEnv(t)
	out, errs, code := runCLI(env, "rightsize", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	r := decodeJSON[Rightsizing](t, out)
	hours := 3 * (time.Hour + 70*time.Second).Hours()
	saving := ((1*0.04048 + 2*0.004445) - (0.5*0.04048 + 1*0.004445)) * hours
	if r.Family != "bastion-ssh" || r.Bastions != 3 || r.WithUsage != 3 || r.Current == nil || *r.Current != (fargate.Size{CPU: 1024, MemoryMiB: 2048}) ||
		r.Proposed == nil || *r.Proposed != (fargate.Size{CPU: 512, MemoryMiB: 1024}) || !near(r.NeedVCPU, 0.3) || r.NeedMemoryMiB != 500 ||
		r.MemoryLimitHit || r.CPULimitHit || !near(r.HoursPer30Days, hours) || r.MonthlySavingUSD == nil || !near(*r.MonthlySavingUSD, saving) {
		t.Errorf("rightsizing: %+v", r)
	}
	if len(rec.queries) != 1 || rec.queries[0] != ledger.FamilyIndex+" bastion-ssh" {
		t.Errorf("queries %q", rec.queries)
	}
	out, _, code = runCLI(env, "rightsize")
	if code != 0 || !strings.Contains(out, "proposed:  0.5 vCPU, 1 GB (cpu 512, memory 1024)") || !strings.Contains(out, "saving: $0.08 a month") {
		t.Errorf("text (exit %d):\n%s", code, out)
	}

	// A window of 3 days holds one bastion: too few, said plainly.
	out, _, code = runCLI(env, "rightsize", "--since", "3d")
	if code != 0 || !strings.Contains(out, "too few bastions of bastion-ssh with a usage report since 3d: 1 of 1; rightsize needs 3") {
		t.Errorf("too few (exit %d):\n%s", code, out)
	}
}

// A job's family: one run reached its memory limit (7900 of 8192 MiB), so
// the proposal keeps 8 GB; its peaks of 1.1 vCPU need 1.65 (2 vCPU). No
// rate for eu-west-1: a size, no saving, and the note; --rates gives it.
func TestRightsizeJob(t *testing.T) {
	env, _ := historyEnv(t)
	out, errs, code := runCLI(env, "rightsize", "--family", jobFamily, "--json")
	r := decodeJSON[Rightsizing](t, out)
	if code != 0 || !r.MemoryLimitHit || r.NeedMemoryMiB != 9875 || r.Proposed == nil || *r.Proposed != (fargate.Size{CPU: 2048, MemoryMiB: 10240}) ||
		r.MonthlySavingUSD != nil || r.Architecture != fargate.ARM || !strings.Contains(errs, "eu-west-1") {
		t.Errorf("job (exit %d, %q): %+v", code, errs, r)
	}
	rates := filepath.Join(t.TempDir(), "rates.json")
	if err := os.WriteFile(rates, []byte(`{"eu-west-1": {"arm64": {"vcpuHour": 0.03, "gbHour": 0.003}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = runCLI(env, "rightsize", "--family", jobFamily, "--rates", rates)
	if code != 0 || errs != "" || !strings.Contains(out, "the current size is too small: $") {
		t.Errorf("job with --rates (exit %d, %q):\n%s", code, errs, out)
	}
}
