package taskroles

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/iamapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/clocktest"
)

const (
	ecsTrust    = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	openedTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
)

var testCreds = aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "test"}

// responses is a local stand-in for CloudFormation's presigned response
// URL: it records each PUT and answers with status(n) for the n-th.
type responses struct {
	mu     sync.Mutex
	got    []cfn.Response
	types  []string
	status func(n int) int
}

func (s *responses) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.types) // attempts so far
	s.types = append(s.types, r.Header.Get("Content-Type"))
	if r.Method != http.MethodPut || r.URL.Query().Get("X-Amz-Signature") != "sig" {
		http.Error(w, "want the PUT to the presigned URL", http.StatusForbidden)
		return
	}
	if s.status != nil {
		if st := s.status(n); st != http.StatusOK {
			w.WriteHeader(st)
			return
		}
	}
	b, _ := io.ReadAll(r.Body)
	var resp cfn.Response
	if err := json.Unmarshal(b, &resp); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.got = append(s.got, resp)
}

func (s *responses) answers() []cfn.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cfn.Response(nil), s.got...)
}

type fixture struct {
	iam     *iamapi.Server
	out     *responses
	handler *Handler
	url     string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{iam: &iamapi.Server{Account: "111122223333", Credentials: testCreds}, out: &responses{}}
	iamSrv := httptest.NewServer(f.iam)
	t.Cleanup(iamSrv.Close)
	outSrv := httptest.NewServer(f.out)
	t.Cleanup(outSrv.Close)
	f.url = outSrv.URL + "/cloudformation-custom-resource-response-euwest1/arn%3Aaws%3Acloudformation?X-Amz-Signature=sig"
	client := iam.New(iam.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(iamSrv.URL),
		Credentials:  credentials.StaticCredentialsProvider{Value: testCreds},
		HTTPClient:   iamSrv.Client(),
	})
	f.handler = &Handler{IAM: client, HTTP: NewHTTPClient(), Reserve: 200 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return f
}

func (f *fixture) event(typ cfn.RequestType, physical string, names ...any) cfn.Event {
	return cfn.Event{
		RequestType: typ, RequestID: "5d478078-13e9-baf0-464a-7ef285ecc786", ResponseURL: f.url,
		ResourceType: "AWS::CloudFormation::CustomResource", LogicalResourceID: "ExtraTaskRoleIds",
		StackID:            "arn:aws:cloudformation:eu-west-1:111122223333:stack/bastion-ttl/6a8e1c90-0f1e-11f0-9b6c-0a1b2c3d4e5f",
		PhysicalResourceID: physical,
		ResourceProperties: map[string]any{"ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:x", "RoleNames": names},
	}
}

// handle runs one request with a deadline and returns the one answer.
func (f *fixture) handle(t *testing.T, e cfn.Event, within time.Duration) cfn.Response {
	t.Helper()
	before := len(f.out.answers())
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := f.handler.Handle(ctx, e); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	got := f.out.answers()
	if len(got) != before+1 {
		t.Fatalf("%d answers, want one", len(got)-before)
	}
	a := got[len(got)-1]
	if a.RequestID != e.RequestID || a.LogicalResourceID != e.LogicalResourceID || a.StackID != e.StackID || a.PhysicalResourceID == "" {
		t.Errorf("answer does not name the request and a physical ID: %+v", a)
	}
	return a
}

func TestHandlerCreateResolvesTheRoles(t *testing.T) {
	f := newFixture(t)
	f.iam.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION1", Trust: ecsTrust})
	f.iam.Put(iamapi.Role{Name: "db-bastion", ID: "AROAEXAMPLEDBBASTION22", Trust: ecsTrust})
	a := f.handle(t, f.event(cfn.RequestCreate, "", "db-bastion", "ops-bastion"), 5*time.Second)
	if a.Status != cfn.StatusSuccess || a.Data[RoleIDsAttribute] != "AROAEXAMPLEDBBASTION22,AROAEXAMPLEOPSBASTION1" {
		t.Fatalf("answer %+v", a)
	}
	if ct := f.out.types[0]; ct != "" {
		t.Errorf("PUT with Content-Type %q; the presigned URL's signature covers none", ct)
	}
	// The same roles give the same physical ID: an update that changes
	// nothing replaces nothing.
	again := f.handle(t, f.event(cfn.RequestUpdate, a.PhysicalResourceID, "db-bastion", "ops-bastion"), 5*time.Second)
	if again.Status != cfn.StatusSuccess || again.PhysicalResourceID != a.PhysicalResourceID {
		t.Errorf("update with the same roles: %+v, want physical ID %s", again, a.PhysicalResourceID)
	}
	// A role deleted and created again has a new ID: a new physical ID.
	f.iam.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION9", Trust: ecsTrust})
	renewed := f.handle(t, f.event(cfn.RequestUpdate, a.PhysicalResourceID, "db-bastion", "ops-bastion"), 5*time.Second)
	if renewed.Status != cfn.StatusSuccess || renewed.PhysicalResourceID == a.PhysicalResourceID || renewed.Data[RoleIDsAttribute] != "AROAEXAMPLEDBBASTION22,AROAEXAMPLEOPSBASTION9" {
		t.Errorf("update after the role was made again: %+v", renewed)
	}
}

func TestHandlerFailsTheDeploymentNamingTheRole(t *testing.T) {
	f := newFixture(t)
	f.iam.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION1", Trust: ecsTrust})
	f.iam.Put(iamapi.Role{Name: "shared-role", ID: "AROAEXAMPLESHAREDROLE1", Trust: openedTrust})
	f.iam.Readable = func(name string) bool { return name != "secret-role" }
	tests := []struct {
		name  string
		event cfn.Event
		want  string
	}{
		{"a role others may assume", f.event(cfn.RequestCreate, "", "ops-bastion", "shared-role"), `role shared-role, statement #2 admits the AWS principal "arn:aws:iam::111122223333:root"`},
		{"a role that does not exist", f.event(cfn.RequestCreate, "", "gone-role"), "role gone-role does not exist"},
		{"a role the function may not read", f.event(cfn.RequestCreate, "", "secret-role"), "role secret-role: get role"},
		{"an ARN for a name", f.event(cfn.RequestCreate, "", "arn:aws:iam::111122223333:role/ops-bastion"), "is not a role name"},
		{"no role", f.event(cfn.RequestCreate, "", "", ""), "lists no role"},
		{"more roles than the template grants", f.event(cfn.RequestCreate, "", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"), "at most 10"},
		{"a request type CloudFormation does not send", f.event("Replace", "", "ops-bastion"), `unknown request type "Replace"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.handle(t, tt.event, 5*time.Second)
			if a.Status != cfn.StatusFailed || !strings.Contains(a.Reason, tt.want) || a.Data != nil {
				t.Errorf("answer %+v, want FAILED saying %q", a, tt.want)
			}
		})
	}
	// A failed update keeps the resource's physical ID: CloudFormation
	// rolls back to it instead of replacing it.
	a := f.handle(t, f.event(cfn.RequestUpdate, "bastion-ttl-task-roles-0123456789abcdef", "shared-role"), 5*time.Second)
	if a.Status != cfn.StatusFailed || a.PhysicalResourceID != "bastion-ttl-task-roles-0123456789abcdef" {
		t.Errorf("failed update: %+v", a)
	}
}

// The function's grant, made seconds before its first run, may not have
// reached all of IAM: AccessDenied is asked again for a while.
func TestHandlerWaitsForItsGrant(t *testing.T) {
	f := newFixture(t)
	f.iam.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION1", Trust: ecsTrust})
	var calls atomic.Int32
	f.iam.Readable = func(string) bool { return calls.Add(1) > 2 }
	f.handler.Patience = 5 * time.Second
	clk := clocktest.NewFake(time.Now())
	f.handler.Clock = clk
	a := f.handle(t, f.event(cfn.RequestCreate, "", "ops-bastion"), 10*time.Second)
	if a.Status != cfn.StatusSuccess || calls.Load() != 3 {
		t.Errorf("answer %+v after %d GetRole calls", a, calls.Load())
	}
	if got, want := clk.Sleeps(), []time.Duration{500 * time.Millisecond, time.Second}; !slices.Equal(got, want) {
		t.Errorf("waited %v between GetRole calls, want %v", got, want)
	}
}

// Delete has nothing to undo: it succeeds without asking IAM, whatever the
// roles have become (or a stack whose create failed could not be deleted).
func TestHandlerDeleteAlwaysSucceeds(t *testing.T) {
	f := newFixture(t)
	for _, physical := range []string{"bastion-ttl-task-roles-0123456789abcdef", "bastion-ttl-task-roles-unresolved"} {
		a := f.handle(t, f.event(cfn.RequestDelete, physical, "gone-role", "arn:not-a-name"), 5*time.Second)
		if a.Status != cfn.StatusSuccess || a.PhysicalResourceID != physical {
			t.Errorf("delete of %s: %+v", physical, a)
		}
	}
	if asked := f.iam.Asked(); len(asked) != 0 {
		t.Errorf("delete asked IAM for %v", asked)
	}
}

// An IAM that does not answer in time still gets CloudFormation an answer
// before the invocation's deadline (else the stack waits an hour).
func TestHandlerAnswersBeforeTheDeadline(t *testing.T) {
	f := newFixture(t)
	f.iam.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION1", Trust: ecsTrust})
	f.iam.Delay = 10 * time.Second
	start := time.Now()
	a := f.handle(t, f.event(cfn.RequestCreate, "", "ops-bastion"), 500*time.Millisecond)
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("answered after %v, past the deadline", took)
	}
	if a.Status != cfn.StatusFailed || !strings.Contains(a.Reason, "did not answer in time") {
		t.Errorf("answer %+v", a)
	}
}

// A response URL that fails once is tried again; one that keeps failing
// is an error of the invocation (Lambda retries it).
func TestHandlerRetriesTheAnswer(t *testing.T) {
	f := newFixture(t)
	f.iam.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION1", Trust: ecsTrust})
	f.out.status = func(n int) int {
		return map[bool]int{true: http.StatusServiceUnavailable, false: http.StatusOK}[n == 0]
	}
	clk := clocktest.NewFake(time.Now())
	f.handler.Clock = clk
	a := f.handle(t, f.event(cfn.RequestCreate, "", "ops-bastion"), 5*time.Second)
	if a.Status != cfn.StatusSuccess || len(f.out.types) != 2 {
		t.Errorf("answer %+v after %d attempts", a, len(f.out.types))
	}
	if got, want := clk.Sleeps(), []time.Duration{500 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waited %v before the second PUT, want %v", got, want)
	}
	f.out.status = func(int) int { return http.StatusForbidden }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.handler.Handle(ctx, f.event(cfn.RequestDelete, "x")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Handle with the URL refusing every PUT: %v", err)
	}
	if !slices.Equal(f.iam.Asked(), []string{"ops-bastion"}) {
		t.Errorf("IAM asked %v", f.iam.Asked())
	}
}

// Whoever may invoke the function writes the event: with a response URL
// CloudFormation never gives, nothing is asked of IAM and nothing sent.
func TestHandlerRefusesAForeignResponseURL(t *testing.T) {
	f := newFixture(t)
	f.iam.Put(iamapi.Role{Name: "ops-bastion", ID: "AROAEXAMPLEOPSBASTION1", Trust: ecsTrust})
	for _, u := range []string{"https://attacker.example/x", "http://cloudformation.s3.amazonaws.com/x", "https://user@x.amazonaws.com.attacker.example/", "not a url\x00"} {
		e := f.event(cfn.RequestCreate, "", "ops-bastion")
		e.ResponseURL = u
		if err := f.handler.Handle(context.Background(), e); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
	if n := len(f.iam.Asked()); n != 0 || len(f.out.answers()) != 0 {
		t.Fatalf("%d IAM requests, %d answers sent", n, len(f.out.answers()))
	}
	if err := checkResponseURL("https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/arn%3Aaws?X-Amz-Signature=s"); err != nil {
		t.Fatalf("CloudFormation's own URL refused: %v", err)
	}
}
