// The stack as a whole: the transform, lint, both API settings, the
// functions and their logs, the sweeper, the outputs; and what every file
// of the package shares: the stack, transformed once for each set of
// parameters, and the helpers that read it.
package template_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/launcher"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/samtemplate"
)

type object = cfn.Template

// root is the repository's root (a test runs in its package's directory):
// template.yaml, the Makefile and examples/ are there.
const root = ".."

// stack is template.yaml, transformed once for each set of parameters
// however many tests ask.
var stack = samtemplate.New(filepath.Join(root, "template.yaml"))

// The two API settings, as deployed.
var (
	publicAPI  = map[string]string{"ApiEndpoint": "public"}
	privateAPI = map[string]string{"ApiEndpoint": "private", "VpcEndpointIds": "vpce-0123456789abcdef0,vpce-0fedcba9876543210"}
)

// transformed is template.yaml after the SAM transform, resolved for the
// default, public API.
func transformed(t *testing.T) object {
	t.Helper()
	return transformedFor(t, publicAPI)
}

// transformedFor is template.yaml after the SAM transform, given params as
// CloudFormation gives them to it, then resolved for params.
func transformedFor(t *testing.T, params map[string]string) object {
	t.Helper()
	return stack.Resolved(t, params)
}

// rawTransformed is template.yaml after the SAM transform, as JSON, with
// every parameter at its default, conditions left to CloudFormation.
func rawTransformed(t *testing.T) object {
	t.Helper()
	return rawTransformedWith(t, nil)
}

// rawTransformedWith is template.yaml after the SAM transform given params,
// conditions left to CloudFormation. The transform sees the parameters'
// values, as SAM does in CloudFormation: it resolves them in an API's Auth,
// and hashes them into its deployment's ID.
func rawTransformedWith(t *testing.T, params map[string]string) object {
	t.Helper()
	return stack.Raw(t, params)
}

var (
	resources = cfn.Resources
	get       = cfn.Get
	list      = cfn.List
)

func ref(name string) any          { return object{"Ref": name} }
func getAtt(name, attr string) any { return object{"Fn::GetAtt": []any{name, attr}} }
func sub(s string) any             { return object{"Fn::Sub": s} }
func jsonOf(v any) string          { b, _ := json.Marshal(v); return string(b) }
func same(got, want any) bool      { return reflect.DeepEqual(got, want) }

func TestTemplateLintsClean(t *testing.T) {
	bin := testenv.Need(t, "cfn-lint", "pip install cfn-lint")
	for _, params := range []map[string]string{nil, publicAPI, privateAPI} {
		args := []string{}
		if params != nil {
			args = append(args, "--parameters", "ClusterName=bastions")
			for k, v := range params {
				args = append(args, k+"="+v)
			}
		}
		out, err := exec.Command(bin, append(args, "--", stack.Path())...).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("cfn-lint %v template.yaml: %v\n%s", args, err, out)
		}
	}
}

// Either API setting deploys a whole stack: nothing refers to what the
// setting leaves out, and exactly one API serves the two routes.
func TestTemplateBothEndpoints(t *testing.T) {
	for name, params := range map[string]map[string]string{"public": publicAPI, "private": privateAPI} {
		t.Run(name, func(t *testing.T) {
			tpl := transformedFor(t, params)
			if bad := cfn.DanglingRefs(tpl); len(bad) > 0 {
				t.Fatalf("references to what this setting does not create:\n%s", strings.Join(bad, "\n"))
			}
			http, rest := resources(tpl, "AWS::ApiGatewayV2::Api"), resources(tpl, "AWS::ApiGateway::RestApi")
			if (name == "public") != (len(http) == 1 && len(rest) == 0) || (name == "private") != (len(rest) == 1 && len(http) == 0) {
				t.Fatalf("%d HTTP APIs and %d REST APIs", len(http), len(rest))
			}
			perms := 0
			for id, p := range resources(tpl, "AWS::Lambda::Permission") {
				if same(get(p, "Properties", "FunctionName"), ref("TerminateFunction")) {
					perms++
					if src := jsonOf(get(p, "Properties", "SourceArn")); !strings.Contains(src, "/POST/terminate") && !strings.Contains(src, "/POST/extend") && !strings.Contains(src, "/POST/usage") {
						t.Errorf("%s lets %s invoke the function", id, src)
					}
				}
			}
			if perms != 3 {
				t.Errorf("%d permissions to invoke the terminate function, want one per route", perms)
			}
		})
	}
}
func TestTemplateFunctionsAndLogs(t *testing.T) {
	tpl := transformed(t)
	groups := resources(tpl, "AWS::Logs::LogGroup")
	for id, g := range groups {
		if got := get(g, "Properties", "RetentionInDays"); !same(got, ref("LogRetentionInDays")) {
			t.Errorf("log group %s retention = %s, want the LogRetentionInDays parameter", id, jsonOf(got))
		}
	}
	functions := resources(tpl, "AWS::Lambda::Function")
	for _, id := range []string{"TerminateFunction", "SweepFunction"} {
		if _, ok := functions[id]; !ok {
			t.Fatalf("no %s", id)
		}
	}
	for id, f := range functions {
		p := f["Properties"].(object)
		if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" || !same(p["Architectures"], []any{"arm64"}) {
			t.Errorf("%s: runtime %v, handler %v, architectures %v; want provided.al2023, bootstrap, [arm64]", id, p["Runtime"], p["Handler"], p["Architectures"])
		}
		if get(f, "Metadata", "BuildMethod") != "makefile" {
			t.Errorf("%s: not built by the Makefile", id)
		}
		logRef, _ := get(p, "LoggingConfig", "LogGroup", "Ref").(string)
		if groups[logRef] == nil {
			t.Errorf("%s: logs to %q, not to a log group of the stack with retention", id, logRef)
		}
		// Its role is the stack's own, with no managed policy granting logs:* on "*".
		roleID, _ := get(p, "Role", "Fn::GetAtt").([]any)
		if len(roleID) != 2 {
			t.Errorf("%s: role is not one of the stack's roles: %s", id, jsonOf(p["Role"]))
			continue
		}
		role := resources(tpl, "AWS::IAM::Role")[roleID[0].(string)]
		if mp := get(role, "Properties", "ManagedPolicyArns"); mp != nil {
			t.Errorf("%s: role %s has managed policies %s", id, roleID[0], jsonOf(mp))
		}
		if err := makeDryRun(root, "build-"+id); err != nil {
			t.Errorf("%s: no Makefile target build-%s for sam build: %v", id, id, err)
		}
	}
	if got := get(functions["TerminateFunction"], "Properties", "Environment", "Variables", "BASTION_ALLOWED_CLUSTERS"); !same(got, ref("ClusterName")) {
		t.Errorf("TerminateFunction BASTION_ALLOWED_CLUSTERS = %s, want the ClusterName parameter", jsonOf(got))
	}
}

// MaxTTL admits only positive durations: a 0 would make the sweeper stop
// every tagged bastion at once.
func TestTemplateMaxTTLPattern(t *testing.T) {
	tpl := transformed(t)
	good := []string{"12h", "90m", "1h30m", "0h30m", "0.5h", "45s", "10h0m0s"}
	bad := []string{"", "0s", "0h0m", "0.0h", "12", "-1h", "1d", "forever", "12h "}
	checkPattern(t, tpl, "MaxTTL", good, append(bad, "0"))
	// IdleTimeout: the same, or 0 for off.
	checkPattern(t, tpl, "IdleTimeout", append(good, "0"), bad)
	if got := get(tpl, "Parameters", "IdleTimeout", "Default"); got != "0" {
		t.Errorf("IdleTimeout default %v, want 0 (off), as the supervisor's", got)
	}
}
func checkPattern(t *testing.T, tpl object, param string, good, bad []string) {
	t.Helper()
	pattern, _ := get(tpl, "Parameters", param, "AllowedPattern").(string)
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("%s pattern %q: %v", param, pattern, err)
	}
	for _, ok := range good {
		if !re.MatchString(ok) {
			t.Errorf("%s refuses %q", param, ok)
		}
	}
	for _, b := range bad {
		if re.MatchString(b) {
			t.Errorf("%s accepts %q", param, b)
		}
	}
}
func TestTemplateBastionLogGroup(t *testing.T) {
	tpl := transformed(t)
	lg := resources(tpl, "AWS::Logs::LogGroup")["BastionLogGroup"]
	if !same(get(lg, "Properties", "RetentionInDays"), ref("LogRetentionInDays")) || !same(get(lg, "Properties", "LogGroupName"), sub("/ecs/${AWS::StackName}")) {
		t.Errorf("BastionLogGroup = %s, want /ecs/<stack> with the stack's retention", jsonOf(lg))
	}
}
func TestTemplateSweeper(t *testing.T) {
	tpl := transformed(t)
	fn := resources(tpl, "AWS::Lambda::Function")["SweepFunction"]
	if fn == nil {
		t.Fatal("no SweepFunction")
	}
	env := get(fn, "Properties", "Environment", "Variables")
	if got := get(env, "BASTION_ALLOWED_CLUSTERS"); !same(got, ref("ClusterName")) {
		t.Errorf("sweeper clusters = %s, want the ClusterName parameter", jsonOf(got))
	}
	if got := get(env, "BASTION_MAX_TTL"); !same(got, ref("MaxTTL")) {
		t.Errorf("sweeper max TTL = %s, want the MaxTTL parameter", jsonOf(got))
	}
	scheduled := false
	for _, rule := range resources(tpl, "AWS::Events::Rule") {
		for _, target := range list(get(rule, "Properties", "Targets")) {
			if same(get(target, "Arn"), getAtt("SweepFunction", "Arn")) && same(get(rule, "Properties", "ScheduleExpression"), ref("SweepSchedule")) {
				scheduled = true
			}
		}
	}
	if !scheduled {
		t.Error("no EventBridge rule runs SweepFunction on the SweepSchedule parameter")
	}
	if got := get(tpl, "Parameters", "SweepSchedule", "Default"); got != "rate(5 minutes)" {
		t.Errorf("SweepSchedule default %v, want rate(5 minutes)", got)
	}
	if got := get(tpl, "Parameters", "MaxTTL", "Default"); got != "12h" {
		t.Errorf("MaxTTL default %v, want 12h", got)
	}
	// The sweeper's role: list (scoped by condition), describe and stop in the cluster.
	granted := map[string]statement{}
	for _, s := range statements(tpl) {
		if s.where != "SweepFunctionRole" {
			continue
		}
		for _, a := range list(s.body["Action"]) {
			granted[a.(string)] = s
		}
	}
	for _, action := range []string{"ecs:ListTasks", "ecs:DescribeTasks", "ecs:StopTask"} {
		s, ok := granted[action]
		if !ok {
			t.Errorf("the sweeper may not %s", action)
			continue
		}
		if got := get(s.body, "Condition", "ArnEquals", "ecs:cluster"); !same(got, clusterARN) {
			t.Errorf("sweeper %s: ecs:cluster condition = %s, want the cluster", action, jsonOf(got))
		}
		if action != "ecs:ListTasks" && !same(list(s.body["Resource"]), []any{taskARNs}) {
			t.Errorf("sweeper %s: resource = %s, want the cluster's tasks", action, jsonOf(s.body["Resource"]))
		}
	}
	for action := range granted {
		if strings.HasPrefix(action, "ecs:") && !slices.Contains([]string{"ecs:ListTasks", "ecs:DescribeTasks", "ecs:StopTask"}, action) {
			t.Errorf("the sweeper is granted %s, which it does not need", action)
		}
	}
}
func TestTemplateOutputs(t *testing.T) {
	tpl := transformed(t)
	outputs := tpl["Outputs"].(object)
	want := map[string]any{
		"TerminateUrl":         sub("https://${TerminateApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/terminate"),
		"BastionTaskRoleArn":   getAtt("BastionTaskRole", "Arn"),
		"BastionTaskPolicyArn": ref("BastionTaskPolicy"),
		"BastionLogGroupName":  ref("BastionLogGroup"),
		"MaxTTL":               ref("MaxTTL"),
		"IdleTimeout":          ref("IdleTimeout"),
	}
	for name, value := range want {
		if got := get(outputs, name, "Value"); !same(got, value) {
			t.Errorf("output %s = %s, want %s", name, jsonOf(got), jsonOf(value))
		}
	}
}

// Rules may use only the rule functions: anything else fails every
// deployment, which neither cfn-lint nor the transform notices.
func TestTemplateRulesUseRuleFunctions(t *testing.T) {
	allowed := map[string]bool{"Ref": true, "Fn::And": true, "Fn::Contains": true, "Fn::EachMemberEquals": true, "Fn::EachMemberIn": true,
		"Fn::Equals": true, "Fn::Not": true, "Fn::Or": true, "Fn::RefAll": true, "Fn::ValueOf": true, "Fn::ValueOfAll": true}
	var visit func(v any, where string)
	visit = func(v any, where string) {
		switch v := v.(type) {
		case object:
			for k, e := range v {
				if (strings.HasPrefix(k, "Fn::") || k == "Ref" || k == "Condition") && !allowed[k] {
					t.Errorf("%s uses %s, which a rule may not", where, k)
				}
				visit(e, where)
			}
		case []any:
			for _, e := range v {
				visit(e, where)
			}
		}
	}
	rules, _ := rawTransformed(t)["Rules"].(object)
	if len(rules) == 0 {
		t.Fatal("no Rules: the private API's VpcEndpointIds is not enforced")
	}
	for name, r := range rules {
		for _, a := range list(get(r, "Assertions")) {
			visit(get(a, "Assert"), name)
		}
		visit(get(r, "RuleCondition"), name)
	}
}

// The outputs bastion-ttl run reads for its defaults are the stack's.
func TestTemplateOutputsForTheLauncher(t *testing.T) {
	outputs := rawTransformed(t)["Outputs"].(object)
	for _, name := range launcher.StackOutputs {
		if outputs[name] == nil {
			t.Errorf("the launcher reads the output %s, which the stack does not have", name)
		}
	}
	if !same(get(outputs, "ClusterName", "Value"), ref("ClusterName")) {
		t.Errorf("ClusterName output %s", jsonOf(get(outputs, "ClusterName")))
	}
}

// makeDryRun is make -n target in dir: whether the Makefile there has it.
func makeDryRun(dir, target string) error {
	cmd := exec.Command("make", "-n", target)
	cmd.Dir = dir
	return cmd.Run()
}
