// The alarms and the dashboard of template.yaml; throttle_filters_test.go
// feeds its metric filters real log lines.

package template_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/metrics"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// The alarms that say the first line failed, each on the metric it names,
// notifying AlarmTopicArn when one is given; every bastion-ttl metric the
// alarms and the dashboard read is one the code reports.
func TestTemplateAlarmsAndDashboard(t *testing.T) {
	if got := get(rawTransformed(t), "Parameters", "AlarmTopicArn", "Default"); got != "" {
		t.Errorf("AlarmTopicArn default %v, want empty", got)
	}
	for name, params := range map[string]map[string]string{"public": publicAPI, "private": privateAPI} {
		t.Run(name, func(t *testing.T) { checkAlarmsAndDashboard(t, transformedFor(t, params), name == "private") })
	}
	raw := rawTransformed(t) // what the conditions choose
	for name, a := range resources(raw, "AWS::CloudWatch::Alarm") {
		if got := get(a, "Properties", "AlarmActions"); !same(got, object{"Fn::If": []any{"HasAlarmTopic", []any{ref("AlarmTopicArn")}, ref("AWS::NoValue")}}) {
			t.Errorf("%s actions = %s, want AlarmTopicArn when given", name, jsonOf(got))
		}
	}
	// A failed sweep is retried, then sent to the topic, which the role may publish to.
	cfg := resources(raw, "AWS::Lambda::EventInvokeConfig")["SweepInvokeConfig"]
	if got := get(cfg, "Properties", "DestinationConfig", "Fn::If"); len(list(got)) != 3 || !strings.Contains(jsonOf(got), jsonOf(ref("AlarmTopicArn"))) {
		t.Errorf("failed sweeps go to %s, want AlarmTopicArn when given", jsonOf(get(cfg, "Properties", "DestinationConfig")))
	}
	// The right to publish is a policy of its own, always made, that the
	// destination and the function wait for: Lambda checks the right when
	// the destination is set, and an inline policy made seconds before may
	// not have reached IAM. (A DependsOn on a resource that a condition
	// leaves out fails the deployment.)
	policy := resources(raw, "AWS::IAM::Policy")["SweepOutputPolicy"]
	if policy == nil || policy["Condition"] != nil || !same(get(policy, "Properties", "Roles"), []any{ref("SweepFunctionRole")}) {
		t.Fatalf("SweepOutputPolicy = %s, want an unconditional policy of SweepFunctionRole", jsonOf(policy))
	}
	for _, id := range []string{"SweepInvokeConfig", "SweepFunction"} {
		var res object
		for _, typ := range []string{"AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Function"} {
			if r := resources(raw, typ)[id]; r != nil {
				res = r
			}
		}
		if !slices.Contains(list(res["DependsOn"]), any("SweepOutputPolicy")) {
			t.Errorf("%s does not wait for SweepOutputPolicy: DependsOn %s", id, jsonOf(res["DependsOn"]))
		}
	}
	if p := jsonOf(get(resources(raw, "AWS::IAM::Role")["SweepFunctionRole"], "Properties", "Policies")); strings.Contains(p, "sns:Publish") {
		t.Errorf("the sweeper's role publishes by an inline policy, which nothing can wait for: %s", p)
	}
	topic := "arn:aws:sns:eu-west-1:123456789012:bastion-alarms"
	for given, want := range map[string]bool{"": false, topic: true} {
		tpl := transformedFor(t, map[string]string{"AlarmTopicArn": given})
		doc := jsonOf(get(resources(tpl, "AWS::IAM::Policy")["SweepOutputPolicy"], "Properties", "PolicyDocument"))
		if strings.Contains(doc, `"Action":"sns:Publish","Effect":"Allow","Resource":{"Ref":"AlarmTopicArn"}`) != want || !strings.Contains(doc, "logs:PutLogEvents") {
			t.Errorf("AlarmTopicArn %q: the sweeper's output policy is %s", given, doc)
		}
		dest := get(resources(tpl, "AWS::Lambda::EventInvokeConfig")["SweepInvokeConfig"], "Properties", "DestinationConfig", "OnFailure", "Destination")
		if (dest != nil) != want {
			t.Errorf("AlarmTopicArn %q: failed sweeps go to %s", given, jsonOf(dest))
		}
	}
}

func checkAlarmsAndDashboard(t *testing.T, tpl object, private bool) {
	emitted := map[string]bool{}
	for _, n := range metrics.Names {
		emitted[n] = true
	}
	for _, c := range []stopapi.Code{stopapi.CodeBadRequest, stopapi.CodeForbidden, stopapi.CodeTaskNotFound, stopapi.CodeMethodNotAllowed, stopapi.CodeTooLarge, stopapi.CodeUnavailable, stopapi.CodeInternal} {
		emitted[string(c)] = true
	}
	// And what the stack's own metric filters count, from log lines
	// (throttle_filters_test.go feeds them real ones).
	for _, f := range resources(tpl, "AWS::Logs::MetricFilter") {
		for _, m := range list(get(f, "Properties", "MetricTransformations")) {
			if name, ok := get(m, "MetricName", "Fn::Sub").(string); ok && get(m, "MetricNamespace") == "bastion-ttl" {
				emitted[strings.TrimSuffix(name, "-${AWS::StackName}")] = true
			}
		}
	}
	alarms := resources(tpl, "AWS::CloudWatch::Alarm")
	want := map[string][]string{ // alarm -> the metrics it reads, namespace/name/dimension value
		"SweeperStoppedAlarm":    {"bastion-ttl/Stopped/SweepFunction"},
		"SweeperErrorsAlarm":     {"AWS/Lambda/Errors/SweepFunction", "AWS/Lambda/Throttles/SweepFunction"},
		"SweeperNotRunningAlarm": {"AWS/Lambda/Invocations/SweepFunction"},
		"LedgerErrorsAlarm":      {"AWS/Lambda/Errors/LedgerFunction", "AWS/Lambda/Throttles/LedgerFunction"},
		"TerminateFailingAlarm":  {"bastion-ttl/Internal/TerminateFunction", "bastion-ttl/Unavailable/TerminateFunction", "AWS/Lambda/Errors/TerminateFunction"},
		"Api5xxAlarm":            {"AWS/ApiGateway/5xx/TerminateApi"}, // private: 5XXError by ApiName
		"FailSafeAlarm":          {"bastion-ttl/FailSafeExits/"},
		// Throttling: the supervisors' 429s (both settings), the access log's (public).
		"SupervisorThrottledAlarm": {"bastion-ttl/SupervisorThrottled/"},
		"ApiThrottledAlarm":        {"bastion-ttl/ApiThrottled/"},
	}
	if private {
		want["Api5xxAlarm"] = []string{"AWS/ApiGateway/5XXError/"}
		delete(want, "ApiThrottledAlarm")
		if alarms["ApiThrottledAlarm"] != nil {
			t.Error("the private setting has an alarm on the access log it does not have")
		}
	}
	read := map[string]bool{} // every namespace/metric/dimension an alarm of want reads
	for name, reads := range want {
		a := alarms[name]
		if a == nil {
			t.Errorf("no %s", name)
			continue
		}
		p := a["Properties"].(object)
		var got []string
		add := func(m any) {
			ns, _ := get(m, "Namespace").(string)
			metric, _ := get(m, "MetricName").(string)
			if s, ok := get(m, "MetricName", "Fn::Sub").(string); ok { // the stack's own metric filter's
				metric = strings.TrimSuffix(s, "-${AWS::StackName}")
			}
			dim := ""
			for _, d := range list(get(m, "Dimensions")) {
				dim, _ = get(d, "Value", "Ref").(string)
			}
			got = append(got, ns+"/"+metric+"/"+dim)
			if ns == "bastion-ttl" && !emitted[metric] {
				t.Errorf("%s reads %s, which no function reports", name, metric)
			}
		}
		if p["MetricName"] != nil {
			add(p)
		}
		for _, m := range list(p["Metrics"]) {
			if ms := get(m, "MetricStat", "Metric"); ms != nil {
				add(ms)
			}
		}
		if !same(got, reads) {
			t.Errorf("%s reads %v, want %v", name, got, reads)
		}
		for _, r := range got {
			read[r] = true
		}
	}
	// Every function that runs on its own (a request, a schedule, an event)
	// has an alarm on its errors; TaskRolesFunction runs at deploy time, and
	// its failure fails the deployment.
	for fn := range resources(tpl, "AWS::Lambda::Function") {
		if fn != "TaskRolesFunction" && !read["AWS/Lambda/Errors/"+fn] {
			t.Errorf("no alarm reads %s's Errors", fn)
		}
	}
	if got := get(alarms["SweeperStoppedAlarm"], "Properties", "Threshold"); got != 1.0 {
		t.Errorf("SweeperStoppedAlarm threshold %v, want 1 (one sweeper stop pages)", got)
	}
	if got := get(alarms["SweeperNotRunningAlarm"], "Properties", "TreatMissingData"); got != "breaching" {
		t.Errorf("SweeperNotRunningAlarm treats missing data as %v: a sweeper that never runs sends none", got)
	}
	filter := resources(tpl, "AWS::Logs::MetricFilter")["FailSafeMetricFilter"]
	if got := get(filter, "Properties", "FilterPattern"); got != `{ ($.msg = "fail-safe exit*") || ($.msg = "fail-safe: the task still runs*") }` ||
		!same(get(filter, "Properties", "LogGroupName"), ref("BastionLogGroup")) ||
		!same(get(list(get(filter, "Properties", "MetricTransformations"))[0], "MetricName"), sub("FailSafeExits-${AWS::StackName}")) {
		t.Errorf("fail-safe metric filter = %s", jsonOf(filter))
	}

	sub := list(get(resources(tpl, "AWS::CloudWatch::Dashboard")["Dashboard"], "Properties", "DashboardBody", "Fn::Sub"))
	if len(sub) != 2 {
		t.Fatalf("dashboard body %s", jsonOf(sub))
	}
	board, _ := sub[0].(string)
	for k, v := range sub[1].(object) { // the body's own variables, as this setting sets them
		if s, ok := get(v, "Fn::Sub").(string); ok { // a fragment with the stack's name in it
			v = s
		}
		if s, ok := v.(string); ok {
			board = strings.ReplaceAll(board, "${"+k+"}", s)
		}
	}
	var body struct {
		Widgets []struct {
			Properties struct {
				Title   string
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(board), &body); err != nil || len(body.Widgets) < 4 {
		t.Fatalf("dashboard body: %v\n%s", err, board)
	}
	shown := map[string]bool{}
	for _, w := range body.Widgets {
		for _, m := range w.Properties.Metrics {
			name := strings.TrimSuffix(fmt.Sprint(m[1]), "-${AWS::StackName}")
			shown[name] = true
			if m[0] == "bastion-ttl" && !emitted[name] {
				t.Errorf("dashboard %q shows %v, which no function reports", w.Properties.Title, m[1])
			}
		}
	}
	if !shown["SupervisorThrottled"] || shown["ApiThrottled"] == private {
		t.Errorf("the dashboard shows the supervisors' throttled count %v and the access log's %v (private %v)", shown["SupervisorThrottled"], shown["ApiThrottled"], private)
	}
}
