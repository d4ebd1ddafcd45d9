// The throttle counts: a metric filter counts what it matches, so each is
// fed the lines it is there for, as they are written, and must count each
// 429 once and nothing else.
package template_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/filterpattern"
)

// supervisorLines are the log lines the supervisor's own client writes, in
// the supervisor's own JSON format, against a local API that answers each
// route's statuses in turn; and how many of its answers were 429.
func supervisorLines(t *testing.T, stops, extends []int) (lines []string, throttled int) {
	t.Helper()
	var mu sync.Mutex
	answered := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		statuses := map[string][]int{"/terminate": stops, "/extend": extends}[r.URL.Path]
		n := answered[r.URL.Path]
		answered[r.URL.Path]++
		mu.Unlock()
		status := statuses[min(n, len(statuses)-1)]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		switch {
		case status == http.StatusTooManyRequests: // API Gateway's own answer
			_, _ = io.WriteString(w, `{"message":"Too Many Requests"}`)
		case r.URL.Path == "/extend" && status == http.StatusOK:
			_, _ = io.WriteString(w, `{"taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef","ttl":"2h","capped":false,"maxTtl":"12h"}`)
		case status/100 == 2:
			_, _ = io.WriteString(w, `{}`)
		default:
			_, _ = io.WriteString(w, `{"code":"Unavailable","error":"ECS is unavailable"}`)
		}
	}))
	defer srv.Close()
	var out bytes.Buffer
	c := &stopclient.Client{
		URL: srv.URL + "/terminate", ExtendURL: srv.URL + "/extend", Region: "eu-west-1",
		STS:         &url.URL{Scheme: "https", Host: "sts.eu-west-1.amazonaws.com"},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", ""),
		Clock:       clock.System{}, Backoff: backoff.Policy{Base: time.Millisecond, Max: time.Millisecond},
		Log: logging.New(&out, "json", slog.LevelInfo), // the supervisor's logger, its default format
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	task := "arn:aws:ecs:eu-west-1:123456789012:task/bastions/0123456789abcdef0123456789abcdef"
	if len(stops) > 0 {
		if err := c.Stop(ctx, stopapi.Request{TaskARN: task, Reason: "TTL 1h expired"}); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	if len(extends) > 0 {
		if _, err := c.Extend(ctx, stopapi.ExtendRequest{TaskARN: task, TTL: "2h"}); err != nil {
			t.Fatalf("extend: %v", err)
		}
	}
	for _, s := range append(append([]int{}, stops...), extends...) {
		if s == http.StatusTooManyRequests {
			throttled++
		}
	}
	return strings.Split(strings.TrimSpace(out.String()), "\n"), throttled
}

func metricFilter(t *testing.T, tpl object, id string) (pattern string, f *filterpattern.Pattern) {
	t.Helper()
	res := resources(tpl, "AWS::Logs::MetricFilter")[id]
	if res == nil {
		t.Fatalf("no metric filter %s", id)
	}
	pattern, _ = get(res, "Properties", "FilterPattern").(string)
	f, err := filterpattern.Compile(pattern)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return pattern, f
}

func count(f *filterpattern.Pattern, lines []string) int {
	n := 0
	for _, l := range lines {
		if f.Matches(l) {
			n++
		}
	}
	return n
}

// The supervisors' 429s, counted in the bastions' log group under either
// API setting: every 429 answer to a stop or an extension once, and not
// the retry lines, the success, or a 5xx.
func TestTemplateSupervisorThrottledFilterCountsEach429(t *testing.T) {
	for name, params := range map[string]map[string]string{"public": publicAPI, "private": privateAPI} {
		t.Run(name, func(t *testing.T) {
			tpl := transformedFor(t, params)
			pattern, f := metricFilter(t, tpl, "SupervisorThrottledMetricFilter")
			res := resources(tpl, "AWS::Logs::MetricFilter")["SupervisorThrottledMetricFilter"]
			if !same(get(res, "Properties", "LogGroupName"), ref("BastionLogGroup")) {
				t.Errorf("the filter reads %s, not the bastions' log group", jsonOf(get(res, "Properties", "LogGroupName")))
			}
			lines, throttled := supervisorLines(t, []int{429, 503, 429, 202}, []int{429, 200})
			if throttled != 3 || len(lines) < 6 {
				t.Fatalf("%d throttled answers in %d lines:\n%s", throttled, len(lines), strings.Join(lines, "\n"))
			}
			if got := count(f, lines); got != throttled {
				t.Errorf("%s counts %d of the lines, want the %d 429s:\n%s", pattern, got, throttled, strings.Join(lines, "\n"))
			}
			for _, l := range lines {
				is429 := strings.Contains(l, `"status":429`)
				if f.Matches(l) != (is429 && strings.Contains(l, `request answered"`)) {
					t.Errorf("%s: matches = %v for\n%s", pattern, f.Matches(l), l)
				}
			}
			quiet, _ := supervisorLines(t, []int{503, 202}, []int{200})
			if got := count(f, quiet); got != 0 {
				t.Errorf("%s counts %d lines of requests that were not throttled:\n%s", pattern, got, strings.Join(quiet, "\n"))
			}
		})
	}
}

// The public API's access log, in the format the template gives it, as
// API Gateway writes it: each 429 once, whoever the caller.
func TestTemplateAPIThrottledFilterCountsAccessLog429s(t *testing.T) {
	tpl := transformed(t)
	pattern, f := metricFilter(t, tpl, "ApiThrottledMetricFilter")
	res := resources(tpl, "AWS::Logs::MetricFilter")["ApiThrottledMetricFilter"]
	if !same(get(res, "Properties", "LogGroupName"), ref("ApiAccessLogGroup")) {
		t.Errorf("the filter reads %s, not the API's access log", jsonOf(get(res, "Properties", "LogGroupName")))
	}
	var stage object
	for _, st := range resources(tpl, "AWS::ApiGatewayV2::Stage") {
		stage = st
	}
	format, _ := get(stage, "Properties", "AccessLogSettings", "Format").(string)
	if !same(get(stage, "Properties", "AccessLogSettings", "DestinationArn"), getAtt("ApiAccessLogGroup", "Arn")) || format == "" {
		t.Fatalf("access log settings %s", jsonOf(get(stage, "Properties", "AccessLogSettings")))
	}
	line := func(status, integrationStatus string) string {
		// What API Gateway puts for each variable ("-" for none: a throttled
		// request never reaches the integration).
		values := map[string]string{
			"$context.requestId": "Ab1CdEfGhIjKlMn=", "$context.requestTime": "01/Dec/2026:19:30:00 +0000",
			"$context.routeKey": "POST /terminate", "$context.status": status,
			"$context.identity.userArn":  "arn:aws:sts::123456789012:assumed-role/bastion-ttl-BastionTaskRole-1A2B/0123456789abcdef0123456789abcdef",
			"$context.identity.sourceIp": "203.0.113.7", "$context.integrationStatus": integrationStatus, "$context.responseLatency": "3",
		}
		out := regexp.MustCompile(`\$context\.[A-Za-z.]+`).ReplaceAllStringFunc(format, func(v string) string {
			s, ok := values[v]
			if !ok {
				t.Fatalf("the access log format uses %s, which this test does not know", v)
			}
			return s
		})
		if !json.Valid([]byte(out)) {
			t.Fatalf("the access log line is not JSON: %s", out)
		}
		return out
	}
	throttled := line("429", "-")
	if !f.Matches(throttled) {
		t.Errorf("%s does not count the access log's 429:\n%s", pattern, throttled)
	}
	for _, l := range []string{line("202", "200"), line("403", "-"), line("500", "500")} {
		if f.Matches(l) {
			t.Errorf("%s counts a request that was not throttled:\n%s", pattern, l)
		}
	}
	// The private API has no access log, so no such filter: the
	// supervisors' count covers it.
	if res := resources(transformedFor(t, privateAPI), "AWS::Logs::MetricFilter")["ApiThrottledMetricFilter"]; res != nil {
		t.Errorf("the private setting has an access-log filter: %s", jsonOf(res))
	}
}
