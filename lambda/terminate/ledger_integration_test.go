package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/moto"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// The real bootstrap with LEDGER_TABLE, against ECS and DynamoDB in moto:
// the supervisor's registration (with its start), an extension and its
// stop, and its usage (with the stop and alone) reach the task's ledger item, owner and reason from its tags; a
// ledger it cannot write holds no stop back.
func TestLambdaRecordsInTheLedger(t *testing.T) {
	base := testenv.Moto(t)
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(moto.New(target))
	t.Cleanup(proxy.Close)
	client := testenv.ECSClient(proxy.URL)
	db := testenv.DynamoDBClient(base)
	testenv.CreateLedgerTable(t, db, "ledger")
	tasks := testenv.RunTasks(t, client, "recorded", 2, types.Tag{Key: aws.String(ttltag.OwnerKey), Value: aws.String("AROAEXAMPLEDEVELOPER1:alice")},
		types.Tag{Key: aws.String(ttltag.ReasonKey), Value: aws.String("INC-1234")})

	stsAPI := &sts.Server{Region: testenv.Region, Now: time.Now}
	stsSrv := httptest.NewServer(stsAPI)
	t.Cleanup(stsSrv.Close)
	stsURL, _ := url.Parse(stsSrv.URL)
	start := func(table string) *testenv.Lambda {
		env := stack.Config{Region: testenv.Region, Account: testenv.Account, Clusters: []string{"recorded"},
			TaskRoles: []string{"bastion-task-role"}, MaxTTL: 4 * time.Hour}.Env(proxy.URL, stsSrv.URL)
		env["LEDGER_TABLE"], env["AWS_ENDPOINT_URL_DYNAMODB"] = table, base
		return testenv.StartLambda(t, testenv.BuildLambda(t, "../..", "lambda/terminate"), env)
	}
	invoke := func(fn *testenv.Lambda, ev events.APIGatewayV2HTTPRequest) int {
		t.Helper()
		caller := ev.RequestContext.Authorizer.IAM.UserARN
		p, err := stopclient.Prove(context.Background(), stsAPI.Issue(caller, ""), stsURL, testenv.Region, "POST", identityproof.Route(ev.RawPath), []byte(ev.Body), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ev.Headers = map[string]string{"x-bastion-ttl-identity": p}
		raw, _ := json.Marshal(ev)
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(fn.Invoke(t, raw), &resp); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	role := "arn:aws:sts::" + testenv.Account + ":assumed-role/bastion-task-role/"

	fn := start("ledger")
	me := tasks[0]
	began := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	atStop := stopapi.Usage{Samples: 120, From: began, To: began.Add(2 * time.Hour), MemoryPeakBytes: 96 << 20, MemoryLimitBytes: 512 << 20, CPUSeconds: 42.5, CPUPeakVCPU: 0.3, NetRxBytes: 1 << 20, NetTxBytes: 2 << 20}
	atSIGTERM := atStop
	atSIGTERM.Samples, atSIGTERM.To, atSIGTERM.CPUSeconds = 121, atStop.To.Add(30*time.Second), 43
	steps := []struct {
		ev   events.APIGatewayV2HTTPRequest
		want int
	}{
		{extendEvent(mustJSON(map[string]string{"taskArn": me, "ttl": "1h", "startedAt": began.Format(time.RFC3339Nano)}), role+idOf(me)), 200},
		{extendEvent(mustJSON(map[string]string{"taskArn": me, "ttl": "2h", "startedAt": began.Format(time.RFC3339Nano)}), role+idOf(me)), 200},
		{apiEvent("POST", mustJSON(map[string]any{"taskArn": me, "reason": "TTL 2h0m0s expired (started 2026-12-01T09:00:00Z)", "usage": atStop}), role+idOf(me)), 202},
		{usageEvent(mustJSON(map[string]any{"taskArn": me, "usage": atSIGTERM}), role+idOf(me)), 202},
		{usageEvent(mustJSON(map[string]any{"taskArn": me, "usage": atStop}), role+idOf(me)), 202}, // a retry of the older, late
	}
	for _, s := range steps {
		if got := invoke(fn, s.ev); got != s.want {
			t.Fatalf("%s: %d, want %d", s.ev.RawPath, got, s.want)
		}
	}
	store := &ledger.Store{DB: db, Table: "ledger"}
	it, ok, err := store.Get(context.Background(), me)
	if err != nil || !ok {
		t.Fatalf("no item: %v", err)
	}
	if it.Owner != "AROAEXAMPLEDEVELOPER1:alice" || it.Reason != "INC-1234" || !it.SupervisorStart.Equal(began) || it.TTLAsked != time.Hour ||
		it.TTL != 2*time.Hour || it.Cap != 4*time.Hour || len(it.Extensions) != 1 || it.Extensions[0].TTL != 2*time.Hour ||
		it.Stop == nil || it.Stop.How != ledger.EndingTTL || it.Stop.Why != "bastion-ttl: TTL 2h0m0s expired (started 2026-12-01T09:00:00Z)" {
		t.Errorf("item %+v, stop %+v", it, it.Stop)
	}
	if it.Usage == nil || *it.Usage != atSIGTERM {
		t.Errorf("usage %+v, want the SIGTERM's %+v (the latest, whatever came after it)", it.Usage, atSIGTERM)
	}
	// The ECS events have not come (none here): the function's own record
	// already says how it ended, and the deadline.
	if o := it.Outcome; o.Ending != ledger.EndingTTL || !o.Deadline.Equal(began.Add(2*time.Hour)) {
		t.Errorf("outcome %+v", o)
	}

	// A table the function cannot write: the stop goes through, logged.
	broken := start("no-such-table")
	other := tasks[1]
	if got := invoke(broken, apiEvent("POST", mustJSON(map[string]string{"taskArn": other, "reason": "TTL 1h0m0s expired"}), role+idOf(other))); got != 202 {
		t.Fatalf("stop with the ledger down: %d", got)
	}
	broken.WaitOutput(t, 5*time.Second, `ledger: stop not recorded`)
}
