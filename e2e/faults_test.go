package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
)

// Outcomes: how the bastion ended.
const (
	stoppedRemotely = "stopped remotely" // StopTask through the API, by deadline + grace
	failSafeExit    = "fail-safe exit"   // the essential sidecar exits 1 by deadline + grace: ECS stops the task
	exitOnSIGTERM   = "exit 0 on SIGTERM"
)

const (
	region     = "us-west-2"
	account    = "111122223333"
	clusterARN = "arn:aws:ecs:us-west-2:111122223333:cluster/default"
	taskARN    = taskmetadata.SampleTaskARN
	ttl        = 2 * time.Second
	grace      = 5 * time.Second // the least the supervisor accepts
	// slack is how late after deadline + grace an exit may be observed on
	// a loaded 2-core machine; it never excuses an early one.
	slack = 2 * time.Second
)

// counter numbers calls from 1.
type counter struct{ n atomic.Int32 }

func (c *counter) next() int { return int(c.n.Add(1)) }

type faultCase struct {
	name    string
	outcome string
	// meta answers the n-th metadata request; nil serves the started task.
	meta func(n int, started time.Time, w http.ResponseWriter)
	// startsAfter delays the task's start (metadata shows it PENDING until then).
	startsAfter time.Duration
	// api answers the n-th API request instead of the gateway (status; -1 hangs); 0 passes.
	api func(n int) int
	// refuse points the supervisor at a port nothing listens on.
	refuse bool
	// lambdaFails makes the n-th invocation a function error.
	lambdaFails func(n int) bool
	// ecsFault answers the n-th StopTask.
	ecsFault func(n int) *ecsapi.Fault
	// sigterm, when not zero, is sent at deadline + sigterm (negative: before).
	sigterm time.Duration
	// sts answers the n-th identity check (status and STS error code)
	// instead of the STS stand-in; 0 passes.
	sts func(n int) (int, string)
	// final: the API's answer is a final refusal, so the fail-safe exit
	// comes at once, well before deadline + grace.
	final bool
}

func always(int) bool             { return true }
func firstN(k int) func(int) bool { return func(n int) bool { return n <= k } }

func status(s, k int) func(int) int {
	return func(n int) int {
		if k < 0 || n <= k {
			return s
		}
		return 0
	}
}

func stsFault(s int, code string, k int) func(int) (int, string) {
	return func(n int) (int, string) {
		if k < 0 || n <= k {
			return s, code
		}
		return 0, ""
	}
}

func TestFaults(t *testing.T) {
	pending := func(_ int, _ time.Time, w http.ResponseWriter) {
		_, _ = w.Write(taskmetadata.Document(taskARN, clusterARN, time.Time{}))
	}
	cases := []faultCase{
		{name: "metadata endpoint down at start", outcome: stoppedRemotely,
			meta: func(n int, started time.Time, w http.ResponseWriter) {
				if n <= 3 {
					http.Error(w, "agent not ready", http.StatusInternalServerError)
					return
				}
				_, _ = w.Write(taskmetadata.Document(taskARN, clusterARN, started))
			}},
		{name: "metadata endpoint slow (first answer after the client's timeout)", outcome: stoppedRemotely,
			meta: func(n int, started time.Time, w http.ResponseWriter) {
				if n == 1 {
					time.Sleep(2500 * time.Millisecond)
				}
				_, _ = w.Write(taskmetadata.Document(taskARN, clusterARN, started))
			}},
		{name: "metadata endpoint returns garbage", outcome: failSafeExit,
			meta: func(int, time.Time, http.ResponseWriter) {}},
		{name: "metadata: task not started yet, starts 1s later", outcome: stoppedRemotely, startsAfter: time.Second},
		{name: "metadata: task never shows as started", outcome: failSafeExit, meta: pending},
		{name: "terminate API refuses connections", outcome: failSafeExit, refuse: true},
		{name: "terminate API times out", outcome: failSafeExit, api: status(-1, -1)},
		{name: "terminate API 503 twice, then accepts", outcome: stoppedRemotely, api: status(503, 2)},
		{name: "terminate API 5xx always", outcome: failSafeExit, api: status(502, -1)},
		{name: "terminate API 429 twice, then accepts", outcome: stoppedRemotely, api: status(429, 2)},
		{name: "terminate API 403", outcome: failSafeExit, api: status(403, -1), final: true},
		{name: "terminate API at a wrong path or stage (API Gateway's own 404)", outcome: failSafeExit, api: status(404, -1), final: true},
		{name: "STS throttles the proof twice (a 400 Throttling), then verifies it", outcome: stoppedRemotely, sts: stsFault(400, "Throttling", 2)},
		{name: "STS unavailable always", outcome: failSafeExit, sts: stsFault(503, "ServiceUnavailable", -1)},
		{name: "STS refuses the proof (a stale clock, revoked credentials)", outcome: failSafeExit, sts: stsFault(403, "SignatureDoesNotMatch", -1), final: true},
		{name: "Lambda function errors twice, then works", outcome: stoppedRemotely, lambdaFails: firstN(2)},
		{name: "Lambda function errors always", outcome: failSafeExit, lambdaFails: always},
		{name: "ECS throttles StopTask three times", outcome: stoppedRemotely,
			ecsFault: func(n int) *ecsapi.Fault {
				if n <= 3 {
					return &ecsapi.Throttled
				}
				return nil
			}},
		{name: "ECS unavailable always", outcome: failSafeExit,
			ecsFault: func(int) *ecsapi.Fault { return &ecsapi.Fault{Status: 503, Code: "ServerException"} }},
		{name: "SIGTERM before the deadline", outcome: exitOnSIGTERM, sigterm: -time.Second},
		{name: "SIGTERM while retrying after the deadline", outcome: exitOnSIGTERM, api: status(503, -1), sigterm: time.Second},
		{name: "SIGTERM after the stop was accepted", outcome: stoppedRemotely},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runFault(t, c)
		})
	}
}

func runFault(t *testing.T, c faultCase) {
	// ECS, with the fault; the stop's time is recorded.
	ecsAPI := ecsapi.New()
	var stopMu sync.Mutex
	var stoppedAt time.Time
	ecsAPI.OnStop = func(ecsapi.Task) {
		stopMu.Lock()
		defer stopMu.Unlock()
		if stoppedAt.IsZero() {
			stoppedAt = time.Now()
		}
	}
	var stops counter
	ecsAPI.Inject(func(action string, _ map[string]any) *ecsapi.Fault {
		if action == "StopTask" && c.ecsFault != nil {
			return c.ecsFault(stops.next())
		}
		return nil
	})

	// The stack: the terminate function in process (its ECS client does not
	// retry, so ECS's answer reaches the supervisor as the function's
	// status), STS and the API, each with its fault.
	var stsCalls, invocations counter
	st := startStack(t, stack.Config{
		Region: region, Account: account, Clusters: []string{"default"}, TaskRoles: []string{taskRoleID},
		Callers: []sts.Caller{caller(account, taskARN)}, ECS: ecsAPI,
		STSFail: func(*http.Request) (int, string) {
			if c.sts == nil {
				return 0, ""
			}
			return c.sts(stsCalls.next())
		},
		Invoke: func(next apigateway.Invoker) apigateway.Invoker {
			return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				if c.lambdaFails != nil && c.lambdaFails(invocations.next()) {
					return events.APIGatewayV2HTTPResponse{}, errors.New("Runtime.ExitError")
				}
				return next(ctx, ev)
			}
		},
	})
	// In front of the gateway, the API's own faults.
	var requests counter
	hang := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.api != nil {
			switch s := c.api(requests.next()); {
			case s < 0:
				_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client going away
				select {
				case <-hang:
				case <-r.Context().Done():
				}
				return
			case s > 0:
				http.Error(w, `{"message":"injected"}`, s)
				return
			}
		}
		st.Gateway.ServeHTTP(w, r)
	}))
	defer api.Close()
	defer close(hang) // before api.Close, which waits for handlers
	apiURL := api.URL
	if c.refuse {
		apiURL = closedURL(t)
	}

	// The task, in ECS and at its metadata endpoint.
	launched := time.Now()
	started := launched.Add(c.startsAfter)
	ecsAPI.Add(ecsapi.Task{ARN: taskARN, ClusterARN: clusterARN, StartedAt: started})
	var metaCalls counter
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := metaCalls.next()
		switch {
		case c.meta != nil:
			c.meta(n, started, w)
		case time.Now().Before(started):
			_, _ = w.Write(taskmetadata.Document(taskARN, clusterARN, time.Time{}))
		default:
			_, _ = w.Write(taskmetadata.Document(taskARN, clusterARN, started))
		}
	}))
	defer meta.Close()

	deadline := started.Add(ttl)
	sup := startSupervisor(t, meta.URL, apiURL, st.STSURL, ttl, grace, region)
	if c.sigterm != 0 {
		time.Sleep(time.Until(deadline.Add(c.sigterm)))
	}
	stopTime := func() time.Time {
		stopMu.Lock()
		defer stopMu.Unlock()
		return stoppedAt
	}

	switch c.outcome {
	case stoppedRemotely:
		end := deadline.Add(grace)
		for stopTime().IsZero() && time.Now().Before(end) {
			time.Sleep(20 * time.Millisecond)
		}
		at := stopTime()
		if at.IsZero() {
			t.Fatalf("%s: the task was not stopped by deadline + grace", c.outcome)
		}
		if at.Before(deadline) {
			t.Fatalf("the task was stopped %v BEFORE its deadline", deadline.Sub(at))
		}
		if code := sigterm(t, sup); code != 0 {
			t.Errorf("exit %d on SIGTERM after the stop, want 0", code)
		}
		t.Logf("%s %v after the deadline", c.outcome, at.Sub(deadline).Round(time.Millisecond))

	case failSafeExit:
		select {
		case <-sup.Done():
		case <-time.After(time.Until(deadline.Add(grace + slack))):
			t.Fatalf("%s: the supervisor still runs at deadline + grace + %v", c.outcome, slack)
		}
		if sup.Code() != 1 {
			t.Fatalf("exit %d, want 1 (the fail-safe)", sup.Code())
		}
		if sup.ExitedAt().Before(deadline) {
			t.Fatalf("fail-safe exit %v BEFORE the deadline", deadline.Sub(sup.ExitedAt()))
		}
		if c.final && sup.ExitedAt().After(deadline.Add(grace/2)) {
			t.Fatalf("a final refusal, yet the fail-safe exit came %v after the deadline", sup.ExitedAt().Sub(deadline))
		}
		if at := stopTime(); !at.IsZero() && at.Before(deadline) {
			t.Fatalf("the task was stopped %v before its deadline", deadline.Sub(at))
		}
		t.Logf("%s %v after the deadline", c.outcome, sup.ExitedAt().Sub(deadline).Round(time.Millisecond))

	case exitOnSIGTERM:
		sentAt := time.Now()
		if code := sigterm(t, sup); code != 0 {
			t.Fatalf("exit %d on SIGTERM, want 0", code)
		}
		if at := stopTime(); !at.IsZero() && at.Before(deadline) {
			t.Fatalf("the task was stopped %v before its deadline", deadline.Sub(at))
		}
		if c.sigterm < 0 && requests.n.Load() > 0 {
			t.Fatalf("a stop request was sent before the deadline")
		}
		t.Logf("%s %v after the signal", c.outcome, sup.ExitedAt().Sub(sentAt).Round(time.Millisecond))
	}
}
