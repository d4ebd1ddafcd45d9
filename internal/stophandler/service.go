package stophandler

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/metrics"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// ECS is the ECS calls this function makes.
type ECS interface {
	StopTask(ctx context.Context, in *ecs.StopTaskInput, optFns ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
	ListTagsForResource(ctx context.Context, in *ecs.ListTagsForResourceInput, optFns ...func(*ecs.Options)) (*ecs.ListTagsForResourceOutput, error)
	TagResource(ctx context.Context, in *ecs.TagResourceInput, optFns ...func(*ecs.Options)) (*ecs.TagResourceOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// UsageRecorder keeps a task's usage summary (package ledger writes it to
// the task's item). A later summary of the same task supersedes an earlier
// one: it covers more.
type UsageRecorder interface {
	RecordUsage(ctx context.Context, taskARN string, u stopapi.Usage) error
}

// Ledger records what the function did, in the task's ledger item
// (package ledger's Store). A failed record is logged, never an answer's
// cause: the ledger never blocks a stop or an extension.
type Ledger interface {
	Extended(ctx context.Context, taskARN string, r ledger.Registration) error
	Stopping(ctx context.Context, taskARN string, s ledger.Stop) error
}

var (
	_ Ledger        = (*ledger.Store)(nil)
	_ UsageRecorder = (*ledger.Store)(nil)
)

// ledgerBudget bounds a ledger write, which comes after the act it records.
const ledgerBudget = time.Second

// Service answers POST /terminate, POST /extend and POST /usage.
type Service struct {
	ECS    ECS
	Policy Policy
	// Prover checks each request's proof of identity with STS: the role
	// pin and the self rule judge the identity it proves.
	Prover *Prover
	Region string // the function's own region: tasks elsewhere are refused
	// Account is the function's own account (BASTION_ACCOUNT_ID): callers
	// and tasks of any other are refused. Empty: the event's
	// requestContext.accountId, which a direct invoker writes.
	Account string
	MaxTTL  time.Duration // the cap of POST /extend; the bastion cannot lift it
	// Function names the function in its metrics: each request's log line
	// is also an embedded-metric document (package metrics).
	Function string
	// UsageRecorder keeps the usage that an authorized request carries;
	// nil: the usage is checked, logged and dropped. A record that fails is
	// logged and never fails the request.
	UsageRecorder UsageRecorder
	// Ledger records registrations, extensions and stops; nil: no ledger
	// (LEDGER_TABLE unset).
	Ledger Ledger
	Log    *slog.Logger
}

// New is the Service that cfg describes, stopping tasks with client and
// logging to log: what the Lambda's main runs, and the local stack too.
func New(cfg Config, client ECS, log *slog.Logger) *Service {
	return &Service{
		ECS:      client,
		Policy:   cfg.Policy,
		Prover:   &Prover{Endpoint: cfg.STS, Region: cfg.Region, Now: time.Now, AcceptUnproven: cfg.AcceptUnproven},
		Region:   cfg.Region,
		Account:  cfg.Account,
		MaxTTL:   cfg.MaxTTL,
		Function: cfg.Function,
		Log:      log,
	}
}

// outcome is what a request came to, for the log line.
type outcome struct {
	status  int
	body    any
	taskARN string // as soon as it is known
	done    string // the log's outcome on success: stopped, extended
	attrs   []any
	err     *errorAnswer
	cluster string           // once authorized: an allowed cluster, a metrics dimension
	metrics []metrics.Metric // of a success; a refusal counts its code
}

// request is an API request, whichever payload format delivered it.
type request struct {
	route     string // the last element of the route's path: terminate, extend
	method    string
	body      string
	base64    bool
	accountID string // the API's own account
	requestID string
	id        Identity // as the event tells it: believed only where STS agrees
	cognito   bool     // the event names a Cognito identity: never a task, refused on its word
	proof     string   // the identity proof header's value
	hasProof  bool
	proofErr  *errorAnswer // a header that cannot be one proof (repeated)
	rawBody   []byte       // the body as sent, base64 decoded: what the proof is bound to
}

// Handle answers the HTTP API's events (payload format 2.0).
func (s *Service) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r := request{method: ev.RequestContext.HTTP.Method, body: ev.Body, base64: ev.IsBase64Encoded,
		accountID: ev.RequestContext.AccountID, requestID: ev.RequestContext.RequestID}
	if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil {
		r.id = Identity{UserARN: a.IAM.UserARN, UserID: a.IAM.UserID}
		c := a.IAM.CognitoIdentity
		r.cognito = c.IdentityID != "" || c.IdentityPoolID != "" || len(c.AMR) > 0
	}
	r.route = routeV2(ev)
	r.proof, r.hasProof, r.proofErr = proofHeader(ev.Headers)
	status, body := s.serve(ctx, r)
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: jsonHeaders(), Body: body}, nil
}

// HandleREST answers the REST API's events (payload format 1.0), for the
// private API: the same request, the caller's identity in another place
// (requestContext.identity), the same rules.
func (s *Service) HandleREST(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	r := request{method: ev.HTTPMethod, body: ev.Body, base64: ev.IsBase64Encoded,
		accountID: ev.RequestContext.AccountID, requestID: ev.RequestContext.RequestID,
		id: Identity{UserARN: ev.RequestContext.Identity.UserArn, UserID: ev.RequestContext.Identity.User}}
	if id := ev.RequestContext.Identity; id.CognitoIdentityID != "" || id.CognitoIdentityPoolID != "" ||
		id.CognitoAuthenticationType != "" || id.CognitoAuthenticationProvider != "" {
		r.cognito = true
	}
	r.route = routeREST(ev)
	r.proof, r.hasProof, r.proofErr = proofHeader(ev.Headers)
	if len(ev.MultiValueHeaders) > 0 {
		multi := map[string]string{}
		for k, vs := range ev.MultiValueHeaders {
			multi[k] = strings.Join(vs, ",")
		}
		r.proof, r.hasProof, r.proofErr = proofHeader(multi)
	}
	status, body := s.serve(ctx, r)
	return events.APIGatewayProxyResponse{StatusCode: status, Headers: jsonHeaders(), Body: body}, nil
}

// Invoke is the Lambda handler: it answers both payload formats, the HTTP
// API's (version 2.0) and the REST API's (1.0, which names httpMethod at
// its root), each in its own response shape. Anything else is not an API
// request: an error to the runtime, and nothing done.
func (s *Service) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Version    string `json:"version"`
		HTTPMethod string `json:"httpMethod"`
	}
	if err := json.Unmarshal(raw, &probe); err == nil {
		switch {
		case probe.Version == "2.0":
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err == nil {
				return s.Handle(ctx, ev)
			}
		case probe.HTTPMethod != "":
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(raw, &ev); err == nil {
				return s.HandleREST(ctx, ev)
			}
		}
	}
	s.Log.ErrorContext(ctx, "not an API Gateway request (payload 2.0 or 1.0): nothing done", "bytes", len(raw))
	return nil, errors.New("not an API Gateway request")
}

// routeV2 is the route a payload 2.0 event is served as, by the rule the
// client binds its proof with (identityproof.Route): of the route key's
// path ("POST /terminate"), or of the path for a catch-all route.
func routeV2(ev events.APIGatewayV2HTTPRequest) string {
	p := ev.RawPath
	if _, routePath, ok := strings.Cut(ev.RouteKey, " "); ok {
		p = routePath
	}
	return identityproof.Route(p)
}

// routeREST is routeV2 for a payload 1.0 event: of its resource
// ("/terminate", whatever the stage or a custom domain's base path), else
// of its path.
func routeREST(ev events.APIGatewayProxyRequest) string {
	p := ev.Resource
	if p == "" {
		p = ev.Path
	}
	return identityproof.Route(p)
}

// serve stops, extends or records usage, by route, and logs one line: every outcome is an
// HTTP answer.
func (s *Service) serve(ctx context.Context, r request) (int, string) {
	began := time.Now()
	r.rawBody = bodyBytes(r.body, r.base64)
	var o outcome
	switch {
	case s.Account != "" && r.accountID != "" && r.accountID != s.Account:
		o.err = reject(http.StatusForbidden, "the request is for another account's API")
	case s.Account != "":
		r.accountID = s.Account
	}
	switch {
	case o.err != nil:
	case r.route == "terminate":
		o = s.stop(ctx, r)
	case r.route == "extend":
		o = s.extend(ctx, r)
	case r.route == "usage":
		o = s.usage(ctx, r)
	default:
		o.err = reject(http.StatusBadRequest, "route %q is not served here; use POST /terminate, POST /extend or POST /usage", r.route)
	}
	attrs := append([]any{"request_id", r.requestID, "caller", r.id.UserARN, "task_arn", o.taskARN}, o.attrs...)
	result := o.done
	if err := o.err; err != nil {
		o.status, o.body = err.Status, stopapi.ErrorBody{Code: err.Code, Error: err.Message}
		result = "rejected"
		if err.Status >= 500 {
			result = "failed"
		}
		attrs = append(attrs, "code", string(err.Code), "error", err.Message)
		if err.Cause != nil {
			attrs = append(attrs, "cause", err.Cause.Error())
		}
	}
	attrs = append(attrs, "outcome", result, "status", o.status, "duration_ms", time.Since(began).Milliseconds())
	level := slog.LevelInfo
	if o.status >= 500 {
		level = slog.LevelError
	} else if o.status >= 400 {
		level = slog.LevelWarn
	}
	msg := "terminate request"
	switch r.route {
	case "extend":
		msg = "extend request"
	case "usage":
		msg = "usage request"
	}
	if o.err != nil {
		o.metrics = []metrics.Metric{metrics.One(string(o.err.Code))}
	}
	attrs = append(attrs, metrics.Attrs(time.Now(), s.Function, o.cluster, o.metrics...)...)
	s.Log.Log(ctx, level, msg, attrs...)
	return o.status, encode(o.body)
}

// admit proves the caller of a parsed request and authorizes it to act on
// t; refused is the answer when it may not.
func (s *Service) admit(ctx context.Context, r request, t target) (proof []any, unproven bool, refused *outcome) {
	id, proof, unproven, err := s.identify(ctx, r)
	if err == nil {
		err = s.Policy.authorize(id, r.accountID, t)
	}
	if err != nil {
		return proof, false, &outcome{taskARN: t.task.String(), err: err, attrs: proof}
	}
	return proof, unproven, nil
}

// stop validates, authorizes and stops.
func (s *Service) stop(ctx context.Context, r request) outcome {
	t, err := parseTerminate(r.method, r.body, r.base64, s.Region)
	if err != nil {
		return outcome{err: err}
	}
	arn := t.task.String()
	ctx, cancel := withReserve(ctx)
	defer cancel()
	proof, unproven, refused := s.admit(ctx, r, t)
	if refused != nil {
		return *refused
	}
	out, stopErr := s.ECS.StopTask(ctx, &ecs.StopTaskInput{
		Cluster: aws.String(t.cluster),
		Task:    aws.String(arn),
		Reason:  aws.String(stopReason(t.reason)),
	})
	if stopErr != nil {
		o := outcome{taskARN: arn, cluster: t.cluster, err: classify(stopErr)}
		if o.err.Status == http.StatusNotFound { // gone: what it used is still worth keeping
			o.attrs = s.recordUsage(ctx, arn, t.usage)
		}
		return o
	}
	// After the stop, which must not wait for them; one budget for both.
	stoppedAt := time.Now().UTC()
	lctx, lcancel := context.WithTimeout(ctx, ledgerBudget)
	defer lcancel()
	s.record(lctx, arn, "stop", func(ctx context.Context) error {
		return s.Ledger.Stopping(ctx, arn, ledger.Stop{At: stoppedAt, How: stopHow(t.reason), Why: stopReason(t.reason)})
	})
	proof = append(proof, s.recordUsage(lctx, arn, t.usage)...)
	a := stopapi.Accepted{TaskARN: arn}
	if out != nil && out.Task != nil {
		a.LastStatus, a.DesiredStatus = aws.ToString(out.Task.LastStatus), aws.ToString(out.Task.DesiredStatus)
	}
	return outcome{status: http.StatusAccepted, body: a, taskARN: arn, done: "stopped", cluster: t.cluster, attrs: proof,
		metrics: withUnproven(unproven, metrics.One(metrics.Accepted), metrics.One(stoppedBy(t.reason)))}
}

// identify is the caller as its proof of identity shows it, the log's
// attributes saying how it was proven, and whether it was let through
// without a proof (BASTION_ACCEPT_UNPROVEN).
func (s *Service) identify(ctx context.Context, r request) (Identity, []any, bool, *errorAnswer) {
	if r.cognito {
		// Refusing on the event's word is safe: it can only say no.
		return Identity{}, nil, false, reject(http.StatusForbidden, "caller is a Cognito identity, not an assumed-role session of a task role")
	}
	if r.proofErr != nil {
		return Identity{}, []any{"proof", proofRefused}, false, r.proofErr
	}
	if s.Prover == nil {
		return Identity{}, nil, false, internalError(errors.New("no identity prover configured"))
	}
	id, state, err := s.Prover.prove(ctx, r)
	attrs := []any{"proof", state}
	if err == nil {
		attrs = append(attrs, "proven_caller", id.UserARN)
	}
	return id, attrs, state == proofAbsentAccepted, err
}

// withUnproven adds the Unproven count to ms for a request let through
// without a proof.
func withUnproven(unproven bool, ms ...metrics.Metric) []metrics.Metric {
	if unproven {
		ms = append(ms, metrics.One(metrics.Unproven))
	}
	return ms
}

// stopHow names the limit a stop reason gives: the supervisor's reasons
// start "TTL " or "idle ".
func stopHow(reason string) ledger.Ending {
	switch {
	case strings.HasPrefix(reason, "TTL "):
		return ledger.EndingTTL
	case strings.HasPrefix(reason, "idle "):
		return ledger.EndingIdle
	}
	return ledger.EndingOther
}

// stoppedBy is stopHow's metric.
func stoppedBy(reason string) string {
	switch stopHow(reason) {
	case ledger.EndingTTL:
		return metrics.StoppedTTL
	case ledger.EndingIdle:
		return metrics.StoppedIdle
	}
	return metrics.StoppedOther
}

// record makes one ledger write, within ledgerBudget, logging a failure.
func (s *Service) record(ctx context.Context, arn, what string, write func(context.Context) error) {
	if s.Ledger == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ledgerBudget)
	defer cancel()
	if err := write(ctx); err != nil {
		s.Log.WarnContext(ctx, "ledger: "+what+" not recorded", "task_arn", arn, "err", err.Error())
	}
}

// extend validates and authorizes as stop does, then records the task's new
// TTL in its tag: the larger of the one wanted and the one the tag gives (a
// retry, or a sidecar that restarted asking with its own, never shortens
// it), capped at MaxTTL.
func (s *Service) extend(ctx context.Context, r request) outcome {
	t, err := parseExtend(r.method, r.body, r.base64, s.Region)
	if err != nil {
		return outcome{err: err}
	}
	arn := t.task.String()
	if s.MaxTTL <= 0 {
		return outcome{taskARN: arn, err: internalError(errors.New("no cap configured (BASTION_MAX_TTL)"))}
	}
	ctx, cancel := withReserve(ctx)
	defer cancel()
	proof, unproven, refused := s.admit(ctx, r, t)
	if refused != nil {
		return *refused
	}
	tags, tagErr := s.ECS.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if tagErr != nil {
		return outcome{taskARN: arn, cluster: t.cluster, err: classify(tagErr)}
	}
	value, marked := ttltag.Find(tags.Tags)
	var recorded time.Duration // no tag: the TTL wanted stands
	if marked {
		recorded, _ = ttltag.TTL(value, s.MaxTTL)
	}
	ttl := min(max(t.ttl, recorded), s.MaxTTL)
	// "2h" and "2h0m0s" are one TTL: no call. A value above the cap, or one
	// that says no TTL (which means the cap), is written as the TTL it gives.
	if says, ok := ttltag.Parse(value); !ok || says != ttl {
		_, tagErr = s.ECS.TagResource(ctx, &ecs.TagResourceInput{
			ResourceArn: aws.String(arn),
			Tags:        []types.Tag{{Key: aws.String(ttltag.Key), Value: aws.String(ttl.String())}},
		})
		if tagErr != nil {
			return outcome{taskARN: arn, cluster: t.cluster, err: classify(tagErr)}
		}
	}
	proof = append(proof, s.recordUsage(ctx, arn, t.usage)...)
	e := stopapi.Extended{TaskARN: arn, TTL: ttl.String(), Capped: ttl < t.ttl, MaxTTL: s.MaxTTL.String()}
	owner, _ := ttltag.Value(tags.Tags, ttltag.OwnerKey)
	why, _ := ttltag.Value(tags.Tags, ttltag.ReasonKey)
	started := t.started
	if now := time.Now(); !started.IsZero() && (started.Before(now.Add(-s.MaxTTL-time.Hour)) || started.After(now.Add(time.Minute))) {
		// The task's word on its own start: kept out of the ledger when it
		// cannot be (the ledger also holds it against ECS's times).
		s.Log.WarnContext(ctx, "ledger: startedAt not believable, not recorded", "task_arn", arn, "started_at", started.Format(time.RFC3339Nano))
		started = time.Time{}
	}
	s.record(ctx, arn, "extension", func(ctx context.Context) error {
		return s.Ledger.Extended(ctx, arn, ledger.Registration{At: time.Now().UTC(), Asked: t.ttl, TTL: ttl, Cap: s.MaxTTL, Capped: e.Capped,
			SupervisorStart: started, Owner: owner, Reason: why})
	})
	ms := []metrics.Metric{metrics.One(metrics.Extended)}
	if e.Capped {
		ms = append(ms, metrics.One(metrics.CapReached))
	}
	return outcome{status: http.StatusOK, body: e, taskARN: arn, done: "extended", cluster: t.cluster, metrics: withUnproven(unproven, ms...),
		attrs: append(proof, "ttl_wanted", t.ttl.String(), "ttl_recorded", value, "ttl", e.TTL, "capped", e.Capped)}
}

// usage validates and authorizes as stop does, then hands the usage to the
// recorder: it acts on nothing else, and a record that fails is logged, the
// answer 202 all the same (the usage is a report, not a command to retry).
func (s *Service) usage(ctx context.Context, r request) outcome {
	t, err := parseUsage(r.method, r.body, r.base64, s.Region)
	if err != nil {
		return outcome{err: err}
	}
	arn := t.task.String()
	ctx, cancel := withReserve(ctx)
	defer cancel()
	proof, unproven, refused := s.admit(ctx, r, t)
	if refused != nil {
		return *refused
	}
	return outcome{status: http.StatusAccepted, body: stopapi.UsageAccepted{TaskARN: arn, Samples: t.usage.Samples},
		taskARN: arn, done: "recorded", cluster: t.cluster, metrics: withUnproven(unproven),
		attrs: append(proof, s.recordUsage(ctx, arn, t.usage)...)}
}

// recordUsage hands u, if any, to the recorder, and returns the log's
// attributes: what the task used, and a record's failure. It never fails
// the request.
func (s *Service) recordUsage(ctx context.Context, taskARN string, u *stopapi.Usage) []any {
	if u == nil {
		return nil
	}
	attrs := []any{"usage_samples", u.Samples, "usage_memory_peak_bytes", u.MemoryPeakBytes,
		"usage_cpu_seconds", u.CPUSeconds, "usage_cpu_peak_vcpu", u.CPUPeakVCPU}
	if s.UsageRecorder == nil {
		return attrs
	}
	ctx, cancel := context.WithTimeout(ctx, ledgerBudget)
	defer cancel()
	if err := s.UsageRecorder.RecordUsage(ctx, taskARN, *u); err != nil {
		s.Log.WarnContext(ctx, "usage not recorded; the request goes on", "task_arn", taskARN, "err", err.Error())
		return append(attrs, "usage_recorded", false)
	}
	return append(attrs, "usage_recorded", true)
}

// stopReserve is the time kept back from the function's deadline: a slow
// ECS must end in a 503 the caller retries, not in a runtime killed mid-call
// (API Gateway would answer its own 500 or 503 without a code).
const stopReserve = 1500 * time.Millisecond

// withReserve ends ctx stopReserve before its deadline, or at a fifth of
// the time left when that is shorter.
func withReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(stopReserve, time.Until(deadline)/5)
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

// classify maps an ECS error to the API's status table.
func classify(err error) *errorAnswer {
	const busy = "ECS is busy or unavailable; retry"
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidParameterException":
			if strings.Contains(strings.ToLower(ae.ErrorMessage()), "not found") {
				return failed(http.StatusNotFound, err, "task not found")
			}
		case "ResourceNotFoundException":
			return failed(http.StatusNotFound, err, "task not found")
		case "ClusterNotFoundException":
			return failed(http.StatusNotFound, err, "task not found (no such cluster)")
		case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
			// The function's role may not act on this task: a refusal, not a fault.
			return failed(http.StatusForbidden, err, "the function is not allowed to act on this task")
		case "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "ServerException", "ServiceUnavailableException":
			return failed(http.StatusServiceUnavailable, err, busy)
		}
		if ae.ErrorFault() == smithy.FaultServer {
			return failed(http.StatusServiceUnavailable, err, busy)
		}
		return internalError(err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return failed(http.StatusServiceUnavailable, err, busy)
	}
	return internalError(err)
}

// encode is the answer's body.
func encode(body any) string {
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with the types above
		return `{"code":"Internal","error":"internal error"}`
	}
	return string(b)
}

func jsonHeaders() map[string]string { return map[string]string{"Content-Type": "application/json"} }
