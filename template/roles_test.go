// The extra task roles (ExtraTaskRoleNames): resolved at deploy time to
// their unique IDs by a custom resource whose function may read exactly
// those roles, and handed to the terminate function as IDs only.
package template_test

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/taskroles"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
)

// taskRolesCorpus: the function that resolves the extra roles may read
// those roles and write its log, and nothing else.
func taskRolesCorpus(c *corpus, docs templateDocs, params map[string]string) {
	fn := principal{arn: "arn:aws:sts::111122223333:assumed-role/" + physical["TaskRolesFunctionRole"] + "/" + physical["TaskRolesFunction"], identity: docs.identity["TaskRolesFunctionRole"]}
	names := strings.Split(params["ExtraTaskRoleNames"], ",")
	for _, name := range names {
		c.allow(fn, "task roles: GetRole "+name, "iam:GetRole", "arn:aws:iam::111122223333:role/"+name, nil)
		c.deny(fn, "task roles: UpdateAssumeRolePolicy "+name, "iam:UpdateAssumeRolePolicy", "arn:aws:iam::111122223333:role/"+name, nil)
		c.deny(fn, "task roles: GetRole "+name+" of another account", "iam:GetRole", "arn:aws:iam::444455556666:role/"+name, nil)
		c.deny(fn, "task roles: GetRole "+name+" under a path", "iam:GetRole", "arn:aws:iam::111122223333:role/team/"+name, nil)
	}
	c.deny(fn, "task roles: GetRole another role", "iam:GetRole", "arn:aws:iam::111122223333:role/admin", nil)
	c.deny(fn, "task roles: GetRole a name that begins as a listed one", "iam:GetRole", "arn:aws:iam::111122223333:role/"+names[0]+"-admin", nil)
	c.deny(fn, "task roles: GetRole the stack's task role (resolved by CloudFormation)", "iam:GetRole", roleArn("BastionTaskRole"), nil)
	c.deny(fn, "task roles: PassRole", "iam:PassRole", "arn:aws:iam::111122223333:role/"+names[0], ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	c.deny(fn, "task roles: ListRoles", "iam:ListRoles", "*", nil)
	c.allow(fn, "task roles: CreateLogStream", "logs:CreateLogStream", logStream(physical["TaskRolesLogGroup.Arn"]), nil)
	c.allow(fn, "task roles: PutLogEvents", "logs:PutLogEvents", logStream(physical["TaskRolesLogGroup.Arn"]), nil)
	c.deny(fn, "task roles: PutLogEvents to the terminate log group", "logs:PutLogEvents", logStream(physical["TerminateLogGroup.Arn"]), nil)
	c.deny(fn, "task roles: StopTask", "ecs:StopTask", bastionTask, inCluster(clusterArn))
	c.assumeRole("Allowed", "TaskRolesFunctionRole", "Lambda", "lambda.amazonaws.com", nil)
	c.assumeRole("Denied", "TaskRolesFunctionRole", "ECS tasks", "ecs-tasks.amazonaws.com", ctx{"aws:SourceAccount": simAccount})
}

// The terminate function gets every role as a unique ID: the stack's by
// GetAtt, the extra ones from the custom resource, never a name.
func TestTemplateTerminatePinsEveryRoleByID(t *testing.T) {
	raw := rawTransformed(t)
	fn := resources(raw, "AWS::Lambda::Function")["TerminateFunction"]
	pin := get(fn, "Properties", "Environment", "Variables", "BASTION_TASK_ROLES")
	want := object{"Fn::If": []any{"HasExtraTaskRoles",
		object{"Fn::Join": []any{",", []any{getAtt("BastionTaskRole", "RoleId"), getAtt("ExtraTaskRoleIds", "RoleIds")}}},
		getAtt("BastionTaskRole", "RoleId")}}
	if !same(pin, want) {
		t.Errorf("BASTION_TASK_ROLES = %s\nwant %s", jsonOf(pin), jsonOf(want))
	}
	if strings.Contains(jsonOf(get(fn, "Properties")), "ExtraTaskRoleNames") {
		t.Errorf("the terminate function sees the role names: %s", jsonOf(get(fn, "Properties")))
	}
	cr := resources(raw, "AWS::CloudFormation::CustomResource")["ExtraTaskRoleIds"]
	if get(cr, "Condition") != "HasExtraTaskRoles" || !same(get(cr, "Properties", "ServiceToken"), getAtt("TaskRolesFunction", "Arn")) ||
		!same(get(cr, "Properties", "RoleNames"), ref("ExtraTaskRoleNames")) {
		t.Errorf("ExtraTaskRoleIds = %s, want the custom resource of TaskRolesFunction given ExtraTaskRoleNames", jsonOf(cr))
	}
	if got := get(raw, "Parameters", "ExtraTaskRoleNames", "Default"); got != "" {
		t.Errorf("ExtraTaskRoleNames default %v, want empty", got)
	}
	if taskroles.RoleIDsAttribute != "RoleIds" {
		t.Errorf("the function answers %s, the template reads RoleIds", taskroles.RoleIDsAttribute)
	}
}

// Without extra roles there is nothing to resolve: no function, no role
// with iam:GetRole, no custom resource.
func TestTemplateNoExtraRolesNoResolver(t *testing.T) {
	tpl := transformed(t)
	for _, id := range []string{"ExtraTaskRoleIds", "TaskRolesFunction", "TaskRolesFunctionRole", "TaskRolesLogGroup"} {
		if tpl["Resources"].(object)[id] != nil {
			t.Errorf("%s is deployed with no ExtraTaskRoleNames", id)
		}
	}
	if pin := get(resources(tpl, "AWS::Lambda::Function")["TerminateFunction"], "Properties", "Environment", "Variables", "BASTION_TASK_ROLES"); !same(pin, getAtt("BastionTaskRole", "RoleId")) {
		t.Errorf("BASTION_TASK_ROLES = %s", jsonOf(pin))
	}
}

// The resolver's function is built and deployed as the other two, and may
// call iam:GetRole on exactly the listed roles: one ARN per name, for one
// name and for the most the template spells out.
func TestTemplateTaskRolesFunction(t *testing.T) {
	var ten []string
	for i := range taskroles.MaxRoles {
		ten = append(ten, fmt.Sprintf("bastion-role-%d", i))
	}
	for _, names := range [][]string{{"ops-bastion"}, {"ops-bastion", "db@bastion.v2"}, ten} {
		t.Run(fmt.Sprint(len(names)), func(t *testing.T) {
			params := map[string]string{"ApiEndpoint": "public", "ExtraTaskRoleNames": strings.Join(names, ",")}
			tpl := transformedFor(t, params)
			fn := resources(tpl, "AWS::Lambda::Function")["TaskRolesFunction"]
			p, _ := fn["Properties"].(object)
			if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" || !same(p["Architectures"], []any{"arm64"}) || get(fn, "Metadata", "BuildMethod") != "makefile" {
				t.Fatalf("TaskRolesFunction: %s", jsonOf(fn))
			}
			if !same(get(p, "LoggingConfig", "LogGroup"), ref("TaskRolesLogGroup")) || !same(get(resources(tpl, "AWS::Logs::LogGroup")["TaskRolesLogGroup"], "Properties", "RetentionInDays"), ref("LogRetentionInDays")) {
				t.Errorf("TaskRolesFunction logs: %s", jsonOf(p["LoggingConfig"]))
			}
			if !same(p["Role"], getAtt("TaskRolesFunctionRole", "Arn")) {
				t.Errorf("TaskRolesFunction role %s", jsonOf(p["Role"]))
			}
			role := resources(tpl, "AWS::IAM::Role")["TaskRolesFunctionRole"]
			if mp := get(role, "Properties", "ManagedPolicyArns"); mp != nil {
				t.Errorf("TaskRolesFunctionRole has managed policies %s", jsonOf(mp))
			}
			var getRole []any
			for _, s := range statements(tpl) {
				switch {
				case s.where == "TaskRolesFunctionRole" && slices.Contains(list(s.body["Action"]), any("iam:GetRole")):
					getRole = append(getRole, list(s.body["Resource"])...)
				case s.where == "LauncherPolicy" && same(s.body["Action"], "iam:PassRole"):
					// A person's, not a function's: the stack's two bastion
					// roles only (iam_people_test.go decides it).
				case slices.ContainsFunc(list(s.body["Action"]), func(a any) bool { return strings.HasPrefix(fmt.Sprint(a), "iam:") }):
					t.Errorf("%s grants IAM: %s", s.where, jsonOf(s.body))
				}
			}
			arns, err := cfn.Evaluate(getRole, deployment(rawTransformedWith(t, params), params))
			if err != nil {
				t.Fatal(err)
			}
			var want []any
			for _, n := range names {
				want = append(want, "arn:aws:iam::111122223333:role/"+n)
			}
			if !same(arns, want) {
				t.Errorf("iam:GetRole on %s\nwant exactly %s", jsonOf(arns), jsonOf(want))
			}
		})
	}
	// As many grants as the function accepts names, and a build for sam.
	raw := rawTransformed(t)
	n := 0
	for name := range raw["Conditions"].(object) {
		if strings.HasPrefix(name, "HasExtraTaskRole") && name != "HasExtraTaskRoles" {
			n++
		}
	}
	if n != taskroles.MaxRoles {
		t.Errorf("%d HasExtraTaskRole<N> conditions, the function accepts %d names", n, taskroles.MaxRoles)
	}
	if err := makeDryRun(root, "build-TaskRolesFunction"); err != nil {
		t.Errorf("no Makefile target build-TaskRolesFunction for sam build: %v", err)
	}
}

func TestTemplateLintsCleanWithExtraRoles(t *testing.T) {
	bin := testenv.Need(t, "cfn-lint", "pip install cfn-lint")
	for _, api := range []string{"ApiEndpoint=public", "ApiEndpoint=private"} {
		args := []string{"--parameters", "ClusterName=bastions", "ExtraTaskRoleNames=ops-bastion,db-bastion", api, "VpcEndpointIds=vpce-0123456789abcdef0", "--", stack.Path()}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("cfn-lint %v: %v\n%s", args, err, out)
		}
	}
}
