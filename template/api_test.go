// The stop API of template.yaml: both routes behind IAM auth, the private
// setting's endpoint policy and its redeployment.

package template_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/samtemplate"
)

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
	if len(paths) != 3 {
		t.Fatalf("paths %s, want /terminate, /extend and /usage", jsonOf(paths))
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
		!same(get(allow, "Resource"), []any{"execute-api:/*/POST/terminate", "execute-api:/*/POST/extend", "execute-api:/*/POST/usage"}) {
		t.Errorf("the policy allows %s, want this account's callers on the three routes", jsonOf(allow))
	}
	if get(deny, "Effect") != "Deny" || get(deny, "Principal") != "*" || get(deny, "Resource") != "execute-api:/*" ||
		!same(get(deny, "Condition", "StringNotEquals", "aws:SourceVpce"), []any{"vpce-0123456789abcdef0", "vpce-0fedcba9876543210"}) {
		t.Errorf("the policy denies %s, want every request not through VpcEndpointIds", jsonOf(deny))
	}
	task := resources(tpl, "AWS::IAM::ManagedPolicy")["BastionTaskPolicy"]
	want := []any{
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PrivateApi}/prod/POST/terminate"),
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PrivateApi}/prod/POST/extend"),
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${PrivateApi}/prod/POST/usage"),
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
	if want := []string{"* /* 20/10", "POST /~1extend 5/2", "POST /~1usage 5/2"}; !same(throttles, want) {
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
	b, err := os.ReadFile(stack.Path())
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
	raw, err := samtemplate.Transform(changed, map[string]string{"ApiEndpoint": "private", "VpcEndpointIds": "vpce-0123456789abcdef0"})
	if err != nil {
		t.Fatalf("SAM transform of the changed template: %v", err)
	}
	if _, kept := raw["Resources"].(object)[one]; kept || len(resources(raw, "AWS::ApiGateway::Deployment")) != 1 {
		t.Errorf("a changed body: deployments %v, want one other than %s", slices.Collect(maps.Keys(resources(raw, "AWS::ApiGateway::Deployment"))), one)
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
	if len(paths) != 3 || paths["/terminate"] == nil || paths["/extend"] == nil || paths["/usage"] == nil {
		t.Fatalf("want the paths /terminate, /extend and /usage alone, got %s", jsonOf(paths))
	}
	if got := get(api, "Properties", "Body", "components", "securitySchemes", "AWS_IAM", "x-amazon-apigateway-authtype"); got != "awsSigv4" {
		t.Errorf("AWS_IAM scheme authtype = %v, want awsSigv4", got)
	}
	// /extend is throttled below the default, which /terminate keeps.
	var stage object
	for _, st := range resources(tpl, "AWS::ApiGatewayV2::Stage") {
		stage = st
	}
	for _, route := range []string{"POST /extend", "POST /usage"} {
		if got := get(stage, "Properties", "RouteSettings", route); !same(got, object{"ThrottlingBurstLimit": 5.0, "ThrottlingRateLimit": 2.0}) {
			t.Errorf("%s route settings = %s, want a burst of 5 and 2 requests/s", route, jsonOf(got))
		}
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
