// What AWS would decide about every IAM document of the stack: its roles,
// managed policies and resource policies, resolved for each setting that
// changes them, put to a corpus of requests (every AWS call the code makes,
// with the context AWS supplies, and what must be refused) and decided by an
// independent IAM policy simulator (package internal/testenv/iamsim). The
// people's policies and examples/launcher-policy.json are in
// iam_people_test.go.
package template_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/iamsim"
)

const (
	simAccount   = "111122223333"
	otherAccount = "444455556666"
	simRegion    = "eu-west-1"
	simStack     = "bastion-ttl"
	simCluster   = "bastions"
	simTopic     = "arn:aws:sns:eu-west-1:111122223333:bastion-alarms"
	simStackID   = "arn:aws:cloudformation:eu-west-1:111122223333:stack/bastion-ttl/6a8e1c90-0f1e-11f0-9b6c-0a1b2c3d4e5f"
)

// The physical names CloudFormation would give the resources the IAM
// documents name.
var physical = map[string]string{
	"TerminateApi":                      "a1b2c3d4e5",
	"PrivateApi":                        "p6q7r8s9t0",
	"BastionTaskRole":                   "bastion-ttl-BastionTaskRole-1A2B3C",
	"BastionTaskRole.Arn":               "arn:aws:iam::111122223333:role/bastion-ttl-BastionTaskRole-1A2B3C",
	"TerminateFunctionRole":             "bastion-ttl-TerminateFunctionRole-4D5E6F",
	"SweepFunctionRole":                 "bastion-ttl-SweepFunctionRole-7G8H9I",
	"TerminateFunction":                 "bastion-ttl-TerminateFunction-J1K2L3",
	"TerminateFunction.Arn":             "arn:aws:lambda:eu-west-1:111122223333:function:bastion-ttl-TerminateFunction-J1K2L3",
	"SweepFunction":                     "bastion-ttl-SweepFunction-M4N5O6",
	"SweepFunction.Arn":                 "arn:aws:lambda:eu-west-1:111122223333:function:bastion-ttl-SweepFunction-M4N5O6",
	"SweepFunctionSweep.Arn":            "arn:aws:events:eu-west-1:111122223333:rule/bastion-ttl-SweepFunctionSweep-P7Q8R9",
	"TerminateLogGroup.Arn":             "arn:aws:logs:eu-west-1:111122223333:log-group:/bastion-ttl/bastion-ttl/terminate:*",
	"SweepLogGroup.Arn":                 "arn:aws:logs:eu-west-1:111122223333:log-group:/bastion-ttl/bastion-ttl/sweep:*",
	"TaskRolesFunctionRole":             "bastion-ttl-TaskRolesFunctionRole-S1T2U3",
	"TaskRolesFunction":                 "bastion-ttl-TaskRolesFunction-V4W5X6",
	"TaskRolesFunction.Arn":             "arn:aws:lambda:eu-west-1:111122223333:function:bastion-ttl-TaskRolesFunction-V4W5X6",
	"TaskRolesLogGroup.Arn":             "arn:aws:logs:eu-west-1:111122223333:log-group:/bastion-ttl/bastion-ttl/task-roles:*",
	"BastionLogGroup.Arn":               "arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/bastion-ttl:*",
	"BastionExecutionRole":              "bastion-ttl-BastionExecutionRole-7X8Y9Z",
	"BastionExecutionRole.Arn":          "arn:aws:iam::111122223333:role/bastion-ttl-BastionExecutionRole-7X8Y9Z",
	"LauncherPolicy":                    "arn:aws:iam::111122223333:policy/bastion-ttl-launcher",
	"OperatorPolicy":                    "arn:aws:iam::111122223333:policy/bastion-ttl-operator",
	"LedgerTable":                       "bastion-ttl-LedgerTable-1LEDGER1",
	"LedgerTable.Arn":                   ledgerTable,
	"LedgerFunctionRole":                "bastion-ttl-LedgerFunctionRole-A1B2C3",
	"LedgerFunction":                    "bastion-ttl-LedgerFunction-D4E5F6",
	"LedgerFunction.Arn":                "arn:aws:lambda:eu-west-1:111122223333:function:bastion-ttl-LedgerFunction-D4E5F6",
	"LedgerFunctionTaskStateChange.Arn": "arn:aws:events:eu-west-1:111122223333:rule/bastion-ttl-LedgerFunctionTaskStateChange-G7H8I9",
	"LedgerLogGroup.Arn":                "arn:aws:logs:eu-west-1:111122223333:log-group:/bastion-ttl/bastion-ttl/ledger:*",
	// What the custom resource answers for ExtraTaskRoleNames (roles_test.go).
	"ExtraTaskRoleIds.RoleIds": "AROAEXAMPLEEXTRAROLE01",
}

// The template's IAM documents under each setting that changes them: the
// public and the private API, with and without AlarmTopicArn.
func TestTemplateIAMDecisions(t *testing.T) {
	settings := map[string]map[string]string{
		"public":                       {"ApiEndpoint": "public"},
		"public+alarm-topic":           {"ApiEndpoint": "public", "AlarmTopicArn": simTopic},
		"private":                      privateAPI,
		"private+extra-role":           {"ApiEndpoint": "private", "VpcEndpointIds": privateAPI["VpcEndpointIds"], "ExtraTaskRoleNames": "my-bastion-role"},
		"public+extra-roles":           {"ApiEndpoint": "public", "ExtraTaskRoleNames": "ops-bastion,db-bastion"},
		"public, no ECS Exec":          {"ApiEndpoint": "public", "ExecuteCommand": "false"},
		"public+families+repositories": {"ApiEndpoint": "public", "BastionFamilies": "bastion-ssh,db-tunnel", "BastionImageRepositoryArns": simRepositories},
	}
	total := 0
	for name, params := range settings {
		t.Run(name, func(t *testing.T) {
			p := map[string]string{"ClusterName": simCluster}
			for k, v := range params {
				p[k] = v
			}
			docs := templatePolicies(t, p)
			reqs := templateCorpus(docs, p)
			total += len(reqs)
			iamsim.Check(t, docs.policies, reqs)
		})
	}
	t.Logf("template corpus: %d requests in all", total)
}

// templateDocs are a deployed stack's IAM documents by name, and which of
// them each role holds.
type templateDocs struct {
	policies map[string]any
	identity map[string][]string // role logical ID -> its identity policies
}

// templatePolicies resolves the transformed template with params into the
// documents IAM would store.
func templatePolicies(t *testing.T, params map[string]string) templateDocs {
	t.Helper()
	raw := rawTransformedWith(t, params) // SAM resolves some parameters itself (the private API's Auth)
	tpl, err := cfn.Resolve(raw, params)
	if err != nil {
		t.Fatal(err)
	}
	names := deployment(raw, params)
	docs := templateDocs{policies: map[string]any{}, identity: map[string][]string{}}
	add := func(name string, doc any) {
		v, err := cfn.Evaluate(doc, names)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs.policies[name] = v
	}
	for id, r := range resources(tpl, "AWS::IAM::Role") {
		add(id+" trust", get(r, "Properties", "AssumeRolePolicyDocument"))
		for _, p := range list(get(r, "Properties", "Policies")) {
			name := id + "/" + fmt.Sprint(get(p, "PolicyName"))
			add(name, get(p, "PolicyDocument"))
			docs.identity[id] = append(docs.identity[id], name)
		}
	}
	for id, r := range resources(tpl, "AWS::IAM::ManagedPolicy") {
		add(id, get(r, "Properties", "PolicyDocument"))
		roles, err := cfn.Evaluate(get(r, "Properties", "Roles"), names)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range list(roles) {
			holder := "role " + fmt.Sprint(role) // a role of one's own, in ExtraTaskRoleNames
			for logical, name := range physical {
				if name == role {
					holder = logical
				}
			}
			docs.identity[holder] = append(docs.identity[holder], id)
		}
	}
	// A policy resource of its own is one more identity policy of its roles.
	for id, r := range resources(tpl, "AWS::IAM::Policy") {
		add(id, get(r, "Properties", "PolicyDocument"))
		roles, err := cfn.Evaluate(get(r, "Properties", "Roles"), names)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range list(roles) {
			holder := ""
			for logical, name := range physical {
				if name == role {
					holder = logical
				}
			}
			if holder == "" {
				t.Fatalf("%s is attached to %v, a role this test does not know", id, role)
			}
			docs.identity[holder] = append(docs.identity[holder], id)
		}
	}
	if n := len(resources(tpl, "AWS::IAM::User")) + len(resources(tpl, "AWS::IAM::Group")); n > 0 {
		t.Fatalf("%d IAM users or groups this test does not read", n)
	}
	// API Gateway stores execute-api:/ in a resource policy as the API's ARN.
	if api := resources(tpl, "AWS::ApiGateway::RestApi")["PrivateApi"]; api != nil {
		doc, err := cfn.Evaluate(get(api, "Properties", "Body", "x-amazon-apigateway-policy"), names)
		if err != nil {
			t.Fatal(err)
		}
		b := strings.ReplaceAll(jsonOf(doc), `"execute-api:/`, `"arn:aws:execute-api:`+simRegion+":"+simAccount+":"+physical["PrivateApi"]+"/")
		var expanded any
		if err := json.Unmarshal([]byte(b), &expanded); err != nil {
			t.Fatal(err)
		}
		docs.policies["PrivateApi resource policy"] = expanded
	}
	// Each function's resource policy: its Lambda permissions, as Lambda stores them.
	perms := map[string][]any{}
	for id, p := range resources(tpl, "AWS::Lambda::Permission") {
		v, err := cfn.Evaluate(get(p, "Properties"), names)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		fn := fmt.Sprint(get(v, "FunctionName"))
		st := object{"Sid": id, "Effect": "Allow", "Principal": object{"Service": get(v, "Principal")}, "Action": get(v, "Action"), "Resource": physicalARN(fn)}
		if src := get(v, "SourceArn"); src != nil {
			st["Condition"] = object{"ArnLike": object{"aws:SourceArn": src}}
		}
		perms[fn] = append(perms[fn], st)
	}
	for fn, sts := range perms {
		docs.policies[fn+" resource policy"] = object{"Version": "2012-10-17", "Statement": sts}
	}
	return docs
}

func physicalARN(name string) string {
	for k, v := range physical {
		if v == name && physical[k+".Arn"] != "" {
			return physical[k+".Arn"]
		}
	}
	return name
}

// deployment are the names a stack deployed with params gives, for
// cfn.Evaluate: its parameters' values, the pseudo parameters, and the
// physical names above.
func deployment(raw object, params map[string]string) map[string]any {
	names := cfn.ParameterValues(raw, params)
	for k, v := range map[string]any{"AWS::Partition": "aws", "AWS::Region": simRegion, "AWS::AccountId": simAccount, "AWS::StackName": simStack,
		"AWS::URLSuffix": "amazonaws.com", "AWS::StackId": simStackID} {
		names[k] = v
	}
	for k, v := range physical {
		names[k] = v
	}
	return names
}

// Principals, and the ARNs of what they act on.
var (
	clusterArn      = "arn:aws:ecs:eu-west-1:111122223333:cluster/bastions"
	otherClusterArn = "arn:aws:ecs:eu-west-1:111122223333:cluster/production"
	bastionTask     = "arn:aws:ecs:eu-west-1:111122223333:task/bastions/0123456789abcdef0123456789abcdef"
	otherTask       = "arn:aws:ecs:eu-west-1:111122223333:task/production/fedcba9876543210fedcba9876543210"
	foreignTask     = "arn:aws:ecs:eu-west-1:444455556666:task/bastions/0123456789abcdef0123456789abcdef"
	foreignCluster  = "arn:aws:ecs:eu-west-1:444455556666:cluster/bastions"
	taskSession     = "arn:aws:sts::111122223333:assumed-role/bastion-ttl-BastionTaskRole-1A2B3C/0123456789abcdef0123456789abcdef"
	user            = "arn:aws:iam::111122223333:user/mallory"
)

func roleArn(logical string) string { return "arn:aws:iam::111122223333:role/" + physical[logical] }

func apiRoute(api, stage, method, path string) string {
	return "arn:aws:execute-api:eu-west-1:111122223333:" + api + "/" + stage + "/" + method + "/" + path
}

func logStream(groupArn string) string {
	return strings.TrimSuffix(groupArn, "*") + "log-stream:2026/12/01/[$LATEST]0123456789abcdef"
}

// corpus collects requests; account is the resource's owner, from its ARN.
type corpus struct{ reqs []iamsim.Request }

type principal struct {
	arn      string
	identity []string
	context  map[string]any
}

func (c *corpus) add(want string, who principal, name, action, resource string, ctx map[string]any, resourcePolicy string) {
	account := simAccount
	if f := strings.Split(resource, ":"); len(f) > 4 && f[4] != "" {
		account = f[4]
	}
	merged := map[string]any{}
	for k, v := range who.context {
		merged[k] = v
	}
	for k, v := range ctx {
		merged[k] = v
	}
	c.reqs = append(c.reqs, iamsim.Request{Name: name, Principal: who.arn, Action: action, Resource: resource, Account: account,
		Context: merged, Identity: who.identity, ResourcePolicy: resourcePolicy, Want: want})
}

func (c *corpus) allow(who principal, name, action, resource string, ctx map[string]any) {
	c.add("Allowed", who, name, action, resource, ctx, "")
}

func (c *corpus) deny(who principal, name, action, resource string, ctx map[string]any) {
	c.add("Denied", who, name, action, resource, ctx, "")
}

type ctx = map[string]any

func inCluster(arn string) ctx { return ctx{"ecs:cluster": arn} }

// assumeRole is the trust policy's side of sts:AssumeRole by a service.
func (c *corpus) assumeRole(want, role, name, service string, context ctx) {
	c.add(want, principal{arn: service}, role+" trust: "+name, "sts:AssumeRole", roleArn(role), context, role+" trust")
}

func templateCorpus(docs templateDocs, params map[string]string) []iamsim.Request {
	var c corpus
	private := params["ApiEndpoint"] == "private"

	// The terminate function: stop a task and write its TTL tag, in the cluster only.
	fn := principal{arn: "arn:aws:sts::111122223333:assumed-role/" + physical["TerminateFunctionRole"] + "/" + physical["TerminateFunction"], identity: docs.identity["TerminateFunctionRole"]}
	c.allow(fn, "terminate: StopTask a bastion", "ecs:StopTask", bastionTask, inCluster(clusterArn))
	c.allow(fn, "terminate: ListTagsForResource of a bastion", "ecs:ListTagsForResource", bastionTask, nil)
	c.allow(fn, "terminate: TagResource bastion-ttl (extend)", "ecs:TagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl"}, "aws:RequestTag/bastion-ttl": "3h0m0s"})
	c.allow(fn, "terminate: CreateLogStream", "logs:CreateLogStream", logStream(physical["TerminateLogGroup.Arn"]), nil)
	c.allow(fn, "terminate: PutLogEvents", "logs:PutLogEvents", logStream(physical["TerminateLogGroup.Arn"]), nil)
	c.deny(fn, "terminate: StopTask in another cluster", "ecs:StopTask", otherTask, inCluster(otherClusterArn))
	c.deny(fn, "terminate: StopTask in another account", "ecs:StopTask", foreignTask, inCluster(foreignCluster))
	c.deny(fn, "terminate: ListTagsForResource in another cluster", "ecs:ListTagsForResource", otherTask, nil)
	c.deny(fn, "terminate: TagResource bastion-ttl in another cluster", "ecs:TagResource", otherTask, ctx{"aws:TagKeys": []string{"bastion-ttl"}, "aws:RequestTag/bastion-ttl": "3h0m0s"})
	c.deny(fn, "terminate: TagResource the owner tag", "ecs:TagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl-owner"}, "aws:RequestTag/bastion-ttl-owner": "AROAEXAMPLE:mallory"})
	c.deny(fn, "terminate: TagResource bastion-ttl and another key", "ecs:TagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl", "team"}, "aws:RequestTag/bastion-ttl": "3h0m0s", "aws:RequestTag/team": "x"})
	c.deny(fn, "terminate: UntagResource bastion-ttl", "ecs:UntagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl"}})
	c.deny(fn, "terminate: RunTask", "ecs:RunTask", "arn:aws:ecs:eu-west-1:111122223333:task-definition/bastion:1", inCluster(clusterArn))
	c.deny(fn, "terminate: PutLogEvents to the sweeper's log group", "logs:PutLogEvents", logStream(physical["SweepLogGroup.Arn"]), nil)
	c.deny(fn, "terminate: PassRole", "iam:PassRole", roleArn("BastionTaskRole"), ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	c.assumeRole("Allowed", "TerminateFunctionRole", "Lambda", "lambda.amazonaws.com", nil)
	c.assumeRole("Denied", "TerminateFunctionRole", "ECS tasks", "ecs-tasks.amazonaws.com", ctx{"aws:SourceAccount": simAccount})

	// The sweeper: list, describe and stop in the cluster; publish its failures.
	sw := principal{arn: "arn:aws:sts::111122223333:assumed-role/" + physical["SweepFunctionRole"] + "/" + physical["SweepFunction"], identity: docs.identity["SweepFunctionRole"]}
	c.allow(sw, "sweep: ListTasks of the cluster", "ecs:ListTasks", "*", inCluster(clusterArn))
	c.allow(sw, "sweep: DescribeTasks", "ecs:DescribeTasks", bastionTask, inCluster(clusterArn))
	c.allow(sw, "sweep: StopTask", "ecs:StopTask", bastionTask, inCluster(clusterArn))
	c.allow(sw, "sweep: CreateLogStream", "logs:CreateLogStream", logStream(physical["SweepLogGroup.Arn"]), nil)
	c.allow(sw, "sweep: PutLogEvents", "logs:PutLogEvents", logStream(physical["SweepLogGroup.Arn"]), nil)
	c.deny(sw, "sweep: ListTasks of another cluster", "ecs:ListTasks", "*", inCluster(otherClusterArn))
	c.deny(sw, "sweep: DescribeTasks in another cluster", "ecs:DescribeTasks", otherTask, inCluster(otherClusterArn))
	c.deny(sw, "sweep: StopTask in another cluster", "ecs:StopTask", otherTask, inCluster(otherClusterArn))
	c.deny(sw, "sweep: StopTask in another account", "ecs:StopTask", foreignTask, inCluster(foreignCluster))
	c.deny(sw, "sweep: TagResource", "ecs:TagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl"}, "aws:RequestTag/bastion-ttl": "12h"})
	c.deny(sw, "sweep: PutLogEvents to the terminate log group", "logs:PutLogEvents", logStream(physical["TerminateLogGroup.Arn"]), nil)
	c.deny(sw, "sweep: Publish to another topic", "sns:Publish", "arn:aws:sns:eu-west-1:111122223333:other", nil)
	if params["AlarmTopicArn"] != "" {
		c.allow(sw, "sweep: Publish a failed sweep to AlarmTopicArn", "sns:Publish", simTopic, nil)
	} else {
		c.deny(sw, "sweep: Publish with no AlarmTopicArn", "sns:Publish", simTopic, nil)
	}
	c.assumeRole("Allowed", "SweepFunctionRole", "Lambda", "lambda.amazonaws.com", nil)
	c.assumeRole("Denied", "SweepFunctionRole", "ECS tasks", "ecs-tasks.amazonaws.com", ctx{"aws:SourceAccount": simAccount})

	// A bastion: the two routes of its API, nothing else.
	api, stage, viaVpce := physical["TerminateApi"], "$default", ctx{}
	rp := ""
	if private {
		api, stage, rp = physical["PrivateApi"], "prod", "PrivateApi resource policy"
		viaVpce = ctx{"aws:SourceVpce": "vpce-0fedcba9876543210"}
	}
	task := principal{arn: taskSession, identity: docs.identity["BastionTaskRole"]}
	invoke := func(want, name, resource string, context ctx) {
		c.add(want, task, "bastion: "+name, "execute-api:Invoke", resource, context, rp)
	}
	invoke("Allowed", "POST /terminate", apiRoute(api, stage, "POST", "terminate"), viaVpce)
	invoke("Allowed", "POST /extend", apiRoute(api, stage, "POST", "extend"), viaVpce)
	invoke("Allowed", "POST /usage", apiRoute(api, stage, "POST", "usage"), viaVpce)
	invoke("Denied", "GET /terminate", apiRoute(api, stage, "GET", "terminate"), viaVpce)
	invoke("Denied", "POST /other", apiRoute(api, stage, "POST", "other"), viaVpce)
	invoke("Denied", "another stage", apiRoute(api, "test", "POST", "terminate"), viaVpce)
	invoke("Denied", "another API", apiRoute("z9y8x7w6v5", stage, "POST", "terminate"), viaVpce)
	invoke("Denied", "another account's API", strings.Replace(apiRoute(api, stage, "POST", "terminate"), simAccount, otherAccount, 1), viaVpce)
	if private {
		invoke("ExplicitlyDenied", "not through a VPC endpoint", apiRoute(api, stage, "POST", "terminate"), nil)
		invoke("ExplicitlyDenied", "through another VPC endpoint", apiRoute(api, stage, "POST", "terminate"), ctx{"aws:SourceVpce": "vpce-00000000000000bad"})
		invoke("Allowed", "through the first VPC endpoint", apiRoute(api, stage, "POST", "extend"), ctx{"aws:SourceVpce": "vpce-0123456789abcdef0"})
		// Another account's caller, whatever its own policy says.
		anyInvoke := "fixture: invoke anything"
		c.add("Denied", principal{arn: "arn:aws:sts::444455556666:assumed-role/bastion-ttl-BastionTaskRole-1A2B3C/0123456789abcdef0123456789abcdef", identity: []string{anyInvoke}},
			"private API: another account's caller", "execute-api:Invoke", apiRoute(api, stage, "POST", "terminate"), viaVpce, rp)
		docs.policies[anyInvoke] = object{"Version": "2012-10-17", "Statement": []any{object{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}}}
	}
	if params["ExtraTaskRoleNames"] != "" {
		taskRolesCorpus(&c, docs, params)
	}
	peopleCorpus(&c, docs, params)
	ledgerCorpus(&c, docs, params)
	for _, extra := range strings.Split(params["ExtraTaskRoleNames"], ",") {
		if extra == "" {
			continue
		}
		own := principal{arn: "arn:aws:sts::111122223333:assumed-role/" + extra + "/0123456789abcdef0123456789abcdef", identity: docs.identity["role "+extra]}
		c.add("Allowed", own, "bastion with the role "+extra+": POST /terminate", "execute-api:Invoke", apiRoute(api, stage, "POST", "terminate"), viaVpce, rp)
		c.add("Denied", own, "bastion with the role "+extra+": StopTask itself directly", "ecs:StopTask", bastionTask, inCluster(clusterArn), "")
	}
	// ECS Exec's channels, opened by the SSM agent in the task: with the
	// parameter (the default) only.
	execWant := "Allowed"
	if params["ExecuteCommand"] == "false" {
		execWant = "Denied"
	}
	for _, a := range []string{"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"} {
		c.add(execWant, task, "bastion: ECS Exec's "+a, a, "*", nil, "")
	}
	c.deny(task, "bastion: ssm:StartSession itself (only the launcher's policy opens sessions)", "ssm:StartSession", bastionTask, nil)
	c.deny(task, "bastion: ecs:ExecuteCommand", "ecs:ExecuteCommand", bastionTask, inCluster(clusterArn))
	c.deny(task, "bastion: StopTask itself directly", "ecs:StopTask", bastionTask, inCluster(clusterArn))
	c.deny(task, "bastion: TagResource itself", "ecs:TagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl"}, "aws:RequestTag/bastion-ttl": "12h"})
	c.deny(task, "bastion: RunTask", "ecs:RunTask", "arn:aws:ecs:eu-west-1:111122223333:task-definition/bastion:1", inCluster(clusterArn))
	c.deny(task, "bastion: PassRole", "iam:PassRole", roleArn("BastionTaskRole"), ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	ecsTasks := ctx{"aws:SourceAccount": simAccount, "aws:SourceArn": bastionTask}
	c.assumeRole("Allowed", "BastionTaskRole", "ECS tasks of this account", "ecs-tasks.amazonaws.com", ecsTasks)
	c.assumeRole("Denied", "BastionTaskRole", "ECS tasks of another account", "ecs-tasks.amazonaws.com", ctx{"aws:SourceAccount": otherAccount, "aws:SourceArn": foreignTask})
	c.assumeRole("Denied", "BastionTaskRole", "Lambda", "lambda.amazonaws.com", ctx{"aws:SourceAccount": simAccount})
	assumeAny := "fixture: assume any role"
	docs.policies[assumeAny] = object{"Version": "2012-10-17", "Statement": []any{object{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}}
	c.add("Denied", principal{arn: user, identity: []string{assumeAny}}, "BastionTaskRole trust: a user of the account", "sts:AssumeRole", roleArn("BastionTaskRole"), nil, "BastionTaskRole trust")
	c.add("Allowed", principal{arn: user, identity: []string{assumeAny}}, "fixture: a user may assume a role that trusts the account", "sts:AssumeRole", "arn:aws:iam::111122223333:role/trusting", nil, "fixture: trusts the account")
	docs.policies["fixture: trusts the account"] = object{"Version": "2012-10-17", "Statement": []any{object{"Effect": "Allow", "Principal": object{"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}}}

	// Who may invoke the functions: the API's two routes, the schedule.
	term := physical["TerminateFunction"] + " resource policy"
	apigw := principal{arn: "apigateway.amazonaws.com"}
	c.add("Allowed", apigw, "invoke: the API's POST /terminate", "lambda:InvokeFunction", physical["TerminateFunction.Arn"], ctx{"aws:SourceArn": apiRoute(api, stage, "POST", "terminate")}, term)
	c.add("Allowed", apigw, "invoke: the API's POST /extend", "lambda:InvokeFunction", physical["TerminateFunction.Arn"], ctx{"aws:SourceArn": apiRoute(api, stage, "POST", "extend")}, term)
	c.add("Allowed", apigw, "invoke: the API's POST /usage", "lambda:InvokeFunction", physical["TerminateFunction.Arn"], ctx{"aws:SourceArn": apiRoute(api, stage, "POST", "usage")}, term)
	c.add("Denied", apigw, "invoke: the API's GET /terminate", "lambda:InvokeFunction", physical["TerminateFunction.Arn"], ctx{"aws:SourceArn": apiRoute(api, stage, "GET", "terminate")}, term)
	c.add("Denied", apigw, "invoke: another API", "lambda:InvokeFunction", physical["TerminateFunction.Arn"], ctx{"aws:SourceArn": apiRoute("z9y8x7w6v5", stage, "POST", "terminate")}, term)
	c.add("Denied", principal{arn: "events.amazonaws.com"}, "invoke: EventBridge, the terminate function", "lambda:InvokeFunction", physical["TerminateFunction.Arn"], ctx{"aws:SourceArn": physical["SweepFunctionSweep.Arn"]}, term)
	sweepFn := physical["SweepFunction"] + " resource policy"
	events := principal{arn: "events.amazonaws.com"}
	c.add("Allowed", events, "invoke: the sweep schedule", "lambda:InvokeFunction", physical["SweepFunction.Arn"], ctx{"aws:SourceArn": physical["SweepFunctionSweep.Arn"]}, sweepFn)
	c.add("Denied", events, "invoke: another rule, the sweeper", "lambda:InvokeFunction", physical["SweepFunction.Arn"], ctx{"aws:SourceArn": "arn:aws:events:eu-west-1:111122223333:rule/other"}, sweepFn)
	c.add("Denied", apigw, "invoke: API Gateway, the sweeper", "lambda:InvokeFunction", physical["SweepFunction.Arn"], ctx{"aws:SourceArn": apiRoute(api, stage, "POST", "terminate")}, sweepFn)
	return c.reqs
}
