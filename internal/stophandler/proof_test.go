package stophandler

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

const (
	// victim is another bastion's task, in the same cluster.
	victimID  = "9b8a7c6d5e4f40312a1b2c3d4e5f6a7b"
	victimARN = "arn:aws:ecs:eu-west-1:123456789012:task/bastions/" + victimID
	victim    = "arn:aws:sts::123456789012:assumed-role/bastion-task-role/" + victimID
)

// answer runs ev through a fresh service and returns the status, the
// error code, and the ECS calls made.
func answer(t *testing.T, ev events.APIGatewayV2HTTPRequest, tweak ...func(*Service)) (int, stopapi.Code, *fakeECS, string) {
	t.Helper()
	f := &fakeECS{}
	var log bytes.Buffer
	svc := newService(f, &log)
	for _, fn := range tweak {
		fn(svc)
	}
	resp, err := svc.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	var eb stopapi.ErrorBody
	_ = json.Unmarshal([]byte(resp.Body), &eb)
	return resp.StatusCode, eb.Code, f, log.String()
}

// setProof sets ev's proof header as API Gateway's HTTP API delivers it.
func setProof(ev *events.APIGatewayV2HTTPRequest, value string) {
	if ev.Headers == nil {
		ev.Headers = map[string]string{}
	}
	ev.Headers["x-bastion-ttl-identity"] = value
}

// A principal allowed to invoke the function directly writes any
// requestContext: without a proof it is refused, and nothing reaches ECS.
func TestForgedEventWithoutProofStopsNothing(t *testing.T) {
	before := testSTSRequests()
	for _, route := range []string{"terminate", "extend"} {
		ev := event("POST", body(victimARN, ""), victim)
		if route == "extend" {
			ev = extendEvent(extendBody(victimARN, "4h"), victim)
		}
		status, code, f, log := answer(t, ev)
		if status != 403 || code != stopapi.CodeIdentityProofInvalid || len(f.calls)+len(f.tagCalls) != 0 {
			t.Fatalf("%s: %d %s, %d ECS calls; want 403 IdentityProofInvalid and none", route, status, code, len(f.calls)+len(f.tagCalls))
		}
		if !strings.Contains(log, `"proof":"absent"`) {
			t.Errorf("%s: log line does not say the proof was absent: %s", route, log)
		}
	}
	if n := testSTSRequests() - before; n != 0 {
		t.Fatalf("%d requests reached STS for requests that carry no proof", n)
	}
}

func TestProofOfAnotherTaskIsRefused(t *testing.T) {
	// The attacker's own bastion's credentials, a request about the victim.
	attacker := self
	b := body(victimARN, "")
	t.Run("event claims the victim", func(t *testing.T) {
		ev := event("POST", b, victim)
		setProof(&ev, proofOf(attacker, userIDOf(attacker), "terminate", []byte(b), time.Now()))
		if status, code, f, _ := answer(t, ev); status != 403 || code != stopapi.CodeIdentityProofInvalid || len(f.calls) != 0 {
			t.Fatalf("%d %s, %d StopTask calls", status, code, len(f.calls))
		}
	})
	t.Run("event claims nobody", func(t *testing.T) {
		ev := event("POST", b, "")
		setProof(&ev, proofOf(attacker, userIDOf(attacker), "terminate", []byte(b), time.Now()))
		if status, code, f, _ := answer(t, ev); status != 403 || code != stopapi.CodeForbidden || len(f.calls) != 0 {
			t.Fatalf("%d %s, %d StopTask calls; want 403 Forbidden: STS says the caller is another task", status, code, len(f.calls))
		}
	})
	t.Run("direct invoke, own proof, own task", func(t *testing.T) {
		// The proof alone is enough: a direct invoke by the task itself is
		// what API Gateway would have let through anyway.
		ev := event("POST", body(taskARN, ""), "")
		setProof(&ev, proofOf(self, userIDOf(self), "terminate", []byte(body(taskARN, "")), time.Now()))
		if status, _, f, _ := answer(t, ev); status != 202 || len(f.calls) != 1 {
			t.Fatalf("%d, %d StopTask calls; want 202", status, len(f.calls))
		}
	})
}

func TestProofBoundToItsRouteAndBody(t *testing.T) {
	b := body(taskARN, "")
	cases := map[string]string{
		"another body":  proofOf(self, userIDOf(self), "terminate", []byte(body(taskARN, "other")), time.Now()),
		"another route": proofOf(self, userIDOf(self), "extend", []byte(b), time.Now()),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			ev := event("POST", b, self)
			setProof(&ev, p)
			if status, code, f, log := answer(t, ev); status != 403 || code != stopapi.CodeIdentityProofInvalid || len(f.calls) != 0 {
				t.Fatalf("%d %s, %d StopTask calls", status, code, len(f.calls))
			} else if !strings.Contains(log, "SignatureDoesNotMatch") {
				t.Fatalf("STS's refusal is not in the log: %s", log)
			}
		})
	}
}

// Nothing but this function's STS is ever sent a proof: a URL naming any
// other host, path or parameter is refused before any request is made.
func TestProofForAnythingButOurSTSSendsNothing(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	b := []byte(body(taskARN, ""))
	good, _ := identityproof.Decode(proofOf(self, userIDOf(self), "terminate", b, time.Now()))
	edit := func(f func(u *url.URL)) string {
		u, _ := url.Parse(good)
		f(u)
		return identityproof.Encode(u.String())
	}
	ours := stsEndpoint()
	cases := map[string]string{
		"another host":            edit(func(u *url.URL) { u.Host = strings.TrimPrefix(other.URL, "http://") }),
		"another port":            edit(func(u *url.URL) { u.Host = ours.Hostname() + ":1" }),
		"https for http":          edit(func(u *url.URL) { u.Scheme = "https" }),
		"userinfo":                edit(func(u *url.URL) { u.User = url.User("x") }),
		"another path":            edit(func(u *url.URL) { u.Path = "/x" }),
		"extra parameter":         edit(func(u *url.URL) { u.RawQuery += "&RoleArn=x" }),
		"repeated parameter":      edit(func(u *url.URL) { u.RawQuery += "&Action=GetCallerIdentity" }),
		"another action":          edit(func(u *url.URL) { u.RawQuery = strings.Replace(u.RawQuery, "GetCallerIdentity", "AssumeRole", 1) }),
		"binding not signed":      edit(func(u *url.URL) { u.RawQuery = strings.Replace(u.RawQuery, "%3Bx-bastion-ttl-binding", "", 1) }),
		"not base64url":           identityproof.Version + "!!!",
		"no version":              strings.TrimPrefix(proofOf(self, userIDOf(self), "terminate", b, time.Now()), identityproof.Version),
		"oversized":               identityproof.Version + strings.Repeat("A", identityproof.MaxHeaderBytes),
		"made 6 minutes ago":      proofOf(self, userIDOf(self), "terminate", b, time.Now().Add(-6*time.Minute)),
		"made 6 minutes ahead":    proofOf(self, userIDOf(self), "terminate", b, time.Now().Add(6*time.Minute)),
		"port spelled out":        edit(func(u *url.URL) { u.Host = "localhost:" + u.Port() }),
		"a byte no signer writes": identityproof.Encode(good + "&X-Amz-Signature=x y"),
		"signed for another region": func() string {
			p, _ := stopclient.Prove(context.Background(), credsOf(self, userIDOf(self)), stsEndpoint(), "ap-south-1", "POST", "terminate", b, time.Now())
			return p
		}(),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			before := testSTSRequests()
			ev := event("POST", string(b), self)
			setProof(&ev, p)
			status, code, f, _ := answer(t, ev)
			if status != 403 || code != stopapi.CodeIdentityProofInvalid || len(f.calls) != 0 {
				t.Fatalf("%d %s, %d StopTask calls", status, code, len(f.calls))
			}
			if n := testSTSRequests() - before + int(elsewhere.Load()); n != 0 {
				t.Fatalf("%d requests sent for a proof that is not for our STS", n)
			}
		})
	}
}

// STS itself would accept a proof for 15 minutes; the function does not
// let one live that long.
func TestStaleProofThatSTSWouldAccept(t *testing.T) {
	b := []byte(body(taskARN, ""))
	p := proofOf(self, userIDOf(self), "terminate", b, time.Now().Add(-10*time.Minute))
	u, _ := identityproof.Decode(p)
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set(identityproof.BindingHeader, identityproof.Binding("POST", "terminate", b))
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the STS stand-in refused a 10-minute-old proof (%v, %v); the test proves nothing", resp, err)
	}
	resp.Body.Close()
	ev := event("POST", string(b), self)
	setProof(&ev, p)
	if status, code, _, _ := answer(t, ev); status != 403 || code != stopapi.CodeIdentityProofInvalid {
		t.Fatalf("%d %s", status, code)
	}
}

// STS's trouble is not the caller's fault: 503, which the supervisor retries.
func TestSTSTroubleIs503(t *testing.T) {
	cases := map[string]func() (*url.URL, time.Duration){
		"500":                    func() (*url.URL, time.Duration) { return failingSTS(t, 500, "InternalFailure", 0), 0 },
		"503 ServiceUnavailable": func() (*url.URL, time.Duration) { return failingSTS(t, 503, "ServiceUnavailable", 0), 0 },
		"throttled with a 400":   func() (*url.URL, time.Duration) { return failingSTS(t, 400, "Throttling", 0), 0 },
		"time-out":               func() (*url.URL, time.Duration) { return failingSTS(t, 0, "", time.Second), 100 * time.Millisecond },
		"unreachable":            func() (*url.URL, time.Duration) { return closedEndpoint(t), 0 },
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			endpoint, timeout := mk()
			status, code, f, log := answer(t, proofFor(t, endpoint), func(s *Service) { s.Prover.Endpoint, s.Prover.Timeout = endpoint, timeout })
			if status != 503 || code != stopapi.CodeUnavailable || len(f.calls) != 0 {
				t.Fatalf("%d %s, %d StopTask calls; log %s", status, code, len(f.calls), log)
			}
		})
	}
	t.Run("STS turned off in the region is the operator's: 500", func(t *testing.T) {
		endpoint := failingSTS(t, 403, "RegionDisabledException", 0)
		if status, code, _, _ := answer(t, proofFor(t, endpoint), func(s *Service) { s.Prover.Endpoint = endpoint }); status != 500 || code != stopapi.CodeInternal {
			t.Errorf("%d %s", status, code)
		}
	})
	t.Run("other errors refuse the proof", func(t *testing.T) {
		for _, c := range []string{"InvalidClientTokenId", "ExpiredToken", "SignatureDoesNotMatch", "AccessDenied"} {
			endpoint := failingSTS(t, 403, c, 0)
			if status, code, _, _ := answer(t, proofFor(t, endpoint), func(s *Service) { s.Prover.Endpoint = endpoint }); status != 403 || code != stopapi.CodeIdentityProofInvalid {
				t.Errorf("%s: %d %s", c, status, code)
			}
		}
	})
}

// proofFor is a stop of the test's own task with a proof made for endpoint.
func proofFor(t *testing.T, endpoint *url.URL) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b := body(taskARN, "")
	ev := event("POST", b, self)
	p, err := stopclient.Prove(context.Background(), credsOf(self, userIDOf(self)), endpoint, region, "POST", "terminate", []byte(b), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	setProof(&ev, p)
	return ev
}

func failingSTS(t *testing.T, status int, code string, delay time.Duration) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"Error":{"Type":"Sender","Code":"` + code + `","Message":"m"},"RequestId":"r"}`))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

func closedEndpoint(t *testing.T) *url.URL {
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL)
	srv.Close()
	return u
}

func TestProofAndEventMustAgree(t *testing.T) {
	b := body(taskARN, "")
	ev := event("POST", b, self)
	ev.RequestContext.Authorizer.IAM.UserID = "AROAZSOMEOTHERROLE99:" + taskID
	setProof(&ev, proofOf(self, userIDOf(self), "terminate", []byte(b), time.Now()))
	if status, code, f, _ := answer(t, ev); status != 403 || code != stopapi.CodeIdentityProofInvalid || len(f.calls) != 0 {
		t.Fatalf("%d %s, %d StopTask calls", status, code, len(f.calls))
	}
	// The role ID alone, as some of API Gateway's samples show userId, is
	// the same caller.
	ev.RequestContext.Authorizer.IAM.UserID = pinnedID
	if status, _, f, _ := answer(t, ev); status != 202 || len(f.calls) != 1 {
		t.Fatalf("userId as the role ID alone: %d, %d StopTask calls", status, len(f.calls))
	}
}

// A REST API delivers headers in the sender's case, single- and
// multi-valued.
func TestProofInARESTEvent(t *testing.T) {
	ev := provenREST(apigateway.ToREST(event("POST", body(taskARN, ""), self), "prod"))
	if _, ok := ev.Headers["X-Bastion-Ttl-Identity"]; !ok {
		t.Fatalf("headers %v", ev.Headers)
	}
	f := &fakeECS{}
	var log bytes.Buffer
	resp, _ := newService(f, &log).HandleREST(context.Background(), ev)
	if resp.StatusCode != 202 || len(f.calls) != 1 {
		t.Fatalf("%d %s", resp.StatusCode, resp.Body)
	}
	if !strings.Contains(log.String(), `"proof":"verified"`) {
		t.Fatalf("log: %s", log.String())
	}
	ev.MultiValueHeaders = map[string][]string{"X-Bastion-Ttl-Identity": {ev.Headers["X-Bastion-Ttl-Identity"], "v1.AAAA"}}
	resp, _ = newService(f, &log).HandleREST(context.Background(), ev)
	if resp.StatusCode != 403 {
		t.Fatalf("two proofs: %d %s", resp.StatusCode, resp.Body)
	}
}

// The transition switch lets a request without a proof through on the
// event's identity, logged and counted; a proof that is there is checked.
func TestAcceptUnproven(t *testing.T) {
	accept := func(s *Service) { s.Prover.AcceptUnproven = true }
	status, _, f, log := answer(t, event("POST", body(taskARN, ""), self), accept)
	if status != 202 || len(f.calls) != 1 || !strings.Contains(log, `"Unproven"`) || !strings.Contains(log, "BASTION_ACCEPT_UNPROVEN") {
		t.Fatalf("%d, %d calls, log %s", status, len(f.calls), log)
	}
	// The role pin and self rule still hold on the event's identity.
	if status, _, f, _ := answer(t, event("POST", body(victimARN, ""), self), accept); status != 403 || len(f.calls) != 0 {
		t.Fatalf("another task: %d", status)
	}
	// A userId that is the role ID alone (the libraries' sample events)
	// meets a pin by ID; the session, from the ARN, must still be the task's.
	roleOnly := event("POST", body(taskARN, ""), self)
	roleOnly.RequestContext.Authorizer.IAM.UserID = pinnedID
	if status, _, f, _ := answer(t, roleOnly, accept); status != 202 || len(f.calls) != 1 {
		t.Fatalf("userId the pinned role ID alone: %d", status)
	}
	roleOnly = event("POST", body(victimARN, ""), self)
	roleOnly.RequestContext.Authorizer.IAM.UserID = pinnedID
	if status, _, f, _ := answer(t, roleOnly, accept); status != 403 || len(f.calls) != 0 {
		t.Fatalf("userId the role ID alone, another task: %d", status)
	}
	ev := event("POST", body(taskARN, ""), self)
	setProof(&ev, proofOf(self, userIDOf(self), "extend", []byte(body(taskARN, "")), time.Now()))
	if status, code, _, _ := answer(t, ev, accept); status != 403 || code != stopapi.CodeIdentityProofInvalid {
		t.Fatalf("a bad proof with the switch on: %d %s", status, code)
	}
}

func testSTSRequests() int {
	stsEndpoint()
	return testSTS.server.Requests()
}

// The real STS refuses a signature scoped to another region; so does the
// stand-in that judges these tests.
func TestSTSStandInRefusesAnotherRegion(t *testing.T) {
	b := []byte(body(taskARN, ""))
	p, _ := stopclient.Prove(context.Background(), credsOf(self, userIDOf(self)), stsEndpoint(), "ap-south-1", "POST", "terminate", b, time.Now())
	raw, _ := identityproof.Decode(p)
	req, _ := http.NewRequest(http.MethodGet, raw, nil)
	req.Header.Set(identityproof.BindingHeader, identityproof.Binding("POST", "terminate", b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("the stand-in answered %d to a proof scoped to ap-south-1", resp.StatusCode)
	}
}

// With the function's account configured, the event's accountId (which a
// direct invoker writes) cannot move it.
func TestForgedAccountID(t *testing.T) {
	const other = "999999999999"
	arn := "arn:aws:ecs:eu-west-1:" + other + ":task/bastions/" + victimID
	b := body(arn, "")
	ev := event("POST", b, "")
	ev.RequestContext.AccountID = other
	setProof(&ev, proofOf("arn:aws:sts::"+other+":assumed-role/bastion-extra-role/"+victimID, "AROAZATTACKERROLE999:"+victimID, "terminate", []byte(b), time.Now()))
	status, _, f, _ := answer(t, ev, func(s *Service) { s.Account = account })
	if status != 403 || len(f.calls) != 0 {
		t.Fatalf("%d, %d StopTask calls", status, len(f.calls))
	}
	// And without the event naming one, the configured account decides.
	ev.RequestContext.AccountID = ""
	if status, _, f, _ := answer(t, ev, func(s *Service) { s.Account = account }); status != 403 || len(f.calls) != 0 {
		t.Fatalf("no accountId: %d, %d StopTask calls", status, len(f.calls))
	}
}
