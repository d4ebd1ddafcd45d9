// The shape of template.yaml's IAM policies: no wildcard on a write, each
// write scoped to the cluster or the route; iam_decisions_test.go and
// iam_people_test.go have a policy simulator decide them.
package template_test

import (
	"slices"
	"strings"
	"testing"
)

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
		sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${TerminateApi}/$default/POST/usage"),
	}
)

func TestTemplateGrantsNoWildcards(t *testing.T) {
	for _, params := range []map[string]string{publicAPI, {"ApiEndpoint": "public", "BastionImageRepositoryArns": simRepositories}} {
		grantsNoWildcards(t, transformedFor(t, params))
	}
}

func grantsNoWildcards(t *testing.T, tpl object) {
	t.Helper()
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
				// and then only with the ecs:cluster condition; and the
				// actions that have no resource type at all.
				if noResourceType[action] {
					continue
				}
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
		// A launcher tags a task as RunTask creates it, and only then
		// (iam_people_test.go decides it).
		if s.where == "LauncherPolicy" && get(s.body, "Condition", "StringEquals", "ecs:CreateAction") == "RunTask" {
			continue
		}
		for _, a := range list(s.body["Action"]) {
			// The ledger function reads a running bastion's owner and
			// reason tags (template_ledger_test.go).
			if a == "ecs:ListTagsForResource" && s.where == "LedgerFunctionRole" {
				continue
			}
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
	invoke := object{"Sid": "InvokeTerminateAndExtend", "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": routeARNs}
	channels := object{"Sid": "EcsExecSessionChannels", "Effect": "Allow", "Resource": "*",
		"Action": []any{"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}}
	if want := []any{invoke, channels}; !same(stmts, want) {
		t.Errorf("BastionTaskPolicy = %s\nwant the route and ECS Exec's channels %s", jsonOf(stmts), jsonOf(want))
	}
	// Without ECS Exec, the route alone.
	policy = resources(transformedFor(t, map[string]string{"ExecuteCommand": "false"}), "AWS::IAM::ManagedPolicy")["BastionTaskPolicy"]
	if stmts, want := list(get(policy, "Properties", "PolicyDocument", "Statement")), []any{invoke}; !same(stmts, want) {
		t.Errorf("ExecuteCommand=false: BastionTaskPolicy = %s\nwant the single permission %s", jsonOf(stmts), jsonOf(want))
	}
}

// noResourceType are the actions the stack grants that IAM offers no
// resource to scope to: the task role's ECS Exec channels (the SSM agent
// opens the session's channels with them), the execution role's registry
// token (it pulls nothing by itself), and a launcher's read of a task
// definition.
var noResourceType = map[string]bool{
	"ssmmessages:CreateControlChannel": true, "ssmmessages:CreateDataChannel": true,
	"ssmmessages:OpenControlChannel": true, "ssmmessages:OpenDataChannel": true,
	"ecr:GetAuthorizationToken": true, "ecs:DescribeTaskDefinition": true,
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

// Session Manager checks a session's document only where every statement
// that allows ssm:StartSession asks it to: one without the condition, and a
// session with no document is a shell.
func TestTemplateEveryStartSessionChecksTheDocument(t *testing.T) {
	n := 0
	for _, s := range statements(transformed(t)) {
		if s.body["Effect"] != "Allow" || !slices.ContainsFunc(list(s.body["Action"]), func(a any) bool { return a == "ssm:StartSession" || a == "ssm:*" }) {
			continue
		}
		n++
		if got := get(s.body, "Condition", "BoolIfExists", "ssm:SessionDocumentAccessCheck"); got != "true" {
			t.Errorf("%s: %s allows ssm:StartSession without BoolIfExists ssm:SessionDocumentAccessCheck true", s.where, jsonOf(s.body))
		}
	}
	if n == 0 {
		t.Fatal("no statement allows ssm:StartSession: the test reads the wrong shape")
	}
}
