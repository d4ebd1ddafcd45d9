package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// The real bootstrap under the Runtime Interface Emulator, stopping tasks in
// moto_server through the real SDK.
func TestLambdaAgainstMoto(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	bastions := testenv.RunTasks(t, client, "bastions", 3)
	others := testenv.RunTasks(t, client, "other", 2)

	stsAPI := &sts.Server{Region: testenv.Region, Now: time.Now}
	stsSrv := httptest.NewServer(stsAPI)
	defer stsSrv.Close()
	// The environment the local stack gives the function, its role pinned
	// by name (the WARN path of a stack deployed by hand).
	env := stack.Config{Region: testenv.Region, Account: testenv.Account, Clusters: []string{"bastions"},
		TaskRoles: []string{"bastion-task-role"}, MaxTTL: 4 * time.Hour}.Env(endpoint, stsSrv.URL)
	fn := testenv.StartLambda(t, testenv.BuildLambda(t, "../..", "lambda/terminate"), env)
	// prove gives ev a proof of the identity it claims, as the supervisor
	// would make it with that identity's credentials.
	stsURL, _ := url.Parse(stsSrv.URL)
	prove := func(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPRequest {
		a := ev.RequestContext.Authorizer
		if a == nil || a.IAM == nil || a.IAM.UserARN == "" {
			return ev
		}
		raw := []byte(ev.Body)
		if ev.IsBase64Encoded {
			raw, _ = base64.StdEncoding.DecodeString(ev.Body)
		}
		p, err := stopclient.Prove(context.Background(), stsAPI.Issue(a.IAM.UserARN, a.IAM.UserID), stsURL, testenv.Region,
			"POST", identityproof.Route(ev.RawPath), raw, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]string{"x-bastion-ttl-identity": p}
		for k, v := range ev.Headers {
			h[k] = v
		}
		ev.Headers = h
		return ev
	}
	invokeRaw := func(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		raw, _ := json.Marshal(ev)
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(fn.Invoke(t, raw), &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	invoke := func(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse { return invokeRaw(prove(ev)) }

	me := bastions[0]
	myID := me[strings.LastIndex(me, "/")+1:]
	myRole := "arn:aws:sts::" + testenv.Account + ":assumed-role/bastion-task-role/"

	t.Run("a task extends itself, up to the cap", func(t *testing.T) {
		for _, step := range []struct {
			ask, want string
			capped    bool
		}{
			{"2h", "2h0m0s", false},
			{"2h", "2h0m0s", false}, // a retry changes nothing
			{"1h", "2h0m0s", false}, // never shorter than recorded
			{"24h", "4h0m0s", true}, // the cap
			{"3h", "4h0m0s", false},
		} {
			resp := invoke(extendEvent(mustJSON(map[string]string{"taskArn": me, "ttl": step.ask}), myRole+myID))
			var e struct {
				TaskArn, TTL string
				Capped       bool
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &e) != nil {
				t.Fatalf("ask %s: %d %s", step.ask, resp.StatusCode, resp.Body)
			}
			if e.TaskArn != me || e.TTL != step.want || e.Capped != step.capped {
				t.Fatalf("ask %s: answer %s, want ttl %s capped %v", step.ask, resp.Body, step.want, step.capped)
			}
			if got := testenv.Tag(t, client, me, ttltag.Key); got != step.want {
				t.Fatalf("ask %s: tag in moto %q, want %q", step.ask, got, step.want)
			}
		}
	})

	t.Run("extension refused", func(t *testing.T) {
		victim, otherTask := bastions[1], others[0]
		unknownTask := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/00000000-0000-4000-8000-000000000000"
		for _, tc := range []hostile{
			{"another task's ARN", extendEvent(mustJSON(map[string]string{"taskArn": victim, "ttl": "4h"}), myRole+myID), 403},
			{"another cluster's task", extendEvent(mustJSON(map[string]string{"taskArn": otherTask, "ttl": "4h"}), myRole+idOf(otherTask)), 403},
			{"no identity", extendEvent(mustJSON(map[string]string{"taskArn": victim, "ttl": "4h"}), ""), 403},
			{"ttl missing", extendEvent(mustJSON(map[string]string{"taskArn": victim}), myRole+idOf(victim)), 400},
			{"ttl negative", extendEvent(mustJSON(map[string]string{"taskArn": victim, "ttl": "-1h"}), myRole+idOf(victim)), 400},
			{"ttl not a duration", extendEvent(mustJSON(map[string]string{"taskArn": victim, "ttl": "forever"}), myRole+idOf(victim)), 400},
			{"a tag smuggled in", extendEvent(`{"taskArn":"`+victim+`","ttl":"1h","tags":[{"key":"owner","value":"me"}]}`, myRole+idOf(victim)), 400},
			{"unknown task", extendEvent(mustJSON(map[string]string{"taskArn": unknownTask, "ttl": "1h"}), myRole+idOf(unknownTask)), 404},
		} {
			resp := invoke(tc.ev)
			if resp.StatusCode != tc.status {
				t.Errorf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.status, resp.Body)
			}
		}
		for _, arn := range append([]string{victim}, others...) {
			if got := testenv.Tag(t, client, arn, ttltag.Key); got != "" {
				t.Errorf("%s was tagged %q by a refused request", arn, got)
			}
		}
	})

	// POST /usage is recorded (here: logged, no recorder) and acts on
	// nothing; another task's is refused.
	t.Run("a task reports its usage", func(t *testing.T) {
		victim := bastions[1]
		u := `{"samples":2,"from":"2026-05-04T10:00:00Z","to":"2026-05-04T10:01:00Z","memoryPeakBytes":3416064,"memoryLimitBytes":536870912,` +
			`"cpuSeconds":1.138,"cpuPeakVcpu":0.25,"netRxBytes":84,"netTxBytes":84}`
		resp := invoke(usageEvent(`{"taskArn":"`+me+`","usage":`+u+`}`, myRole+myID))
		if resp.StatusCode != 202 || resp.Body != `{"taskArn":"`+me+`","samples":2}` {
			t.Fatalf("usage: %d %s", resp.StatusCode, resp.Body)
		}
		fn.WaitOutput(t, 5*time.Second, `"msg":"usage request"`)
		fn.WaitOutput(t, 5*time.Second, `"outcome":"recorded"`)
		if resp := invoke(usageEvent(`{"taskArn":"`+victim+`","usage":`+u+`}`, myRole+myID)); resp.StatusCode != 403 {
			t.Fatalf("another task's usage: %d %s", resp.StatusCode, resp.Body)
		}
		if resp := invoke(usageEvent(`{"taskArn":"`+me+`","usage":{"samples":0}}`, myRole+myID)); resp.StatusCode != 400 {
			t.Fatalf("a usage out of bounds: %d %s", resp.StatusCode, resp.Body)
		}
		if got := testenv.Tag(t, client, victim, ttltag.Key); got != "" {
			t.Errorf("%s tagged %q by a usage report", victim, got)
		}
	})

	// Anyone allowed to invoke the function writes any requestContext: the
	// function believes STS, so a forged identity stops and tags nothing.
	t.Run("forged events", func(t *testing.T) {
		victim := bastions[1]
		victimCaller := myRole + idOf(victim)
		stsBefore := stsAPI.Requests()
		for name, ev := range map[string]events.APIGatewayV2HTTPRequest{
			"stop, no proof":   apiEvent("POST", mustJSON(map[string]string{"taskArn": victim}), victimCaller),
			"extend, no proof": extendEvent(mustJSON(map[string]string{"taskArn": victim, "ttl": "4h"}), victimCaller),
		} {
			if resp := invokeRaw(ev); resp.StatusCode != 403 || !strings.Contains(resp.Body, `"IdentityProofInvalid"`) {
				t.Errorf("%s: %d %s", name, resp.StatusCode, resp.Body)
			}
		}
		if n := stsAPI.Requests() - stsBefore; n != 0 {
			t.Errorf("%d STS requests for events without a proof", n)
		}
		// The attacker's own bastion's proof, the victim's identity claimed.
		ev := apiEvent("POST", mustJSON(map[string]string{"taskArn": victim}), myRole+myID)
		ev = prove(ev)
		ev.RequestContext.Authorizer.IAM.UserARN = victimCaller
		if resp := invokeRaw(ev); resp.StatusCode != 403 || !strings.Contains(resp.Body, `"IdentityProofInvalid"`) {
			t.Errorf("another task's proof: %d %s", resp.StatusCode, resp.Body)
		}
		if stsAPI.Requests() == stsBefore {
			t.Errorf("the proof was never checked with STS")
		}
		if got := testenv.Describe(t, client, "bastions", []string{victim})[victim]; aws.ToString(got.DesiredStatus) != "RUNNING" {
			t.Fatalf("victim is %s", aws.ToString(got.DesiredStatus))
		}
		if got := testenv.Tag(t, client, victim, ttltag.Key); got != "" {
			t.Fatalf("victim tagged %q", got)
		}
	})

	t.Run("a task stops itself", func(t *testing.T) {
		resp := invoke(apiEvent("POST", mustJSON(map[string]string{"taskArn": me, "reason": "TTL 30m0s expired (started 2026-11-24T10:00:00Z)"}), myRole+myID))
		if resp.StatusCode != 202 || resp.Headers["Content-Type"] != "application/json" {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Headers, resp.Body)
		}
		var a struct{ TaskArn, DesiredStatus string }
		if err := json.Unmarshal([]byte(resp.Body), &a); err != nil || a.TaskArn != me || a.DesiredStatus != "STOPPED" {
			t.Fatalf("body %s", resp.Body)
		}
		got := testenv.Describe(t, client, "bastions", []string{me})[me]
		if aws.ToString(got.DesiredStatus) != "STOPPED" || aws.ToString(got.StoppedReason) != "bastion-ttl: TTL 30m0s expired (started 2026-11-24T10:00:00Z)" {
			t.Fatalf("in moto: desired %s, reason %q", aws.ToString(got.DesiredStatus), aws.ToString(got.StoppedReason))
		}
	})

	// The same corpus in both payload formats: the public HTTP API's and
	// the private REST API's.
	invokeREST := func(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		rest := apigateway.ToREST(prove(ev), "prod") // headers in the sender's (canonical) case, as a REST API delivers them
		raw, _ := json.Marshal(rest)
		var resp events.APIGatewayV2HTTPResponse
		out := fn.Invoke(t, raw)
		if strings.Contains(string(out), `"cookies"`) {
			t.Fatalf("a REST answer with the HTTP API's members: %s", out)
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	type format struct {
		hostile
		rest bool // sent as the REST API's payload 1.0
	}
	var cases []format
	for _, tc := range hostileCorpus(bastions, others, myRole) {
		rest := tc
		rest.name = "REST: " + tc.name
		cases = append(cases, format{tc, false}, format{rest, true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(tc.ev)
			if tc.rest {
				resp = invokeREST(tc.ev)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			var body struct{ Code, Error string }
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Error == "" || body.Code == "" {
				t.Fatalf("not a JSON error: %q", resp.Body)
			}
			for _, leak := range []string{"moto", "127.0.0.1", "Exception", "operation error", "goroutine", "panic", "AKID"} {
				if strings.Contains(resp.Body, leak) {
					t.Fatalf("answer leaks internal text %q: %s", leak, resp.Body)
				}
			}
		})
	}

	t.Run("every other task still runs", func(t *testing.T) {
		for cluster, arns := range map[string][]string{"bastions": bastions[1:], "other": others} {
			for arn, task := range testenv.Describe(t, client, cluster, arns) {
				if aws.ToString(task.DesiredStatus) != "RUNNING" || aws.ToString(task.LastStatus) != "RUNNING" {
					t.Errorf("%s is %s/%s", arn, aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus))
				}
			}
		}
	})

	fn.WaitOutput(t, 5*time.Second, `"msg":"starting","version":`) // the cold start says which build
	// BASTION_TASK_ROLES by name, as a deployment made by hand may give it.
	fn.WaitOutput(t, 5*time.Second, `"level":"WARN","msg":"BASTION_TASK_ROLES names roles instead of giving their unique IDs`)
	fn.WaitOutput(t, 5*time.Second, `"msg":"terminate request"`)
	fn.WaitOutput(t, 5*time.Second, `"outcome":"stopped"`)
	fn.WaitOutput(t, 5*time.Second, `"proof":"verified"`)
	fn.WaitOutput(t, 5*time.Second, `"msg":"extend request"`)
	fn.WaitOutput(t, 5*time.Second, `"outcome":"extended"`)
}

type hostile struct {
	name   string
	ev     events.APIGatewayV2HTTPRequest
	status int
}

// hostileCorpus is every request that must be refused, each with its status.
func hostileCorpus(bastions, others []string, role string) []hostile {
	victim, victimID := bastions[1], idOf(bastions[1])
	attacker := role + idOf(bastions[2])
	otherTask := others[0]
	body := func(arn string) string { return mustJSON(map[string]string{"taskArn": arn}) }
	withB64 := func(ev events.APIGatewayV2HTTPRequest, enc string) events.APIGatewayV2HTTPRequest {
		ev.Body, ev.IsBase64Encoded = enc, true
		return ev
	}
	noIAM := apiEvent("POST", body(victim), "")
	noIAM.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{}
	unknownTask := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/00000000-0000-4000-8000-000000000000"
	return []hostile{
		{"another task's ARN", apiEvent("POST", body(victim), attacker), 403},
		{"another cluster's task, own session", apiEvent("POST", body(otherTask), role+idOf(otherTask)), 403},
		{"another cluster's task, other session", apiEvent("POST", body(otherTask), attacker), 403},
		{"another account's task", apiEvent("POST", body(strings.Replace(victim, "123456789012", "210987654321", 1)), role+victimID), 403},
		{"caller from another account", apiEvent("POST", body(victim), "arn:aws:sts::210987654321:assumed-role/bastion-task-role/"+victimID), 403},
		{"IAM user", apiEvent("POST", body(victim), "arn:aws:iam::123456789012:user/"+victimID), 403},
		{"IAM role, not a session", apiEvent("POST", body(victim), "arn:aws:iam::123456789012:role/"+victimID), 403},
		{"account root", apiEvent("POST", body(victim), "arn:aws:iam::123456789012:root"), 403},
		{"federated user", apiEvent("POST", body(victim), "arn:aws:sts::123456789012:federated-user/"+victimID), 403},
		{"session name prefixes the task ID", apiEvent("POST", body(victim), role+victimID[:len(victimID)-1]), 403},
		{"session name extends the task ID", apiEvent("POST", body(victim), role+victimID+"0"), 403},
		{"session in another partition", apiEvent("POST", body(victim), "arn:aws-cn:sts::123456789012:assumed-role/r/"+victimID), 403},
		{"no identity at all", apiEvent("POST", body(victim), ""), 403},
		{"another role, session named after the task", apiEvent("POST", body(victim), "arn:aws:sts::123456789012:assumed-role/Admin/"+victimID), 403},
		{"pinned role name in another account", apiEvent("POST", body(strings.Replace(victim, "123456789012", "210987654321", 1)), "arn:aws:sts::210987654321:assumed-role/bastion-task-role/"+victimID), 403},
		{"authorizer without IAM", noIAM, 403},
		{"wrong method GET", apiEvent("GET", "", role+victimID), 405},
		{"wrong method DELETE", apiEvent("DELETE", body(victim), role+victimID), 405},
		{"empty body", apiEvent("POST", "", role+victimID), 400},
		{"malformed JSON", apiEvent("POST", `{"taskArn": "`+victim, role+victimID), 400},
		{"JSON array", apiEvent("POST", `["`+victim+`"]`, role+victimID), 400},
		{"unknown field", apiEvent("POST", `{"taskArn":"`+victim+`","force":true}`, role+victimID), 400},
		{"two JSON objects", apiEvent("POST", body(victim)+body(others[1]), role+victimID), 400},
		{"ARN with extra path segment", apiEvent("POST", body(victim+"/extra"), role+victimID), 400},
		{"ARN with dot-dot", apiEvent("POST", body("arn:aws:ecs:eu-west-1:123456789012:task/bastions/../"+victimID), role+victimID), 400},
		{"ARN wildcard", apiEvent("POST", body("arn:aws:ecs:eu-west-1:123456789012:task/bastions/*"), role+"*"), 400},
		{"ARN in another region", apiEvent("POST", body(strings.Replace(victim, "eu-west-1", "us-east-1", 1)), role+victimID), 400},
		{"not an ECS ARN", apiEvent("POST", body("arn:aws:ec2:eu-west-1:123456789012:instance/i-0123"), role+victimID), 400},
		{"cluster ARN instead of task", apiEvent("POST", body("arn:aws:ecs:eu-west-1:123456789012:cluster/bastions"), role+victimID), 400},
		{"old ARN without cluster", apiEvent("POST", body("arn:aws:ecs:eu-west-1:123456789012:task/"+victimID), role+victimID), 400},
		{"cluster field disagrees", apiEvent("POST", `{"taskArn":"`+victim+`","cluster":"other"}`, role+victimID), 400},
		{"overlong reason", apiEvent("POST", mustJSON(map[string]string{"taskArn": victim, "reason": strings.Repeat("x", 201)}), role+victimID), 400},
		{"reason with escape sequence", apiEvent("POST", mustJSON(map[string]string{"taskArn": victim, "reason": "\x1b]0;owned\x07"}), role+victimID), 400},
		{"reason with bidi override", apiEvent("POST", mustJSON(map[string]string{"taskArn": victim, "reason": "ok \u202eexe.txt"}), role+victimID), 400},
		{"reason with zero-width space", apiEvent("POST", mustJSON(map[string]string{"taskArn": victim, "reason": "a\u200bb"}), role+victimID), 400},
		{"invalid UTF-8 in body", withB64(apiEvent("POST", "", role+victimID), base64.StdEncoding.EncodeToString([]byte("{\"taskArn\":\""+victim+"\",\"reason\":\"\xff\xfe\"}"))), 400},
		{"fullwidth digits in ARN", apiEvent("POST", body(strings.Replace(victim, "123456789012", "１２３４５６７８９０１２", 1)), role+victimID), 400},
		{"bad base64", withB64(apiEvent("POST", "", role+victimID), "%%%not-base64%%%"), 400},
		{"base64 of garbage", withB64(apiEvent("POST", "", role+victimID), base64.StdEncoding.EncodeToString([]byte("\x00\x01garbage"))), 400},
		{"oversized body", apiEvent("POST", mustJSON(map[string]string{"taskArn": victim, "pad": strings.Repeat("a", 5000)}), role+victimID), 413},
		{"oversized base64 body", withB64(apiEvent("POST", "", role+victimID), base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", 4097)))), 413},
		{"unknown task in an allowed cluster", apiEvent("POST", body(unknownTask), role+idOf(unknownTask)), 404},
	}
}

func apiEvent(method, body, caller string) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "POST /terminate", RawPath: "/terminate", Body: body}
	ev.RequestContext.RequestID = fmt.Sprintf("req-%d", len(body))
	ev.RequestContext.AccountID = testenv.Account
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.HTTP.Path = "/terminate"
	if caller != "" {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: caller, AccountID: testenv.Account},
		}
	}
	return ev
}

func extendEvent(body, caller string) events.APIGatewayV2HTTPRequest {
	ev := apiEvent("POST", body, caller)
	ev.RouteKey, ev.RawPath, ev.RequestContext.HTTP.Path = "POST /extend", "/extend", "/extend"
	return ev
}

func usageEvent(body, caller string) events.APIGatewayV2HTTPRequest {
	ev := apiEvent("POST", body, caller)
	ev.RouteKey, ev.RawPath, ev.RequestContext.HTTP.Path = "POST /usage", "/usage", "/usage"
	return ev
}

func idOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
