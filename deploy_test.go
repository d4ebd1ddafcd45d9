// Tests of what `sam build` and `sam deploy` use: template.yaml, seen after
// the SAM transform (what CloudFormation really creates), and the Makefile's
// function builds. A security property of the stack fails a test here before
// it can reach an account.
package bastionttl_test

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/launcher"
	"github.com/bastion-ttl/bastion-ttl/internal/metrics"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

type object = map[string]any

// transforms caches the SAM transform's output, by the parameters given to it.
var transforms struct {
	mu   sync.Mutex
	done map[string]*transformOnce
}

type transformOnce struct {
	once sync.Once
	tpl  object
	err  string
}

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
	tpl, err := resolved(rawTransformedWith(t, params), params)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// rawTransformed is template.yaml after the SAM transform, as JSON, with
// every parameter at its default, conditions left to CloudFormation.
func rawTransformed(t *testing.T) object {
	t.Helper()
	return rawTransformedWith(t, nil)
}

// rawTransformedWith is template.yaml after the SAM transform given params
// (made once for each set), conditions left to CloudFormation. The
// transform sees the parameters' values, as SAM does in CloudFormation: it
// resolves them in an API's Auth, and hashes them into its deployment's ID.
func rawTransformedWith(t *testing.T, params map[string]string) object {
	t.Helper()
	testenv.Need(t, "cfn-lint", "pip install cfn-lint (it carries the SAM translator)")
	args := []string{"testdata/sam-transform.py", "template.yaml"}
	for k, v := range params {
		args = append(args, k+"="+v)
	}
	slices.Sort(args[2:])
	key := strings.Join(args[2:], " ")
	transforms.mu.Lock()
	if transforms.done == nil {
		transforms.done = map[string]*transformOnce{}
	}
	tr := transforms.done[key]
	if tr == nil {
		tr = &transformOnce{}
		transforms.done[key] = tr
	}
	transforms.mu.Unlock()
	tr.once.Do(func() {
		out, err := exec.Command("python3", args...).Output()
		if ee, ok := err.(*exec.ExitError); ok {
			tr.err = fmt.Sprintf("SAM transform %s: %v\n%s", key, err, ee.Stderr)
		} else if err != nil {
			tr.err = fmt.Sprintf("SAM transform %s: %v", key, err)
		} else if err := json.Unmarshal(out, &tr.tpl); err != nil {
			tr.err = fmt.Sprintf("SAM transform %s output: %v", key, err)
		}
	})
	if tr.err != "" {
		t.Fatal(tr.err)
	}
	return tr.tpl
}

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
		out, err := exec.Command(bin, append(args, "--", "template.yaml")...).CombinedOutput()
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
			if bad := danglingRefs(tpl); len(bad) > 0 {
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
					if src := jsonOf(get(p, "Properties", "SourceArn")); !strings.Contains(src, "/POST/terminate") && !strings.Contains(src, "/POST/extend") {
						t.Errorf("%s lets %s invoke the function", id, src)
					}
				}
			}
			if perms != 2 {
				t.Errorf("%d permissions to invoke the terminate function, want one per route", perms)
			}
		})
	}
}

// The private API: a REST API with a PRIVATE endpoint on the given VPC
// endpoints, IAM auth on both routes (payload 1.0 to the same function), a
// resource policy that admits this account's callers through those
// endpoints only, and the task policy on its routes.
func TestTemplatePrivateAPI(t *testing.T) {
	tpl := transformedFor(t, privateAPI)
	api := resources(tpl, "AWS::ApiGateway::RestApi")["PrivateApi"]
	p := get(api, "Properties")
	if got := get(p, "EndpointConfiguration"); !same(get(got, "Types"), []any{"PRIVATE"}) || !same(get(got, "VpcEndpointIds"), ref("VpcEndpointIds")) {
		t.Errorf("endpoint configuration %s, want PRIVATE on VpcEndpointIds", jsonOf(got))
	}
	body := get(p, "Body")
	paths, _ := get(body, "paths").(object)
	if len(paths) != 2 {
		t.Fatalf("paths %s, want /terminate and /extend", jsonOf(paths))
	}
	for path, methods := range paths {
		post := get(methods, "post")
		if len(methods.(object)) != 1 || !same(get(post, "security"), []any{object{"AWS_IAM": []any{}}}) {
			t.Errorf("%s: %s, want POST alone with AWS_IAM", path, jsonOf(methods))
		}
		in := get(post, "x-amazon-apigateway-integration")
		if get(in, "type") != "aws_proxy" || !strings.Contains(jsonOf(get(in, "uri")), "${TerminateFunction.Arn}") {
			t.Errorf("%s integration %s", path, jsonOf(in))
		}
	}
	if got := get(body, "components", "securitySchemes", "AWS_IAM", "x-amazon-apigateway-authtype"); got != "awsSigv4" {
		t.Errorf("AWS_IAM scheme authtype %v", got)
	}
	policy := list(get(body, "x-amazon-apigateway-policy", "Statement"))
	if len(policy) != 2 {
		t.Fatalf("resource policy %s", jsonOf(policy))
	}
	allow, deny := policy[0], policy[1]
	// SAM resolves the parameters and pseudo parameters it knows in Auth
	// (the partition from the region), and leaves the others to CloudFormation.
	if get(allow, "Effect") != "Allow" || !same(get(allow, "Principal", "AWS"), sub("arn:aws:iam::${AWS::AccountId}:root")) ||
		!same(get(allow, "Resource"), []any{"execute-api:/*/POST/terminate", "execute-api:/*/POST/extend"}) {
		t.Errorf("the policy allows %s, want this account's callers on the two routes", jsonOf(allow))
	}
	if get(deny, "Effect") != "Deny" || get(deny, "Principal") != "*" || get(deny, "Resource") != "execute-api:/*" ||
		!same(get(deny, "Condition", "StringNotEquals", "aws:SourceVpce"), []any{"vpce-0123456789abcdef0", "vpce-0fedcba9876543210"}) {
		t.Errorf("the policy denies %s, want every request not through VpcEndpointIds", jsonOf(deny))
	}
	task := resources(tpl, "AWS::IAM::ManagedPolicy")["BastionTaskPolicy"]
	want := []any{
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PrivateApi}/prod/POST/terminate"),
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PrivateApi}/prod/POST/extend"),
	}
	if got := get(list(get(task, "Properties", "PolicyDocument", "Statement"))[0], "Resource"); !same(got, want) {
		t.Errorf("the task policy invokes %s, want %s", jsonOf(got), jsonOf(want))
	}
	if got := get(tpl, "Outputs", "TerminateUrl", "Value"); !same(got, sub("https://${PrivateApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod/terminate")) {
		t.Errorf("TerminateUrl %s", jsonOf(got))
	}
	var throttles []string
	for _, st := range resources(tpl, "AWS::ApiGateway::Stage") {
		for _, m := range list(get(st, "Properties", "MethodSettings")) {
			throttles = append(throttles, fmt.Sprintf("%v %v %v/%v", get(m, "HttpMethod"), get(m, "ResourcePath"), get(m, "ThrottlingBurstLimit"), get(m, "ThrottlingRateLimit")))
		}
	}
	slices.Sort(throttles)
	if want := []string{"* /* 20/10", "POST /~1extend 5/2"}; !same(throttles, want) {
		t.Errorf("stage throttles %v, want %v", throttles, want)
	}
}

// A stack update that changes VpcEndpointIds (or anything else in the
// private API's body or policy) reaches the stage: CloudFormation makes a
// deployment only for a new logical ID, and SAM names it after a hash of the
// body with the parameters it resolved. A fixed ID left bastions behind a
// new endpoint with 403 until someone deployed the stage by hand.
func TestTemplatePrivateAPIRedeploysOnChange(t *testing.T) {
	deployment := func(endpoints string) (id string, policy string) {
		tpl := transformedFor(t, map[string]string{"ApiEndpoint": "private", "VpcEndpointIds": endpoints})
		deployments := resources(tpl, "AWS::ApiGateway::Deployment")
		if len(deployments) != 1 {
			t.Fatalf("VpcEndpointIds=%s: %d deployments, want 1", endpoints, len(deployments))
		}
		for k := range deployments {
			id = k
		}
		// The stage keeps the logical ID it had before the API was SAM's:
		// a stack made then updates it in place (a second stage named prod
		// would fail).
		stages := resources(tpl, "AWS::ApiGateway::Stage")
		st := stages["PrivateApiStage"]
		if len(stages) != 1 || st == nil {
			t.Fatalf("VpcEndpointIds=%s: stages %v, want PrivateApiStage alone", endpoints, slices.Collect(maps.Keys(stages)))
		}
		if !same(get(st, "Properties", "StageName"), object{"Fn::Join": []any{"", []any{"prod"}}}) || !same(get(st, "Properties", "DeploymentId"), ref(id)) {
			t.Errorf("VpcEndpointIds=%s: stage %s is not prod on the deployment %s", endpoints, jsonOf(st), id)
		}
		if get(deployments[id], "Properties", "StageName") != nil {
			t.Errorf("the deployment makes a stage of its own: %s", jsonOf(deployments[id]))
		}
		api := resources(tpl, "AWS::ApiGateway::RestApi")["PrivateApi"]
		return id, jsonOf(get(api, "Properties", "Body", "x-amazon-apigateway-policy"))
	}
	one, onePolicy := deployment("vpce-0123456789abcdef0")
	two, twoPolicy := deployment("vpce-0123456789abcdef0,vpce-0fedcba9876543210")
	if one == two {
		t.Errorf("one endpoint and two give the same deployment %s: the update would not reach the stage", one)
	}
	if !strings.Contains(onePolicy, `"aws:SourceVpce":["vpce-0123456789abcdef0"]`) || !strings.Contains(twoPolicy, `"aws:SourceVpce":["vpce-0123456789abcdef0","vpce-0fedcba9876543210"]`) {
		t.Errorf("the resource policies do not name the given endpoints:\n%s\n%s", onePolicy, twoPolicy)
	}

	// A change in the body itself, the endpoints the same: a new deployment too.
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := regexp.MustCompile(`(title: !Sub \$\{AWS::StackName\}-private\n\s+version: )"1.0"`)
	if !body.Match(b) {
		t.Fatal("the private API's body has no info.version to change: the test reads the wrong shape")
	}
	changed := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(changed, body.ReplaceAll(b, []byte(`${1}"1.1"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("python3", "testdata/sam-transform.py", changed, "ApiEndpoint=private", "VpcEndpointIds=vpce-0123456789abcdef0").Output()
	if err != nil {
		t.Fatalf("SAM transform of the changed template: %v", err)
	}
	var raw object
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	if _, kept := raw["Resources"].(object)[one]; kept || len(resources(raw, "AWS::ApiGateway::Deployment")) != 1 {
		t.Errorf("a changed body: deployments %v, want one other than %s", slices.Collect(maps.Keys(resources(raw, "AWS::ApiGateway::Deployment"))), one)
	}
}

// resources returns the template's resources of type typ, by logical ID.
func resources(tpl object, typ string) map[string]object {
	found := map[string]object{}
	for id, r := range tpl["Resources"].(object) {
		if r := r.(object); r["Type"] == typ {
			found[id] = r
		}
	}
	return found
}

func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(object)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func ref(name string) any           { return object{"Ref": name} }
func getAtt(name, attr string) any  { return object{"Fn::GetAtt": []any{name, attr}} }
func sub(s string) any              { return object{"Fn::Sub": s} }
func jsonOf(v any) string           { b, _ := json.Marshal(v); return string(b) }
func same(got, want any) bool       { return reflect.DeepEqual(got, want) }
func isWildcard(resource any) bool  { return resource == "*" }
func isECSWrite(action string) bool { return !hasAnyPrefix(action, "ecs:Describe", "ecs:List") }

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// statement is one IAM policy statement and where it was found.
type statement struct {
	where string
	body  object
}

// statements are all the IAM statements the stack grants (trust policies
// excepted), from roles' inline policies and managed policies.
func statements(tpl object) []statement {
	var all []statement
	for id, r := range resources(tpl, "AWS::IAM::Role") {
		for _, p := range list(get(r, "Properties", "Policies")) {
			for _, s := range list(get(p, "PolicyDocument", "Statement")) {
				all = append(all, statement{id, s.(object)})
			}
		}
	}
	for _, typ := range []string{"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"} {
		for id, r := range resources(tpl, typ) {
			for _, s := range list(get(r, "Properties", "PolicyDocument", "Statement")) {
				all = append(all, statement{id, s.(object)})
			}
		}
	}
	return all
}

var (
	clusterARN = sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:cluster/${ClusterName}")
	taskARNs   = sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${ClusterName}/*")
	routeARNs  = []any{
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${TerminateApi}/$default/POST/terminate"),
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${TerminateApi}/$default/POST/extend"),
	}
)

func TestTemplateGrantsNoWildcards(t *testing.T) {
	tpl := transformed(t)
	all := statements(tpl)
	if len(all) == 0 {
		t.Fatal("no IAM statements found: the test reads the wrong shape")
	}
	for _, s := range all {
		if s.body["Effect"] != "Allow" {
			continue
		}
		if s.body["NotAction"] != nil || s.body["NotResource"] != nil {
			t.Errorf("%s: NotAction/NotResource grants too much: %s", s.where, jsonOf(s.body))
		}
		for _, a := range list(s.body["Action"]) {
			action, _ := a.(string)
			if strings.Contains(action, "*") {
				t.Errorf("%s: wildcard action %q", s.where, action)
			}
			for _, r := range list(s.body["Resource"]) {
				if !isWildcard(r) {
					continue
				}
				// Only reads that IAM cannot scope by resource may use "*",
				// and then only with the ecs:cluster condition.
				if !strings.HasPrefix(action, "ecs:") || isECSWrite(action) || get(s.body, "Condition", "ArnEquals", "ecs:cluster") == nil {
					t.Errorf(`%s: %s on resource "*": %s`, s.where, action, jsonOf(s.body))
				}
			}
		}
	}
}

func TestTemplateStopTaskIsScopedToTheCluster(t *testing.T) {
	tpl := transformed(t)
	var stops []statement
	for _, s := range statements(tpl) {
		if slices.Contains(list(s.body["Action"]), any("ecs:StopTask")) {
			stops = append(stops, s)
		}
	}
	if len(stops) == 0 {
		t.Fatal("no statement grants ecs:StopTask")
	}
	for _, s := range stops {
		if s.where == "BastionTaskRole" || s.where == "BastionTaskPolicy" {
			t.Errorf("%s grants ecs:StopTask: a bastion may only call the API", s.where)
		}
		if got := list(s.body["Resource"]); !same(got, []any{taskARNs}) {
			t.Errorf("%s: StopTask resource = %s, want only %s", s.where, jsonOf(got), jsonOf(taskARNs))
		}
		if got := get(s.body, "Condition", "ArnEquals", "ecs:cluster"); !same(got, clusterARN) {
			t.Errorf("%s: StopTask ecs:cluster condition = %s, want %s", s.where, jsonOf(got), jsonOf(clusterARN))
		}
	}
}

func TestTemplateAPIRequiresIAMOnBothRoutes(t *testing.T) {
	tpl := transformed(t)
	apis := resources(tpl, "AWS::ApiGatewayV2::Api")
	api, ok := apis["TerminateApi"]
	if !ok || len(apis) != 1 {
		t.Fatalf("want one HTTP API, TerminateApi; got %d", len(apis))
	}
	paths, _ := get(api, "Properties", "Body", "paths").(object)
	if len(paths) != 2 || paths["/terminate"] == nil || paths["/extend"] == nil {
		t.Fatalf("want the paths /terminate and /extend alone, got %s", jsonOf(paths))
	}
	if got := get(api, "Properties", "Body", "components", "securitySchemes", "AWS_IAM", "x-amazon-apigateway-authtype"); got != "awsSigv4" {
		t.Errorf("AWS_IAM scheme authtype = %v, want awsSigv4", got)
	}
	// /extend is throttled below the default, which /terminate keeps.
	var stage object
	for _, st := range resources(tpl, "AWS::ApiGatewayV2::Stage") {
		stage = st
	}
	if got := get(stage, "Properties", "RouteSettings", "POST /extend"); !same(got, object{"ThrottlingBurstLimit": 5.0, "ThrottlingRateLimit": 2.0}) {
		t.Errorf("POST /extend route settings = %s, want a burst of 5 and 2 requests/s", jsonOf(got))
	}
	if got := get(stage, "Properties", "DefaultRouteSettings"); !same(got, object{"ThrottlingBurstLimit": 20.0, "ThrottlingRateLimit": 10.0}) {
		t.Errorf("default route settings = %s", jsonOf(got))
	}
	for path, methods := range paths {
		methods := methods.(object)
		if len(methods) != 1 || methods["post"] == nil {
			t.Fatalf("want POST %s alone, got methods %s", path, jsonOf(methods))
		}
		post := methods["post"]
		if got := get(post, "security"); !same(got, []any{object{"AWS_IAM": []any{}}}) {
			t.Errorf("POST %s security = %s, want AWS_IAM", path, jsonOf(got))
		}
		integration := get(post, "x-amazon-apigateway-integration")
		if got := get(integration, "payloadFormatVersion"); got != "2.0" {
			t.Errorf("POST %s payload format %v, want 2.0", path, got)
		}
		if uri := jsonOf(get(integration, "uri")); !strings.Contains(uri, "${TerminateFunction.Arn}") {
			t.Errorf("POST %s integration uri %s does not call TerminateFunction", path, uri)
		}
	}
}

// POST /extend may read a task's tags and write the bastion-ttl tag alone,
// in the cluster's tasks only, up to the MaxTTL parameter.
func TestTemplateExtendWritesOnlyTheTTLTag(t *testing.T) {
	tpl := transformed(t)
	fn := resources(tpl, "AWS::Lambda::Function")["TerminateFunction"]
	if got := get(fn, "Properties", "Environment", "Variables", "BASTION_MAX_TTL"); !same(got, ref("MaxTTL")) {
		t.Errorf("TerminateFunction BASTION_MAX_TTL = %s, want the MaxTTL parameter", jsonOf(got))
	}
	granted := map[string]statement{}
	for _, s := range statements(tpl) {
		for _, a := range list(s.body["Action"]) {
			if a == "ecs:TagResource" || a == "ecs:ListTagsForResource" || a == "ecs:UntagResource" {
				if s.where != "TerminateFunctionRole" {
					t.Errorf("%s is granted %s", s.where, a)
				}
				granted[a.(string)] = s
			}
		}
	}
	if _, ok := granted["ecs:UntagResource"]; ok {
		t.Error("ecs:UntagResource is granted: no route removes a tag")
	}
	for _, action := range []string{"ecs:ListTagsForResource", "ecs:TagResource"} {
		s, ok := granted[action]
		if !ok {
			t.Fatalf("TerminateFunctionRole may not %s", action)
		}
		if len(list(s.body["Action"])) != 1 || !same(list(s.body["Resource"]), []any{taskARNs}) {
			t.Errorf("%s: %s, want it alone on the cluster's tasks", action, jsonOf(s.body))
		}
	}
	cond := get(granted["ecs:TagResource"].body, "Condition")
	if got := get(cond, "ForAllValues:StringEquals", "aws:TagKeys"); !same(list(got), []any{"bastion-ttl"}) {
		t.Errorf("TagResource aws:TagKeys = %s, want only bastion-ttl", jsonOf(got))
	}
	if got := get(cond, "Null", "aws:TagKeys"); got != "false" {
		t.Errorf("TagResource Null aws:TagKeys = %v, want false (tag keys required)", got)
	}
}

func TestTemplateBastionTaskRoleMayOnlyInvokeTheRoute(t *testing.T) {
	tpl := rawTransformed(t) // the conditions are what is checked
	role := resources(tpl, "AWS::IAM::Role")["BastionTaskRole"]
	if role == nil {
		t.Fatal("no BastionTaskRole")
	}
	trust := list(get(role, "Properties", "AssumeRolePolicyDocument", "Statement"))
	if len(trust) != 1 {
		t.Fatalf("want one trust statement, got %s", jsonOf(trust))
	}
	if got := get(trust[0], "Principal", "Service"); got != "ecs-tasks.amazonaws.com" {
		t.Errorf("trusted principal %v, want ecs-tasks.amazonaws.com", got)
	}
	if got := get(trust[0], "Condition", "StringEquals", "aws:SourceAccount"); !same(got, ref("AWS::AccountId")) {
		t.Errorf("trust aws:SourceAccount condition = %s, want the stack's account", jsonOf(got))
	}
	if p := get(role, "Properties", "Policies"); p != nil {
		t.Errorf("the task role has inline policies: %s", jsonOf(p))
	}
	if got := get(role, "Properties", "ManagedPolicyArns"); got != nil {
		t.Errorf("task role managed policies = %s; BastionTaskPolicy attaches itself by Roles", jsonOf(got))
	}
	policy := resources(tpl, "AWS::IAM::ManagedPolicy")["BastionTaskPolicy"]
	// Attached to the role, with or without the extra roles, by the policy's
	// Roles (the role itself may not name the policy: that is a cycle).
	roles := list(get(policy, "Properties", "Roles", "Fn::If"))
	if len(roles) != 3 || roles[0] != "HasExtraTaskRoles" || !same(roles[2], []any{ref("BastionTaskRole")}) ||
		!strings.Contains(jsonOf(roles[1]), jsonOf(ref("BastionTaskRole"))) || !strings.Contains(jsonOf(roles[1]), jsonOf(ref("ExtraTaskRoleNames"))) {
		t.Errorf("BastionTaskPolicy Roles = %s, want BastionTaskRole, plus ExtraTaskRoleNames when given", jsonOf(get(policy, "Properties", "Roles")))
	}
	// The public setting's routes (TestTemplatePrivateAPI checks the private's).
	policy = resources(transformed(t), "AWS::IAM::ManagedPolicy")["BastionTaskPolicy"]
	stmts := list(get(policy, "Properties", "PolicyDocument", "Statement"))
	want := []any{object{"Sid": "InvokeTerminateAndExtend", "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": routeARNs}}
	if !same(stmts, want) {
		t.Errorf("BastionTaskPolicy = %s\nwant the single permission %s", jsonOf(stmts), jsonOf(want))
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
		if err := exec.Command("make", "-n", "build-"+id).Run(); err != nil {
			t.Errorf("%s: no Makefile target build-%s for sam build: %v", id, id, err)
		}
	}
	if got := get(functions["TerminateFunction"], "Properties", "Environment", "Variables", "BASTION_ALLOWED_CLUSTERS"); !same(got, ref("ClusterName")) {
		t.Errorf("TerminateFunction BASTION_ALLOWED_CLUSTERS = %s, want the ClusterName parameter", jsonOf(got))
	}
}

// The function pins the caller's role to the stack's task role, by its unique
// ID, plus the extra role names; without the pin any role could pose as a task.
func TestTemplateTerminatePinsTheTaskRole(t *testing.T) {
	tpl := rawTransformed(t) // the conditions are what is checked
	fn := resources(tpl, "AWS::Lambda::Function")["TerminateFunction"]
	pin := list(get(fn, "Properties", "Environment", "Variables", "BASTION_TASK_ROLES", "Fn::If"))
	roleID := getAtt("BastionTaskRole", "RoleId")
	if len(pin) != 3 || pin[0] != "HasExtraTaskRoles" || !same(pin[2], roleID) ||
		!strings.Contains(jsonOf(pin[1]), jsonOf(roleID)) || !strings.Contains(jsonOf(pin[1]), jsonOf(getAtt("ExtraTaskRoleIds", "RoleIds"))) {
		t.Errorf("BASTION_TASK_ROLES = %s, want the task role's RoleId, plus the extra roles' IDs when given", jsonOf(pin))
	}
	if got := get(tpl, "Parameters", "ExtraTaskRoleNames", "Default"); got != "" {
		t.Errorf("ExtraTaskRoleNames default %v, want empty", got)
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

// The examples point at what the stack creates: the role output and the
// URL output's route (their supervisor settings are tested in supervisor/).
func TestExamplesUseTheStackOutputs(t *testing.T) {
	for _, name := range []string{"sidecar-task-definition.json", "healthcheck-task-definition.json"} {
		b, err := os.ReadFile(filepath.Join("examples", name))
		if err != nil {
			t.Fatal(err)
		}
		var td struct {
			TaskRoleArn          string
			ContainerDefinitions []struct {
				Environment []struct{ Name, Value string }
			}
		}
		if err := json.Unmarshal(b, &td); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(td.TaskRoleArn, ":role/") || !strings.Contains(td.TaskRoleArn, "BastionTaskRole") {
			t.Errorf("%s: taskRoleArn %q is not the stack's BastionTaskRoleArn", name, td.TaskRoleArn)
		}
		urls := 0
		for _, c := range td.ContainerDefinitions {
			for _, e := range c.Environment {
				if e.Name == "BASTION_TERMINATE_URL" {
					urls++
					if !strings.HasPrefix(e.Value, "https://") || !strings.HasSuffix(e.Value, ".amazonaws.com/terminate") {
						t.Errorf("%s: BASTION_TERMINATE_URL %q has not the TerminateUrl output's form", name, e.Value)
					}
				}
			}
		}
		if urls != 1 {
			t.Errorf("%s: %d containers set BASTION_TERMINATE_URL, want 1", name, urls)
		}
	}
}

func TestMakeBuildsTheBootstraps(t *testing.T) {
	for _, fn := range []string{"TerminateFunction", "SweepFunction"} {
		t.Run(fn, func(t *testing.T) { checkBootstrap(t, fn) })
	}
}

func checkBootstrap(t *testing.T, function string) {
	testenv.Need(t, "make", "apt-get install make")
	dir := t.TempDir()
	cmd := exec.Command("make", "build-"+function, "ARTIFACTS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-%s: %v\n%s", function, err, out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "bootstrap" {
		t.Fatalf("ARTIFACTS_DIR holds %v, want bootstrap alone", entries)
	}
	f, err := elf.Open(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("bootstrap is %v %v, want arm64", f.Class, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("bootstrap is dynamically linked (%v)", p.Type)
		}
	}
	if s := f.Section(".symtab"); s != nil {
		t.Error("bootstrap is not stripped (has .symtab)")
	}
	info, _ := os.Stat(filepath.Join(dir, "bootstrap"))
	if info.Mode()&0o111 == 0 {
		t.Error("bootstrap is not executable")
	}
}

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

// The release's version is said alike everywhere a user reads it: the
// changelog's latest release, the Serverless Application Repository
// listing, and the image the examples run.
func TestReleaseMetadataAgrees(t *testing.T) {
	app := get(rawTransformed(t), "Metadata", "AWS::ServerlessRepo::Application")
	version, _ := get(app, "SemanticVersion").(string)
	if get(app, "SpdxLicenseId") != "Apache-2.0" || version == "" {
		t.Fatalf("SAR metadata %s", jsonOf(app))
	}
	for _, key := range []string{"LicenseUrl", "ReadmeUrl"} {
		if _, err := os.Stat(fmt.Sprint(get(app, key))); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	changelog, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	latest := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\]`).FindSubmatch(changelog)
	if latest == nil || string(latest[1]) != version {
		t.Errorf("CHANGELOG.md's latest release %q, SAR SemanticVersion %q", latest, version)
	}
	for _, f := range []string{"examples/sidecar-task-definition.json", "examples/healthcheck.Dockerfile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ghcr.io/bastion-ttl/supervisor:v"+version) {
			t.Errorf("%s does not run the released image ghcr.io/bastion-ttl/supervisor:v%s", f, version)
		}
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
