package e2e

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// The whole chain with real processes: the supervisor binary signs a
// request to the API Gateway stand-in, which invokes the terminate
// bootstrap under the Lambda Runtime Interface Emulator, which stops the
// task in moto_server (through the mending proxy). The task ends STOPPED
// with the TTL reason, on time, and the other task still runs. The ledger
// bootstrap, fed the task's state changes, ends with its item: ending ttl,
// on time, the supervisor's usage and the owner's tag.
func TestEndToEnd(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	tasks := testenv.RunTasks(t, client, "bastions", 2, ownerTag)
	me, other := tasks[0], tasks[1]
	fn, st := startChain(t, endpoint, me, 12*time.Hour)
	started := time.Now()
	meta := metadataOf(t, me, started)
	const ttl, grace = 2 * time.Second, 5 * time.Second
	deadline := started.Add(ttl)
	sup := startSupervisor(t, meta, st.APIURL, st.STSURL, ttl, grace, testenv.Region)

	var stoppedAt time.Time
	for time.Now().Before(deadline.Add(grace)) {
		task := testenv.Describe(t, client, "bastions", []string{me})[me]
		if aws.ToString(task.DesiredStatus) == "STOPPED" {
			stoppedAt = time.Now()
			want := "bastion-ttl: TTL 2s expired (started " + started.UTC().Format(time.RFC3339) + ")"
			if got := aws.ToString(task.StoppedReason); got != want {
				t.Errorf("stop reason %q, want %q", got, want)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	switch {
	case stoppedAt.IsZero():
		t.Fatalf("the task was not stopped by deadline + grace\nemulator:\n%s", fn.Output())
	case stoppedAt.Before(deadline):
		t.Fatalf("the task was stopped %v before its deadline", deadline.Sub(stoppedAt))
	}
	t.Logf("stopped %v after the deadline (polled every 50ms)", stoppedAt.Sub(deadline).Round(time.Millisecond))
	fn.WaitOutput(t, 5*time.Second, `"outcome":"stopped"`)
	if code := sigterm(t, sup); code != 0 {
		t.Errorf("supervisor exit %d after SIGTERM, want 0", code)
	}
	if got := testenv.Describe(t, client, "bastions", []string{other})[other]; aws.ToString(got.DesiredStatus) != "RUNNING" {
		t.Errorf("the other task is %s", aws.ToString(got.DesiredStatus))
	}
	it := judged(t, endpoint, me)
	o := it.Outcome
	t.Logf("ledger: %s, %s, lateness %v: %s", o.Ending, o.Verdict, o.Lateness, o.Why)
	if o.Ending != ledger.EndingTTL || o.Verdict != ledger.OnTime {
		t.Errorf("ledger: ending %q, verdict %q (%s), want ttl, on time", o.Ending, o.Verdict, o.Why)
	}
	if !o.HasLateness || o.Lateness < -ledger.EarlyTolerance || o.Lateness > grace {
		t.Errorf("ledger: lateness %v (known %v), want within -%v and grace %v", o.Lateness, o.HasLateness, ledger.EarlyTolerance, grace)
	}
	if it.Usage == nil || it.Usage.MemoryPeakBytes <= 0 {
		t.Errorf("ledger: usage %+v, want one with a memory peak", it.Usage)
	}
	if it.Owner != owner {
		t.Errorf("ledger: owner %q, want the tag's %q", it.Owner, owner)
	}
	if it.StopCode != "UserInitiated" || it.StoppingAt.IsZero() {
		t.Errorf("ledger: ECS's stop code %q, stoppingAt %v: the events did not arrive", it.StopCode, it.StoppingAt)
	}
}

// The first line fails: the API's function errors on every POST
// /terminate (the registration, POST /extend, still works), so the
// supervisor's stop request never gets through. The sweeper (its real
// bootstrap under the emulator, a short grace standing in for its
// schedule) stops the task after its deadline, and the ledger's item says
// so: ending sweeper, verdict fallback.
func TestEndToEndSweeperFallback(t *testing.T) {
	endpoint, _ := testenv.MotoECS(t)
	next, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	// moto gives no startedAt, without which the sweeper stops nothing.
	proxy := httputil.NewSingleHostReverseProxy(next)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // the calls the stack's Close cancels
	layer := &ecsapi.ExecLayer{Next: proxy, Now: time.Now}
	front := httptest.NewServer(layer)
	t.Cleanup(front.Close)
	client := testenv.ECSClient(front.URL)
	const ttl, grace = 2 * time.Second, 5 * time.Second
	me := testenv.RunTasks(t, client, "bastions", 1, ownerTag, types.Tag{Key: aws.String(ttltag.Key), Value: aws.String(ttl.String())})[0]
	var fn *testenv.Lambda
	c := chainConfig(t, front.URL, me, time.Hour, &fn)
	c.Invoke = func(next apigateway.Invoker) apigateway.Invoker {
		return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			if ev.RouteKey == "POST /terminate" {
				return events.APIGatewayV2HTTPResponse{}, errors.New("Runtime.ExitError")
			}
			return next(ctx, ev)
		}
	}
	st := startStack(t, c)
	sweeper := testenv.StartLambda(t, testenv.BuildLambda(t, "..", "lambda/sweep"), with(st.SweepEnv(), "BASTION_GRACE", "1s"))
	started := time.Now() // the functions are up: the task starts now
	layer.StartedAt(me, started)
	sup := startSupervisor(t, metadataOf(t, me, started), st.APIURL, st.STSURL, ttl, grace, testenv.Region)

	testenv.WaitFor(t, 3*time.Second, "the supervisor's registration", func() bool { return strings.Contains(fn.Output(), `"outcome":"extended"`) })
	time.Sleep(time.Until(started.Add(ttl + 1500*time.Millisecond)))
	if aws.ToString(testenv.Describe(t, client, "bastions", []string{me})[me].DesiredStatus) != "RUNNING" {
		t.Fatal("stopped before the sweep: the first line was meant to fail")
	}
	if out := string(sweeper.Invoke(t, []byte(scheduledEvent))); !strings.Contains(out, `"stopped":1`) {
		t.Fatalf("the sweep stopped nothing: %s\n%s", out, sweeper.Output())
	}
	it := judged(t, front.URL, me)
	o := it.Outcome
	t.Logf("ledger: %s, %s, lateness %v: %s", o.Ending, o.Verdict, o.Lateness, o.Why)
	if o.Ending != ledger.EndingSweeper || o.Verdict != ledger.Fallback {
		t.Errorf("ledger: ending %q, verdict %q (%s), want sweeper, fallback", o.Ending, o.Verdict, o.Why)
	}
	if it.Sweep == nil || it.Stop != nil {
		t.Errorf("ledger: the sweeper's stop %+v, the terminate function's %+v: want the sweeper's alone", it.Sweep, it.Stop)
	}
	sigterm(t, sup)
}

// with is env with k set to v.
func with(env map[string]string, k, v string) map[string]string {
	env[k] = v
	return env
}

// A scheduled event from EventBridge, as Lambda delivers it to the sweeper.
const scheduledEvent = `{"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
  "source": "aws.events", "account": "123456789012", "time": "2026-11-24T12:00:00Z", "region": "eu-west-1",
  "resources": ["arn:aws:events:eu-west-1:123456789012:rule/bastion-ttl-sweep"], "detail": {}}`

// Extension through the whole chain: at start the sidecar registers its TTL
// (the task's tag in moto), a person on the bastion runs `supervisor extend`,
// the terminate function caps and records it, and the sidecar lets the old
// deadline pass.
func TestEndToEndExtension(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	me := testenv.RunTasks(t, client, "bastions", 1)[0]
	fn, st := startChain(t, endpoint, me, time.Hour)
	started := time.Now()
	meta := metadataOf(t, me, started)
	control := testenv.FreeAddr(t)
	const ttl = 4 * time.Second
	sup := startSupervisor(t, meta, st.APIURL, st.STSURL, ttl, 5*time.Second, testenv.Region, "BASTION_CONTROL_ADDR="+control)

	testenv.WaitFor(t, 3*time.Second, "the TTL's registration in the task's tag", func() bool { return testenv.Tag(t, client, me, ttltag.Key) == "4s" })
	person := testenv.Start(t, supervisorBin, []string{"BASTION_CONTROL_ADDR=" + control}, "extend", "2m")
	if code := person.Wait(t, 10*time.Second); code != 0 || !strings.HasPrefix(person.Output(), "extended: TTL 2m4s, ") {
		t.Fatalf("supervisor extend 2m: exit %d\n%s\nsidecar:\n%s", code, person.Output(), sup.Output())
	}
	if got := testenv.Tag(t, client, me, ttltag.Key); got != "2m4s" {
		t.Fatalf("tag after the extension %q, want 2m4s", got)
	}
	time.Sleep(time.Until(started.Add(ttl + time.Second)))
	if task := testenv.Describe(t, client, "bastions", []string{me})[me]; aws.ToString(task.DesiredStatus) != "RUNNING" {
		t.Fatalf("the task is %s after its first deadline, although extended", aws.ToString(task.DesiredStatus))
	}
	fn.WaitOutput(t, 5*time.Second, `"outcome":"extended"`)
	if code := sigterm(t, sup); code != 0 {
		t.Errorf("supervisor exit %d after SIGTERM, want 0", code)
	}
}

// The private API's shape: the supervisor signs for a REST API stage's URL
// (…/prod/terminate), the gateway delivers payload 1.0, the function
// answers in that format's shape and stops the task, on time.
func TestEndToEndPrivateAPI(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	me := testenv.RunTasks(t, client, "bastions", 1)[0]
	fn, st := startChain(t, endpoint, me, 12*time.Hour, "prod")
	started := time.Now()
	meta := metadataOf(t, me, started)
	const ttl, grace = 2 * time.Second, 5 * time.Second
	sup := startSupervisor(t, meta, st.APIURL, st.STSURL, ttl, grace, testenv.Region)
	deadline := started.Add(ttl)
	testenv.WaitFor(t, ttl+grace, "the task STOPPED", func() bool {
		return aws.ToString(testenv.Describe(t, client, "bastions", []string{me})[me].DesiredStatus) == "STOPPED"
	})
	if time.Now().Before(deadline) {
		t.Fatalf("stopped before its deadline")
	}
	task := testenv.Describe(t, client, "bastions", []string{me})[me]
	if !strings.HasPrefix(aws.ToString(task.StoppedReason), "bastion-ttl: TTL 2s expired") {
		t.Errorf("stop reason %q", aws.ToString(task.StoppedReason))
	}
	fn.WaitOutput(t, 5*time.Second, `"outcome":"stopped"`)
	// The function answers after its ledger writes, a moment after ECS
	// has the stop.
	stopAnswered := regexp.MustCompile(`"msg":"stop request answered"[^\n]*"status":202`)
	testenv.WaitFor(t, 5*time.Second, "the supervisor's 202", func() bool { return stopAnswered.MatchString(sup.Output()) })
	if code := sigterm(t, sup); code != 0 {
		t.Errorf("supervisor exit %d after SIGTERM, want 0", code)
	}
}
