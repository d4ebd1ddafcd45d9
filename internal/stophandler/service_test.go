package stophandler

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/emfcheck"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

const (
	region  = "eu-west-1"
	account = "123456789012"
	taskID  = "0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"
	taskARN = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + taskID
	self    = "arn:aws:sts::123456789012:assumed-role/bastion-task-role/" + taskID
	// pinnedID is the unique ID of bastion-task-role, as the template pins it.
	pinnedID = "AROAZBASTIONTASKROLE1"
)

// userIDOf is the userId API Gateway reports beside an assumed-role ARN:
// <RoleId>:<session>, the pinned ID for bastion-task-role, another otherwise.
func userIDOf(caller string) string {
	role := roleOf(caller)
	if role == "" {
		return ""
	}
	id := "AROAZSOMEOTHERROLE99"
	if role == "bastion-task-role" {
		id = pinnedID
	}
	return id + ":" + caller[strings.LastIndex(caller, "/")+1:]
}

// fakeECS records StopTask and TagResource calls and answers with err, or
// a stopping task; tags are the tasks' tags, by ARN.
type fakeECS struct {
	calls    []*ecs.StopTaskInput
	tagCalls []*ecs.TagResourceInput
	tags     map[string]map[string]string
	err      error
}

func (f *fakeECS) ListTagsForResource(_ context.Context, in *ecs.ListTagsForResourceInput, _ ...func(*ecs.Options)) (*ecs.ListTagsForResourceOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out ecs.ListTagsForResourceOutput
	for k, v := range f.tags[aws.ToString(in.ResourceArn)] {
		out.Tags = append(out.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return &out, nil
}

func (f *fakeECS) TagResource(_ context.Context, in *ecs.TagResourceInput, _ ...func(*ecs.Options)) (*ecs.TagResourceOutput, error) {
	f.tagCalls = append(f.tagCalls, in)
	if f.err != nil {
		return nil, f.err
	}
	arn := aws.ToString(in.ResourceArn)
	if f.tags == nil {
		f.tags = map[string]map[string]string{}
	}
	if f.tags[arn] == nil {
		f.tags[arn] = map[string]string{}
	}
	for _, t := range in.Tags {
		f.tags[arn][aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &ecs.TagResourceOutput{}, nil
}

func (f *fakeECS) StopTask(_ context.Context, in *ecs.StopTaskInput, _ ...func(*ecs.Options)) (*ecs.StopTaskOutput, error) {
	f.calls = append(f.calls, in)
	if f.err != nil {
		return nil, f.err
	}
	return &ecs.StopTaskOutput{Task: &types.Task{TaskArn: in.Task, LastStatus: aws.String("RUNNING"), DesiredStatus: aws.String("STOPPED")}}, nil
}

func newService(f *fakeECS, log *bytes.Buffer) *Service {
	allowed, _ := ecsarn.ParseClusters([]string{"bastions", "arn:aws:ecs:eu-west-1:123456789012:cluster/jump"})
	return &Service{
		ECS:      f,
		Policy:   Policy{Roles: []string{pinnedID, "bastion-extra-role"}, RequireSelf: true, Allowed: allowed},
		Prover:   testProver(),
		Region:   region,
		MaxTTL:   maxTTL,
		Function: "bastion-ttl-TerminateFunction-T3st",
		Log:      slog.New(slog.NewJSONHandler(log, nil)),
	}
}

// maxTTL is the tests' cap on POST /extend.
const maxTTL = 4 * time.Hour

func event(method, body, caller string) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{RouteKey: "POST /terminate", RawPath: "/terminate", Body: body}
	ev.RequestContext.RequestID = "req-1"
	ev.RequestContext.AccountID = account
	ev.RequestContext.HTTP.Method = method
	if caller != "" {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: caller, UserID: userIDOf(caller)},
		}
	}
	return ev
}

func body(arn, reason string) string {
	b, _ := json.Marshal(map[string]string{"taskArn": arn, "reason": reason})
	return string(b)
}

type apiErr struct {
	code, msg string
	fault     smithy.ErrorFault
}

func (e apiErr) Error() string                 { return e.code + ": " + e.msg }
func (e apiErr) ErrorCode() string             { return e.code }
func (e apiErr) ErrorMessage() string          { return e.msg }
func (e apiErr) ErrorFault() smithy.ErrorFault { return e.fault }

func TestStatusTable(t *testing.T) {
	tests := []struct {
		name    string
		ev      events.APIGatewayV2HTTPRequest
		ecsErr  error
		status  int
		stopped bool
		inBody  string
	}{
		{"202 stop accepted", event("POST", body(taskARN, "TTL 2h0m0s expired"), self), nil, 202, true, `"desiredStatus":"STOPPED"`},
		{"202 base64 body", func() events.APIGatewayV2HTTPRequest {
			ev := event("POST", base64.StdEncoding.EncodeToString([]byte(body(taskARN, ""))), self)
			ev.IsBase64Encoded = true
			return ev
		}(), nil, 202, true, taskARN},
		{"202 old-format ARN with cluster", event("POST", `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/`+taskID+`","cluster":"bastions"}`, self), nil, 202, true, ""},
		{"400 malformed JSON", event("POST", `{"taskArn":`, self), nil, 400, false, "not a JSON object"},
		{"400 unknown field", event("POST", `{"taskArn":"`+taskARN+`","force":true}`, self), nil, 400, false, "not a JSON object"},
		{"400 trailing data", event("POST", body(taskARN, "")+`{}`, self), nil, 400, false, "after the JSON object"},
		{"400 missing ARN", event("POST", `{}`, self), nil, 400, false, "taskArn is required"},
		{"400 malformed ARN", event("POST", body("arn:aws:ecs:eu-west-1:123456789012:task/bastions/"+taskID+"/x", ""), self), nil, 400, false, "not a task ARN"},
		{"400 other region", event("POST", body("arn:aws:ecs:us-east-1:123456789012:task/bastions/"+taskID, ""), self), nil, 400, false, "region us-east-1"},
		{"400 old ARN without cluster", event("POST", `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/`+taskID+`"}`, self), nil, 400, false, "cluster is required"},
		{"400 cluster disagrees", event("POST", `{"taskArn":"`+taskARN+`","cluster":"jump"}`, self), nil, 400, false, "does not match"},
		{"400 reason too long", event("POST", body(taskARN, strings.Repeat("é", 201)), self), nil, 400, false, "201 characters"},
		{"400 reason control char", event("POST", body(taskARN, "bye\x1b[2J"), self), nil, 400, false, "control or format"},
		{"400 reason bidi override", event("POST", body(taskARN, "ok\u202egnp.exe"), self), nil, 400, false, "control or format"},
		{"400 bad base64", func() events.APIGatewayV2HTTPRequest {
			ev := event("POST", "!!!not base64", self)
			ev.IsBase64Encoded = true
			return ev
		}(), nil, 400, false, "base64"},
		{"400 invalid UTF-8", func() events.APIGatewayV2HTTPRequest {
			ev := event("POST", base64.StdEncoding.EncodeToString([]byte(`{"taskArn":"`+taskARN+"\",\"reason\":\"\xff\xfe\"}")), self)
			ev.IsBase64Encoded = true
			return ev
		}(), nil, 400, false, "UTF-8"},
		{"403 other task", event("POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/bastion-task-role/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), nil, 403, false, "only its own task"},
		{"403 session prefixes task ID", event("POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/bastion-task-role/"+taskID[:31]), nil, 403, false, "only its own task"},
		{"403 other account", event("POST", body("arn:aws:ecs:eu-west-1:210987654321:task/bastions/"+taskID, ""), self), nil, 403, false, "account"},
		{"403 IAM user", event("POST", body(taskARN, ""), "arn:aws:iam::123456789012:user/alice"), nil, 403, false, "not an assumed-role"},
		{"403 cluster not allowed", event("POST", body("arn:aws:ecs:eu-west-1:123456789012:task/prod/"+taskID, ""), self), nil, 403, false, "cluster prod is not allowed"},
		{"404 task not found", event("POST", body(taskARN, ""), self), apiErr{"InvalidParameterException", "The referenced task was not found.", smithy.FaultClient}, 404, true, "task not found"},
		{"404 cluster not found", event("POST", body(taskARN, ""), self), apiErr{"ClusterNotFoundException", "Cluster not found.", smithy.FaultClient}, 404, true, "task not found"},
		{"405 GET", event("GET", "", self), nil, 405, false, "use POST"},
		{"413 body too large", event("POST", `{"taskArn":"`+strings.Repeat("a", 5000)+`"}`, self), nil, 413, false, "larger than 4096"},
		{"413 base64 body too large", func() events.APIGatewayV2HTTPRequest {
			ev := event("POST", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("a"), 4097)), self)
			ev.IsBase64Encoded = true
			return ev
		}(), nil, 413, false, "larger than"},
		{"503 throttled", event("POST", body(taskARN, ""), self), apiErr{"ThrottlingException", "Rate exceeded", smithy.FaultClient}, 503, true, "retry"},
		{"503 server error", event("POST", body(taskARN, ""), self), apiErr{"ServerException", "boom at host ip-10-0-0-1", smithy.FaultServer}, 503, true, "retry"},
		{"503 network", event("POST", body(taskARN, ""), self), &net.OpError{Op: "dial", Err: errors.New("connection refused to 10.0.0.1")}, 503, true, "retry"},
		{"403 other role, session named after the task", event("POST", body(taskARN, ""), "arn:aws:sts::123456789012:assumed-role/ci-deploy/"+taskID), nil, 403, false, `"code":"Forbidden"`},
		{"403 ECS access denied", event("POST", body(taskARN, ""), self), apiErr{"AccessDeniedException", "User arn:aws:sts::123456789012:assumed-role/fn is not authorized", smithy.FaultClient}, 403, true, `{"code":"Forbidden","error":"the function is not allowed to act on this task"}`},
		{"500 unknown", event("POST", body(taskARN, ""), self), errors.New("secret internal detail"), 500, true, `{"code":"Internal","error":"internal error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeECS{err: tt.ecsErr}
			var log bytes.Buffer
			resp, err := newService(f, &log).Handle(context.Background(), proven(tt.ev))
			if err != nil {
				t.Fatalf("Handle returned an error to the runtime: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, resp.Body)
			}
			if resp.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(resp.Body)) {
				t.Fatalf("not a JSON answer: %v %q", resp.Headers, resp.Body)
			}
			if !strings.Contains(resp.Body, tt.inBody) {
				t.Fatalf("body %s lacks %q", resp.Body, tt.inBody)
			}
			if tt.status != 202 {
				var eb stopapi.ErrorBody
				if err := json.Unmarshal([]byte(resp.Body), &eb); err != nil || eb.Code != wantCode[tt.status] || eb.Error == "" {
					t.Fatalf("error body %s: want code %q", resp.Body, wantCode[tt.status])
				}
			}
			if got := len(f.calls) > 0; got != tt.stopped {
				t.Fatalf("StopTask called = %v, want %v", got, tt.stopped)
			}
			if tt.ecsErr != nil && strings.Contains(resp.Body, tt.ecsErr.Error()) {
				t.Fatalf("internal error text returned: %s", resp.Body)
			}
			var line map[string]any
			if err := json.Unmarshal(log.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON log line, got %q", log.String())
			}
			if line["request_id"] != "req-1" || line["status"] != float64(tt.status) || line["duration_ms"] == nil || line["outcome"] == nil {
				t.Fatalf("log line %v", line)
			}
			if tt.ecsErr != nil && tt.status >= 500 && !strings.Contains(log.String(), tt.ecsErr.Error()) {
				t.Fatalf("cause not logged: %s", log.String())
			}
		})
	}
}

// wantCode is the status table of docs/api.md, written out again so that a
// change to either the code or the documented contract is seen.
var wantCode = map[int]stopapi.Code{
	400: "BadRequest", 403: "Forbidden", 404: "TaskNotFound", 405: "MethodNotAllowed",
	413: "TooLarge", 503: "Unavailable", 500: "Internal",
}

func TestStopTaskInput(t *testing.T) {
	f := &fakeECS{}
	var log bytes.Buffer
	reason := "TTL 30m0s expired (started 2026-11-24T10:00:00Z)"
	if resp, _ := newService(f, &log).Handle(context.Background(), proven(event("POST", body(taskARN, reason), self))); resp.StatusCode != 202 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	in := f.calls[0]
	if aws.ToString(in.Cluster) != "bastions" || aws.ToString(in.Task) != taskARN || aws.ToString(in.Reason) != "bastion-ttl: "+reason {
		t.Fatalf("StopTask input: cluster=%q task=%q reason=%q", aws.ToString(in.Cluster), aws.ToString(in.Task), aws.ToString(in.Reason))
	}
}

func TestStopReasonCut(t *testing.T) {
	if got := stopReason(""); got != "bastion-ttl: stop requested by the task" {
		t.Errorf("empty: %q", got)
	}
	long := strings.Repeat("ü", 300)
	got := []rune(stopReason(long))
	if len(got) != 255 || string(got[:13]) != "bastion-ttl: " || string(got) != lifetime.CutStopReason(ReasonPrefix+long) {
		t.Errorf("cut to %d characters, not by lifetime.CutStopReason", len(got))
	}
}

func TestAuthorizationRules(t *testing.T) {
	tgt := func(arn, cluster string) target {
		task, err := ecsarn.ParseTask(arn)
		if err != nil {
			t.Fatal(err)
		}
		if cluster == "" {
			cluster = task.Cluster
		}
		return target{task: task, cluster: cluster}
	}
	allowed, _ := ecsarn.ParseClusters([]string{"bastions", " arn:aws:ecs:eu-west-1:123456789012:cluster/jump ", ""})
	roles := []string{pinnedID, "bastion-extra-role"}
	strict := Policy{Roles: roles, RequireSelf: true, Allowed: allowed}
	loose := Policy{Roles: roles, RequireSelf: false, Allowed: allowed}
	other := "arn:aws:sts::123456789012:assumed-role/bastion-task-role/ffffffffffffffffffffffffffffffff"
	extra := "arn:aws:sts::123456789012:assumed-role/bastion-extra-role/" + taskID
	withID := func(arn, userID string) Identity { return Identity{UserARN: arn, UserID: userID} }
	id := func(arn string) Identity { return withID(arn, userIDOf(arn)) }
	tests := []struct {
		name       string
		p          Policy
		caller     Identity
		apiAccount string
		t          target
		ok         bool
	}{
		{"self", strict, id(self), account, tgt(taskARN, ""), true},
		{"self, cluster allowed by ARN", strict, id(self), account, tgt("arn:aws:ecs:eu-west-1:123456789012:task/jump/"+taskID, ""), true},
		{"self, extra role pinned by name", strict, id(extra), account, tgt(taskARN, ""), true},
		{"admin role with a session named after the task", strict, id("arn:aws:sts::123456789012:assumed-role/Admin/" + taskID), account, tgt(taskARN, ""), false},
		{"role named like the pinned ID's role, other ID", strict, withID(self, "AROAZSOMEOTHERROLE99:"+taskID), account, tgt(taskARN, ""), false},
		{"pinned ID, session in userId differs", strict, withID(self, pinnedID+":"+strings.Repeat("f", 32)), account, tgt(taskARN, ""), false},
		{"pinned ID, no userId", strict, withID(self, ""), account, tgt(taskARN, ""), false},
		// An event's userId, judged when BASTION_ACCEPT_UNPROVEN lets it through.
		{"pinned ID, userId the role ID alone", strict, withID(self, pinnedID), account, tgt(taskARN, ""), true},
		{"another role's ID alone", strict, withID(self, "AROAZSOMEOTHERROLE99"), account, tgt(taskARN, ""), false},
		{"pinned ID alone, another task's session", strict, withID(other, pinnedID), account, tgt(taskARN, ""), false},
		{"pinned role name from another account", strict, id("arn:aws:sts::210987654321:assumed-role/bastion-extra-role/" + taskID), account, tgt("arn:aws:ecs:eu-west-1:210987654321:task/bastions/"+taskID, ""), false},
		{"task and caller in an account not the API's", strict, id("arn:aws:sts::210987654321:assumed-role/bastion-extra-role/" + taskID), "210987654321", tgt("arn:aws:ecs:eu-west-1:210987654321:task/bastions/"+taskID, ""), true},
		{"no API account", strict, id(self), "", tgt(taskARN, ""), false},
		{"no roles pinned", Policy{RequireSelf: true, Allowed: allowed}, id(self), account, tgt(taskARN, ""), false},
		{"cluster ARN of another account", strict, id("arn:aws:sts::210987654321:assumed-role/bastion-extra-role/" + taskID), "210987654321", tgt("arn:aws:ecs:eu-west-1:210987654321:task/jump/"+taskID, ""), false},
		{"empty caller", strict, Identity{}, account, tgt(taskARN, ""), false},
		{"another task's session", strict, id(other), account, tgt(taskARN, ""), false},
		{"another task's session without RequireSelf", loose, id(other), account, tgt(taskARN, ""), true},
		{"without RequireSelf, still the role", loose, id("arn:aws:sts::123456789012:assumed-role/Admin/x1"), account, tgt(taskARN, ""), false},
		{"without RequireSelf, still the account", loose, id("arn:aws:sts::210987654321:assumed-role/bastion-extra-role/x1"), account, tgt(taskARN, ""), false},
		{"without RequireSelf, still the cluster", loose, id(other), account, tgt("arn:aws:ecs:eu-west-1:123456789012:task/prod/"+taskID, ""), false},
		{"session with suffix", strict, id(self + "x"), account, tgt(taskARN, ""), false},
		{"session as prefix", strict, id(self[:len(self)-1]), account, tgt(taskARN, ""), false},
		{"other partition", strict, id("arn:aws-cn:sts::123456789012:assumed-role/bastion-extra-role/" + taskID), account, tgt(taskARN, ""), false},
		{"IAM user", strict, id("arn:aws:iam::123456789012:user/" + taskID), account, tgt(taskARN, ""), false},
		{"IAM role ARN, not a session", strict, id("arn:aws:iam::123456789012:role/" + taskID), account, tgt(taskARN, ""), false},
		{"root", strict, id("arn:aws:iam::123456789012:root"), account, tgt(taskARN, ""), false},
		{"federated user", strict, id("arn:aws:sts::123456789012:federated-user/" + taskID), account, tgt(taskARN, ""), false},
		{"extra path in session ARN", strict, id("arn:aws:sts::123456789012:assumed-role/r/x/" + taskID), account, tgt(taskARN, ""), false},
		{"trailing newline", strict, id(self + "\n"), account, tgt(taskARN, ""), false},
		{"no clusters allowed", Policy{Roles: roles, RequireSelf: true}, id(self), account, tgt(taskARN, ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.authorize(tt.caller, tt.apiAccount, tt.t)
			if (err == nil) != tt.ok {
				t.Fatalf("authorize = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && (err.Status != 403 || err.Code != stopapi.CodeForbidden) {
				t.Fatalf("status %d code %q, want 403 Forbidden", err.Status, err.Code)
			}
		})
	}
}

func TestParseRoles(t *testing.T) {
	got, err := ParseRoles([]string{" AROAZBASTIONTASKROLE1", "my-bastion-role", ""})
	if err != nil || len(got) != 2 || got[0] != pinnedID {
		t.Fatalf("ParseRoles = %v, %v", got, err)
	}
	for _, bad := range [][]string{{}, {" "}, {"arn:aws:iam::123456789012:role/x"}, {"path/role"}, {"bad role"}} {
		if _, err := ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q) accepted", bad)
		}
	}
}

// TestSlowECSAnswers503BeforeTheDeadline: a StopTask that hangs must not
// outlive the invocation; the caller gets a 503 to retry.
func TestSlowECSAnswers503BeforeTheDeadline(t *testing.T) {
	testenv.RealTime(t) // the reserve is taken from the context's wall-clock deadline
	var log bytes.Buffer
	svc := newService(&fakeECS{}, &log)
	svc.ECS = hangingECS{}
	for _, ev := range []events.APIGatewayV2HTTPRequest{event("POST", body(taskARN, ""), self), extendEvent(extendBody(taskARN, "2h"), self)} {
		// 2 s left: the reserve is a fifth of it, 400 ms.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		deadline, _ := ctx.Deadline()
		resp, err := svc.Handle(ctx, proven(ev))
		if err != nil || resp.StatusCode != 503 || !strings.Contains(resp.Body, `"code":"Unavailable"`) {
			t.Fatalf("%s: got %d %s, %v; want 503 Unavailable", ev.RouteKey, resp.StatusCode, resp.Body, err)
		}
		if left := time.Until(deadline); left < 300*time.Millisecond {
			t.Fatalf("%s: answered only %v before the function's deadline", ev.RouteKey, left)
		}
	}
}

// hangingECS hangs in every call until the context ends.
type hangingECS struct{ *fakeECS }

func (hangingECS) StopTask(ctx context.Context, _ *ecs.StopTaskInput, _ ...func(*ecs.Options)) (*ecs.StopTaskOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (hangingECS) ListTagsForResource(ctx context.Context, _ *ecs.ListTagsForResourceInput, _ ...func(*ecs.Options)) (*ecs.ListTagsForResourceOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func extendEvent(body, caller string) events.APIGatewayV2HTTPRequest {
	ev := event("POST", body, caller)
	ev.RouteKey, ev.RawPath = "POST /extend", "/extend"
	return ev
}

func extendBody(arn, ttl string) string {
	b, _ := json.Marshal(stopapi.ExtendRequest{TaskARN: arn, TTL: ttl})
	return string(b)
}

// TestExtend: the new TTL is the larger of the one wanted and the one
// recorded, capped; only the bastion-ttl tag is written, and nothing stopped.
func TestExtend(t *testing.T) {
	tests := []struct {
		name     string
		recorded string // the task's bastion-ttl tag before; "" none
		wanted   string
		ttl      string // the answer's, and the tag's after
		capped   bool
		tagged   bool
	}{
		{"extends an untagged task", "", "2h30m", "2h30m0s", false, true},
		{"extends past the recorded TTL", "1h", "1h30m", "1h30m0s", false, true},
		{"a retry changes nothing", "1h30m0s", "1h30m", "1h30m0s", false, false},
		{"never shortens: a restarted sidecar asking with its own TTL", "3h0m0s", "1h", "3h0m0s", false, false},
		{"capped at the API's maximum", "1h", "48h", "4h0m0s", true, true},
		{"at the cap already", "4h0m0s", "4h30m", "4h0m0s", true, false},
		{"a tag above the cap comes down to it", "24h", "1h", "4h0m0s", false, true},
		// A value that says no TTL means the cap (package ttltag), and is
		// written as the cap so that it says so.
		{"an unreadable tag means the cap", "forever", "2h", "4h0m0s", false, true},
		{"a zero tag means the cap", "0s", "2h", "4h0m0s", false, true},
		{"the same TTL written another way is left alone", "2h", "120m", "2h0m0s", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeECS{tags: map[string]map[string]string{taskARN: {"owner": "alice"}}}
			if tt.recorded != "" {
				f.tags[taskARN][ttltag.Key] = tt.recorded
			}
			var log bytes.Buffer
			resp, _ := newService(f, &log).Handle(context.Background(), proven(extendEvent(extendBody(taskARN, tt.wanted), self)))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			var got stopapi.Extended
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
				t.Fatal(err)
			}
			if want := (stopapi.Extended{TaskARN: taskARN, TTL: tt.ttl, Capped: tt.capped, MaxTTL: maxTTL.String()}); got != want {
				t.Fatalf("answer %+v, want %+v", got, want)
			}
			if (len(f.tagCalls) > 0) != tt.tagged {
				t.Fatalf("tagged = %v, want %v", len(f.tagCalls) > 0, tt.tagged)
			}
			if d, err := time.ParseDuration(f.tags[taskARN][ttltag.Key]); err != nil || d.String() != tt.ttl || f.tags[taskARN]["owner"] != "alice" {
				t.Fatalf("tags after: %v", f.tags[taskARN])
			}
			for _, c := range f.tagCalls {
				if len(c.Tags) != 1 || aws.ToString(c.Tags[0].Key) != ttltag.Key || aws.ToString(c.ResourceArn) != taskARN {
					t.Fatalf("TagResource %v %v", aws.ToString(c.ResourceArn), c.Tags)
				}
			}
			if len(f.calls) > 0 {
				t.Fatal("an extension stopped the task")
			}
			if !strings.Contains(log.String(), `"msg":"extend request"`) || !strings.Contains(log.String(), `"outcome":"extended"`) {
				t.Fatalf("log: %s", log.String())
			}
		})
	}
}

// TestExtendRefusals: the same validation and self-only rule as a stop;
// nothing is tagged on a refusal.
func TestExtendRefusals(t *testing.T) {
	tests := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		ecsErr error
		status int
		inBody string
	}{
		{"400 no ttl", extendEvent(`{"taskArn":"`+taskARN+`"}`, self), nil, 400, "positive Go duration"},
		{"400 ttl not a duration", extendEvent(extendBody(taskARN, "2 hours"), self), nil, 400, "positive Go duration"},
		{"400 negative ttl", extendEvent(extendBody(taskARN, "-1h"), self), nil, 400, "positive Go duration"},
		{"400 a reason is not an extend field", extendEvent(`{"taskArn":"`+taskARN+`","ttl":"1h","reason":"x"}`, self), nil, 400, "taskArn, cluster, ttl, startedAt and usage"},
		{"400 ttl given to terminate", event("POST", extendBody(taskARN, "1h"), self), nil, 400, "taskArn, cluster, reason and usage"},
		{"403 other task", extendEvent(extendBody(taskARN, "2h"), "arn:aws:sts::123456789012:assumed-role/bastion-task-role/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), nil, 403, "only its own task"},
		{"403 other role named after the task", extendEvent(extendBody(taskARN, "2h"), "arn:aws:sts::123456789012:assumed-role/Admin/"+taskID), nil, 403, "Forbidden"},
		{"403 cluster not allowed", extendEvent(extendBody("arn:aws:ecs:eu-west-1:123456789012:task/prod/"+taskID, "2h"), self), nil, 403, "not allowed"},
		{"404 task not found", extendEvent(extendBody(taskARN, "2h"), self), apiErr{"InvalidParameterException", "The specified task was not found.", smithy.FaultClient}, 404, "TaskNotFound"},
		{"404 resource not found", extendEvent(extendBody(taskARN, "2h"), self), apiErr{"ResourceNotFoundException", "not found", smithy.FaultClient}, 404, "TaskNotFound"},
		{"400 old-format ARN", extendEvent(`{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/`+taskID+`","cluster":"bastions","ttl":"2h"}`, self), nil, 400, "old-format"},
		{"503 throttled", extendEvent(extendBody(taskARN, "2h"), self), apiErr{"ThrottlingException", "Rate exceeded", smithy.FaultClient}, 503, "retry"},
		{"405 GET", func() events.APIGatewayV2HTTPRequest {
			ev := extendEvent("", self)
			ev.RequestContext.HTTP.Method = "GET"
			return ev
		}(), nil, 405, "use POST"},
		{"400 unknown route", func() events.APIGatewayV2HTTPRequest {
			ev := extendEvent(extendBody(taskARN, "2h"), self)
			ev.RouteKey, ev.RawPath = "POST /shorten", "/shorten"
			return ev
		}(), nil, 400, "not served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeECS{err: tt.ecsErr}
			var log bytes.Buffer
			resp, _ := newService(f, &log).Handle(context.Background(), proven(tt.ev))
			if resp.StatusCode != tt.status || !strings.Contains(resp.Body, tt.inBody) {
				t.Fatalf("status %d body %s; want %d with %q", resp.StatusCode, resp.Body, tt.status, tt.inBody)
			}
			var eb stopapi.ErrorBody
			if err := json.Unmarshal([]byte(resp.Body), &eb); err != nil || eb.Code != wantCode[tt.status] {
				t.Fatalf("error body %s: want code %q", resp.Body, wantCode[tt.status])
			}
			if tt.ecsErr == nil && len(f.tagCalls) > 0 || len(f.calls) > 0 {
				t.Fatalf("refused, yet tagged %d or stopped %d", len(f.tagCalls), len(f.calls))
			}
		})
	}
}

// A service without a cap refuses to extend rather than tag a zero TTL.
func TestExtendWithoutCapIsInternal(t *testing.T) {
	f := &fakeECS{}
	var log bytes.Buffer
	svc := newService(f, &log)
	svc.MaxTTL = 0
	resp, _ := svc.Handle(context.Background(), proven(extendEvent(extendBody(taskARN, "2h"), self)))
	if resp.StatusCode != 500 || len(f.tagCalls) > 0 || strings.Contains(resp.Body, "BASTION_MAX_TTL") {
		t.Fatalf("status %d body %s tagged %d", resp.StatusCode, resp.Body, len(f.tagCalls))
	}
}

// Each request's log line is an embedded-metric document counting its
// outcome; the cluster is a dimension only once the request is authorized,
// so a caller cannot make up metrics by naming clusters.
func TestMetricsInTheLogLine(t *testing.T) {
	other := "arn:aws:ecs:eu-west-1:123456789012:task/made-up-cluster-" + taskID[:6] + "/" + taskID
	for _, tc := range []struct {
		name    string
		ev      events.APIGatewayV2HTTPRequest
		metrics map[string]float64
		cluster string
	}{
		{"a TTL stop", event("POST", body(taskARN, "TTL 2h0m0s expired (started 2026-11-24T10:00:00Z)"), self), map[string]float64{"Accepted": 1, "StoppedTTL": 1}, "bastions"},
		{"an idle stop", event("POST", body(taskARN, "idle 15m0s: no session since 2026-11-24T10:00:00Z"), self), map[string]float64{"Accepted": 1, "StoppedIdle": 1}, "bastions"},
		{"a capped extension", extendEvent(extendBody(taskARN, "48h"), self), map[string]float64{"Extended": 1, "CapReached": 1}, "bastions"},
		{"another task", event("POST", body("arn:aws:ecs:eu-west-1:123456789012:task/bastions/1111111111111111111111111111111a", ""), self), map[string]float64{"Forbidden": 1}, ""},
		{"a made-up cluster", event("POST", body(other, ""), self), map[string]float64{"Forbidden": 1}, ""},
		{"garbage", event("POST", "{", self), map[string]float64{"BadRequest": 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			_, _ = newService(&fakeECS{tags: map[string]map[string]string{}}, &log).Handle(context.Background(), proven(tc.ev))
			line := bytes.TrimSpace(log.Bytes())
			if err := emfcheck.Check(line); err != nil {
				t.Fatalf("not an EMF document: %v\n%s", err, line)
			}
			var doc map[string]any
			_ = json.Unmarshal(line, &doc)
			for name, v := range tc.metrics {
				if doc[name] != v {
					t.Errorf("%s = %v, want %v\n%s", name, doc[name], v, line)
				}
			}
			if got, _ := doc["Cluster"].(string); got != tc.cluster {
				t.Errorf("Cluster dimension %q, want %q", got, tc.cluster)
			}
			if doc["Function"] != "bastion-ttl-TerminateFunction-T3st" {
				t.Errorf("Function dimension %v", doc["Function"])
			}
		})
	}
}

// Both ends of the proof take its route by one rule, identityproof.Route:
// the client (package stopclient) from the URL it sends to, the function
// from the event API Gateway makes of that request. A proof the real
// client makes for each URL is the one the function verifies for the
// event, whatever the stage, a custom domain's base path, a catch-all
// route or a trailing slash; the request is served, not refused as
// IdentityProofInvalid.
func TestBothEndsOfTheProofTakeOneRoute(t *testing.T) {
	for _, tt := range []struct {
		name, path       string // the URL's path, as configured on the bastion
		routeKey, raw    string // the HTTP API's event (payload 2.0); routeKey "": no such event
		resource, asPath string // the REST API's event (payload 1.0); resource and path "": none
	}{
		{"default stage", "/terminate", "POST /terminate", "/terminate", "/terminate", "/terminate"},
		{"named stage", "/prod/terminate", "POST /terminate", "/prod/terminate", "/terminate", "/terminate"},
		{"custom domain base path", "/bastion/terminate", "POST /terminate", "/bastion/terminate", "/terminate", "/bastion/terminate"},
		{"catch-all route", "/prod/terminate", "$default", "/prod/terminate", "", "/terminate"},
		{"trailing slash", "/prod/terminate/", "POST /terminate", "/prod/terminate/", "/terminate", "/terminate/"},
		{"trailing slash, catch-all route", "/prod/terminate/", "$default", "/prod/terminate/", "", "/terminate/"},
		{"extend, named stage", "/prod/extend", "POST /extend", "/prod/extend", "/extend", "/extend"},
		{"extend, custom domain, trailing slash", "/bastion/extend/", "POST /extend", "/bastion/extend/", "/extend", "/bastion/extend/"},
	} {
		for _, format := range []string{"2.0", "1.0"} {
			t.Run(tt.name+", payload "+format, func(t *testing.T) {
				f := &fakeECS{}
				var log bytes.Buffer
				svc := newService(f, &log)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					proof := r.Header.Get(identityproof.Header)
					var status int
					var answer string
					if format == "2.0" {
						ev := event(r.Method, string(b), self)
						ev.RouteKey, ev.RawPath = tt.routeKey, tt.raw
						setProof(&ev, proof)
						resp, _ := svc.Handle(r.Context(), ev)
						status, answer = resp.StatusCode, resp.Body
					} else {
						ev := events.APIGatewayProxyRequest{HTTPMethod: r.Method, Body: string(b), Resource: tt.resource, Path: tt.asPath,
							Headers: map[string]string{identityproof.Header: proof}}
						ev.RequestContext.AccountID, ev.RequestContext.RequestID = account, "req-1"
						ev.RequestContext.Identity.UserArn, ev.RequestContext.Identity.User = self, userIDOf(self)
						resp, _ := svc.HandleREST(r.Context(), ev)
						status, answer = resp.StatusCode, resp.Body
					}
					w.WriteHeader(status)
					_, _ = io.WriteString(w, answer)
				}))
				defer srv.Close()
				c := &stopclient.Client{URL: srv.URL + tt.path, ExtendURL: srv.URL + tt.path, Region: region, STS: stsEndpoint(),
					Credentials: credentials.StaticCredentialsProvider{Value: credsOf(self, userIDOf(self))},
					Clock:       clock.System{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				var err error
				if identityproof.Route(tt.path) == "extend" {
					_, err = c.Extend(ctx, stopapi.ExtendRequest{TaskARN: taskARN, TTL: "2h"})
				} else {
					err = c.Stop(ctx, stopapi.Request{TaskARN: taskARN})
				}
				if err != nil || len(f.calls)+len(f.tagCalls) != 1 {
					t.Fatalf("%s: %v, %d ECS calls\n%s", tt.path, err, len(f.calls)+len(f.tagCalls), log.String())
				}
			})
		}
	}
}
