// What AWS would decide about the people around a bastion: the stack's
// LauncherPolicy and OperatorPolicy, its BastionExecutionRole, and
// examples/launcher-policy.json (the launcher policy for people without the
// stack's outputs, generated from the template's), each put to the requests
// a person makes and the ones they must not, and decided by the IAM policy
// simulator (package internal/testenv/iamsim).
package template_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/launcher"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/iamsim"
)

// go test ./template -run TestTemplateLauncherPolicyExample -update-examples
// rewrites examples/launcher-policy.json.
var updateExamples = flag.Bool("update-examples", false, "rewrite examples/launcher-policy.json from the template's LauncherPolicy")

const (
	aliceID = "AROAEXAMPLEDEVELOPER1:alice"
	bobID   = "AROAEXAMPLEDEVELOPER1:bob"
	// What BastionImageRepositoryArns names in the settings that set it:
	// a repository, and a pull-through cache's namespace.
	simRepositories  = "arn:aws:ecr:eu-west-1:111122223333:repository/bastion-ttl/supervisor,arn:aws:ecr:eu-west-1:111122223333:repository/ghcr/*"
	generalExecution = "arn:aws:iam::111122223333:role/ecsTaskExecutionRole"
)

// peopleCorpus adds the launcher's, the operator's and the execution
// role's requests for the stack deployed with params.
func peopleCorpus(c *corpus, docs templateDocs, params map[string]string) {
	launcherCorpus(c, "LauncherPolicy", strings.Split(cmp.Or(params["BastionFamilies"], "bastion-ssh"), ","))
	operatorCorpus(c)
	executionRoleCorpus(c, docs, params["BastionImageRepositoryArns"] != "")
}

// bastionOf is the context of a request on a bastion of the cluster whose
// owner tag is owner ("" for a task without the bastion-ttl tags).
func bastionOf(owner string) ctx {
	c := ctx{"ecs:cluster": clusterArn}
	if owner != "" {
		c["aws:ResourceTag/bastion-ttl"] = "2h0m0s"
		c["aws:ResourceTag/bastion-ttl-owner"] = owner
	}
	return c
}

// sessionTarget is the context of ssm:StartSession on a bastion: its tags
// (the action offers no ecs:cluster key).
func sessionTarget(owner string) ctx {
	c := bastionOf(owner)
	delete(c, "ecs:cluster")
	return c
}

func with(base ctx, more ctx) ctx {
	out := ctx{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// requestTags is RunTask's (or TagResource's) tag context for kv.
func requestTags(kv ...string) ctx {
	c := ctx{}
	var keys []string
	for i := 0; i < len(kv); i += 2 {
		keys = append(keys, kv[i])
		c["aws:RequestTag/"+kv[i]] = kv[i+1]
	}
	if len(keys) > 0 {
		c["aws:TagKeys"] = keys
	}
	return c
}

// launcherCorpus is what alice, who holds policy, must be allowed (every
// call run, ls, stop and connect make, on her own bastions) and refused
// (another family, role, person's bastion, container, document or cluster).
func launcherCorpus(c *corpus, policy string, families []string) {
	alice := principal{arn: "arn:aws:sts::111122223333:assumed-role/developers/alice", identity: []string{policy}, context: ctx{"aws:userid": aliceID}}
	name := func(s string) string { return policy + ": " + s }
	taskDef := func(family string) string {
		return "arn:aws:ecs:eu-west-1:111122223333:task-definition/" + family + ":3"
	}
	launchTags := requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", aliceID)
	run := with(launchTags, ctx{"ecs:cluster": clusterArn, "ecs:enable-execute-command": "false"})
	onCreate := with(launchTags, ctx{"ecs:CreateAction": "RunTask"})
	own, bobs := bastionOf(aliceID), bastionOf(bobID)
	bobsTask := "arn:aws:ecs:eu-west-1:111122223333:task/bastions/b0bb0bb0b0bb0bb0b0bb0bb0b0bb0bb0"
	execInto := func(task, container string, tags ctx) ctx {
		return with(tags, ctx{"ecs:task": task, "ecs:container-name": container})
	}
	docArn := func(doc string) string { return "arn:aws:ssm:eu-west-1:111122223333:document/" + doc }
	withCheck := ctx{"ssm:SessionDocumentAccessCheck": "true"}

	// bastion-ttl run, call by call, for each family the stack names.
	c.allow(alice, name("run: DescribeStacks (the stack's outputs)"), "cloudformation:DescribeStacks", simStackID, nil)
	c.allow(alice, name("run: DescribeClusters"), "ecs:DescribeClusters", clusterArn, nil)
	c.allow(alice, name("run: DescribeTaskDefinition"), "ecs:DescribeTaskDefinition", "*", nil)
	for _, f := range families {
		c.allow(alice, name("run: RunTask "+f+" tagged as hers"), "ecs:RunTask", taskDef(f), run)
		c.allow(alice, name("run --exec: RunTask "+f+" with ECS Exec"), "ecs:RunTask", taskDef(f), with(run, ctx{"ecs:enable-execute-command": "true"}))
	}
	c.allow(alice, name("run: TagResource as RunTask creates the task"), "ecs:TagResource", bastionTask, onCreate)
	// run --reason: the reason tag beside the two, any value.
	withReason := requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", aliceID, "bastion-ttl-reason", "INC-4211: orders replica")
	for _, f := range families {
		c.allow(alice, name("run --reason: RunTask "+f+" with a reason"), "ecs:RunTask", taskDef(f), with(withReason, ctx{"ecs:cluster": clusterArn, "ecs:enable-execute-command": "false"}))
	}
	c.allow(alice, name("run --reason: TagResource with a reason as RunTask creates the task"), "ecs:TagResource", bastionTask, with(withReason, ctx{"ecs:CreateAction": "RunTask"}))
	c.allow(alice, name("run: PassRole the stack's task role"), "iam:PassRole", roleArn("BastionTaskRole"), ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	c.allow(alice, name("run: PassRole the stack's execution role"), "iam:PassRole", roleArn("BastionExecutionRole"), ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	c.allow(alice, name("run: DescribeTasks (wait until it runs)"), "ecs:DescribeTasks", bastionTask, own)
	// ls, stop, connect (--stop too), extend through a forward.
	c.allow(alice, name("ls: ListTasks of the cluster"), "ecs:ListTasks", "*", inCluster(clusterArn))
	c.allow(alice, name("ls: DescribeTasks of a colleague's bastion"), "ecs:DescribeTasks", bobsTask, bobs)
	c.allow(alice, name("stop: StopTask her own bastion"), "ecs:StopTask", bastionTask, own)
	c.allow(alice, name("connect --shell: ExecuteCommand, her bastion's container bastion (task)"), "ecs:ExecuteCommand", bastionTask, execInto(bastionTask, launcher.BastionContainerName, own))
	c.allow(alice, name("connect --shell: ExecuteCommand, her bastion's container bastion (cluster)"), "ecs:ExecuteCommand", clusterArn, execInto(bastionTask, launcher.BastionContainerName, own))
	c.allow(alice, name("connect: StartSession on her bastion"), "ssm:StartSession", bastionTask, sessionTarget(aliceID))
	c.allow(alice, name("connect: StartSession on her bastion, document checked"), "ssm:StartSession", bastionTask, with(sessionTarget(aliceID), withCheck))
	for _, doc := range []string{"AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost"} {
		c.allow(alice, name("connect: StartSession "+doc), "ssm:StartSession", docArn(doc), nil)
		c.allow(alice, name("connect: StartSession "+doc+", document checked"), "ssm:StartSession", docArn(doc), withCheck)
	}
	ownSession := ctx{"ssm:resourceTag/aws:ssmmessages:session-id": aliceID, "ssm:resourceTag/aws:ssmmessages:target-id": "ecs:bastions_0123456789abcdef0123456789abcdef_0123456789abcdef0123456789abcdef-1234567890"}
	c.allow(alice, name("connect: TerminateSession of her own"), "ssm:TerminateSession", "arn:aws:ssm:eu-west-1:111122223333:session/alice-0a1b2c3d4e5f6a7b8", ownSession)
	c.allow(alice, name("connect: ResumeSession of her own"), "ssm:ResumeSession", "arn:aws:ssm:eu-west-1:111122223333:session/alice-0a1b2c3d4e5f6a7b8", ownSession)

	// 1. Another family, with its own roles, or another role in the slot.
	c.deny(alice, name("RunTask another family of the account"), "ecs:RunTask", taskDef("payments-migrate"), run)
	c.deny(alice, name("RunTask a family whose name begins like a bastion's"), "ecs:RunTask", taskDef(families[0]+"-admin"), run)
	c.deny(alice, name("PassRole the account's general execution role"), "iam:PassRole", generalExecution, ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	c.deny(alice, name("PassRole an admin role"), "iam:PassRole", "arn:aws:iam::111122223333:role/admin", ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	c.deny(alice, name("PassRole the task role to Lambda"), "iam:PassRole", roleArn("BastionTaskRole"), ctx{"iam:PassedToService": "lambda.amazonaws.com"})
	// 2. A shell where a forward was meant.
	c.deny(alice, name("StartSession on her bastion with no document (the default shell)"), "ssm:StartSession", bastionTask, with(sessionTarget(aliceID), ctx{"ssm:SessionDocumentAccessCheck": "false"}))
	c.deny(alice, name("StartSession SSM-SessionManagerRunShell"), "ssm:StartSession", docArn("SSM-SessionManagerRunShell"), withCheck)
	c.deny(alice, name("StartSession AWS-StartInteractiveCommand"), "ssm:StartSession", docArn("AWS-StartInteractiveCommand"), withCheck)
	c.deny(alice, name("StartSession AWS-StartSSHSession"), "ssm:StartSession", docArn("AWS-StartSSHSession"), nil)
	c.deny(alice, name("StartSession on an instance"), "ssm:StartSession", "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0", nil)
	// 3. Someone else's bastion, or the supervisor's container of her own.
	c.deny(alice, name("StopTask a colleague's bastion"), "ecs:StopTask", bobsTask, bobs)
	c.deny(alice, name("StopTask an untagged task of the cluster"), "ecs:StopTask", bobsTask, bastionOf(""))
	c.deny(alice, name("ExecuteCommand a colleague's bastion container (task)"), "ecs:ExecuteCommand", bobsTask, execInto(bobsTask, "bastion", bobs))
	// (The cluster's side of a colleague's bastion is allowed: the task's,
	// above, is what refuses it; ECS needs both.)
	c.deny(alice, name("ExecuteCommand her bastion's supervisor container (task)"), "ecs:ExecuteCommand", bastionTask, execInto(bastionTask, "supervisor", own))
	c.deny(alice, name("ExecuteCommand her bastion's supervisor container (cluster)"), "ecs:ExecuteCommand", clusterArn, execInto(bastionTask, "supervisor", own))
	c.deny(alice, name("StartSession on a colleague's bastion"), "ssm:StartSession", bobsTask, sessionTarget(bobID))
	c.deny(alice, name("StartSession on an untagged task of the cluster"), "ssm:StartSession", bobsTask, sessionTarget(""))
	c.deny(alice, name("TerminateSession of a colleague's"), "ssm:TerminateSession", "arn:aws:ssm:eu-west-1:111122223333:session/bob-0a1b2c3d4e5f6a7b8",
		ctx{"ssm:resourceTag/aws:ssmmessages:session-id": bobID, "ssm:resourceTag/aws:ssmmessages:target-id": ownSession["ssm:resourceTag/aws:ssmmessages:target-id"]})
	c.deny(alice, name("TerminateSession of her own outside the cluster"), "ssm:TerminateSession", "arn:aws:ssm:eu-west-1:111122223333:session/alice-0a1b2c3d4e5f6a7b9",
		ctx{"ssm:resourceTag/aws:ssmmessages:session-id": aliceID, "ssm:resourceTag/aws:ssmmessages:target-id": "i-0123456789abcdef0"})
	// A bastion the sweeper would not see, or that says it is someone else's.
	f := families[0]
	c.deny(alice, name("RunTask untagged"), "ecs:RunTask", taskDef(f), ctx{"ecs:cluster": clusterArn, "ecs:enable-execute-command": "false"})
	c.deny(alice, name("RunTask with the owner tag alone"), "ecs:RunTask", taskDef(f), with(requestTags("bastion-ttl-owner", aliceID), inCluster(clusterArn)))
	c.deny(alice, name("RunTask with the TTL tag alone"), "ecs:RunTask", taskDef(f), with(requestTags("bastion-ttl", "2h0m0s"), inCluster(clusterArn)))
	c.deny(alice, name("RunTask with a colleague's owner value"), "ecs:RunTask", taskDef(f), with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", bobID), inCluster(clusterArn)))
	c.deny(alice, name("RunTask with an ARN as owner"), "ecs:RunTask", taskDef(f), with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", "arn:aws:sts::111122223333:assumed-role/developers/alice"), inCluster(clusterArn)))
	c.deny(alice, name("RunTask with another tag key"), "ecs:RunTask", taskDef(f), with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", aliceID, "team", "x"), inCluster(clusterArn)))
	c.deny(alice, name("RunTask in another cluster"), "ecs:RunTask", taskDef(f), with(launchTags, inCluster(otherClusterArn)))
	c.deny(alice, name("TagResource on create with a colleague's owner value"), "ecs:TagResource", bastionTask, with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", bobID), ctx{"ecs:CreateAction": "RunTask"}))
	c.deny(alice, name("TagResource on create without the TTL tag"), "ecs:TagResource", bastionTask, with(requestTags("bastion-ttl-owner", aliceID), ctx{"ecs:CreateAction": "RunTask"}))
	c.deny(alice, name("TagResource on create of another key"), "ecs:TagResource", bastionTask, with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", aliceID, "team", "x"), ctx{"ecs:CreateAction": "RunTask"}))
	c.deny(alice, name("TagResource on create in another cluster"), "ecs:TagResource", otherTask, onCreate)
	c.deny(alice, name("TagResource on create by another action"), "ecs:TagResource", bastionTask, with(launchTags, ctx{"ecs:CreateAction": "CreateService"}))
	// Retagging a running bastion: shorten someone's to 1s, or lengthen one's own past its TTL.
	c.deny(alice, name("TagResource bastion-ttl on a running task"), "ecs:TagResource", bastionTask, requestTags("bastion-ttl", "1s"))
	c.deny(alice, name("TagResource both tags on a running task"), "ecs:TagResource", bastionTask, launchTags)
	c.deny(alice, name("UntagResource bastion-ttl"), "ecs:UntagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl"}})
	// A reason is the one given at the start (docs/security.md, People):
	// not one's own changed later, nor one put on a colleague's bastion.
	// (TagResource offers the task's tags, not ecs:cluster.)
	ownTags, bobsTags := sessionTarget(aliceID), sessionTarget(bobID)
	c.deny(alice, name("TagResource a reason on her running bastion"), "ecs:TagResource", bastionTask, with(ownTags, requestTags("bastion-ttl-reason", "another reason")))
	c.deny(alice, name("TagResource a reason on a colleague's bastion"), "ecs:TagResource", bobsTask, with(bobsTags, requestTags("bastion-ttl-reason", "bob's was for nothing")))
	c.deny(alice, name("TagResource a reason on a colleague's bastion, as if created"), "ecs:TagResource", bobsTask,
		with(bobsTags, with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", bobID, "bastion-ttl-reason", "x"), ctx{"ecs:CreateAction": "RunTask"})))
	c.deny(alice, name("RunTask with a reason for a colleague"), "ecs:RunTask", taskDef(f),
		with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", bobID, "bastion-ttl-reason", "x"), inCluster(clusterArn)))
	c.deny(alice, name("UntagResource bastion-ttl-reason"), "ecs:UntagResource", bastionTask, with(ownTags, ctx{"aws:TagKeys": []string{"bastion-ttl-reason"}}))
	// The rest of the account.
	c.deny(alice, name("StopTask her own in another cluster"), "ecs:StopTask", otherTask, with(own, inCluster(otherClusterArn)))
	c.deny(alice, name("StopTask in another account"), "ecs:StopTask", foreignTask, inCluster(foreignCluster))
	c.deny(alice, name("DescribeTasks in another cluster"), "ecs:DescribeTasks", otherTask, inCluster(otherClusterArn))
	c.deny(alice, name("ListTasks of another cluster"), "ecs:ListTasks", "*", inCluster(otherClusterArn))
	c.deny(alice, name("DescribeClusters of another cluster"), "ecs:DescribeClusters", otherClusterArn, nil)
	c.deny(alice, name("ExecuteCommand in another cluster"), "ecs:ExecuteCommand", otherTask, ctx{"ecs:cluster": otherClusterArn, "ecs:task": otherTask, "ecs:container-name": "bastion", "aws:ResourceTag/bastion-ttl-owner": aliceID})
	c.deny(alice, name("StartSession on another cluster's task"), "ssm:StartSession", otherTask, ctx{"aws:ResourceTag/bastion-ttl-owner": aliceID})
	c.deny(alice, name("DescribeStacks of another stack"), "cloudformation:DescribeStacks", "arn:aws:cloudformation:eu-west-1:111122223333:stack/prod/6a8e1c90-0f1e-11f0-9b6c-0a1b2c3d4e5f", nil)
}

// operatorCorpus: carol, who holds the OperatorPolicy, sees and stops any
// bastion of the cluster, and does nothing inside one.
func operatorCorpus(c *corpus) {
	carol := principal{arn: "arn:aws:sts::111122223333:assumed-role/operators/carol", identity: []string{"OperatorPolicy"}, context: ctx{"aws:userid": "AROAEXAMPLEOPERATOR1:carol"}}
	name := func(s string) string { return "OperatorPolicy: " + s }
	bobsTask := "arn:aws:ecs:eu-west-1:111122223333:task/bastions/b0bb0bb0b0bb0bb0b0bb0bb0b0bb0bb0"
	c.allow(carol, name("ls: DescribeStacks (the stack's outputs)"), "cloudformation:DescribeStacks", simStackID, nil)
	c.allow(carol, name("ls: ListTasks of the cluster"), "ecs:ListTasks", "*", inCluster(clusterArn))
	c.allow(carol, name("ls: DescribeTasks of the cluster"), "ecs:DescribeTasks", bobsTask, bastionOf(bobID))
	c.allow(carol, name("stop: StopTask a colleague's bastion"), "ecs:StopTask", bobsTask, bastionOf(bobID))
	c.allow(carol, name("stop: StopTask alice's bastion"), "ecs:StopTask", bastionTask, bastionOf(aliceID))
	c.deny(carol, name("StopTask an untagged task of the cluster (not a bastion)"), "ecs:StopTask", bobsTask, bastionOf(""))
	c.deny(carol, name("StopTask a bastion of another cluster"), "ecs:StopTask", otherTask, with(bastionOf(bobID), inCluster(otherClusterArn)))
	c.deny(carol, name("ListTasks of another cluster"), "ecs:ListTasks", "*", inCluster(otherClusterArn))
	c.deny(carol, name("ExecuteCommand into a bastion"), "ecs:ExecuteCommand", bobsTask, with(bastionOf(bobID), ctx{"ecs:task": bobsTask, "ecs:container-name": "bastion"}))
	c.deny(carol, name("StartSession on a bastion"), "ssm:StartSession", bobsTask, sessionTarget(bobID))
	c.deny(carol, name("StartSession AWS-StartPortForwardingSession"), "ssm:StartSession", "arn:aws:ssm:eu-west-1:111122223333:document/AWS-StartPortForwardingSession", nil)
	c.deny(carol, name("RunTask a bastion"), "ecs:RunTask", "arn:aws:ecs:eu-west-1:111122223333:task-definition/bastion-ssh:3",
		with(requestTags("bastion-ttl", "2h0m0s", "bastion-ttl-owner", "AROAEXAMPLEOPERATOR1:carol"), inCluster(clusterArn)))
	c.deny(carol, name("PassRole the task role"), "iam:PassRole", roleArn("BastionTaskRole"), ctx{"iam:PassedToService": "ecs-tasks.amazonaws.com"})
	c.deny(carol, name("TagResource a bastion"), "ecs:TagResource", bobsTask, requestTags("bastion-ttl", "12h"))
}

// executionRoleCorpus: what ECS may do with the stack's execution role for a
// bastion, which is also all a person who passes it as a task role holds.
func executionRoleCorpus(c *corpus, docs templateDocs, repositories bool) {
	ecsExec := principal{arn: "arn:aws:sts::111122223333:assumed-role/" + physical["BastionExecutionRole"] + "/0123456789abcdef0123456789abcdef", identity: docs.identity["BastionExecutionRole"]}
	name := func(s string) string { return "BastionExecutionRole: " + s }
	repo := func(name string) string { return "arn:aws:ecr:eu-west-1:111122223333:repository/" + name }
	c.allow(ecsExec, name("CreateLogStream in the bastions' log group"), "logs:CreateLogStream", logStream(physical["BastionLogGroup.Arn"]), nil)
	c.allow(ecsExec, name("PutLogEvents to the bastions' log group"), "logs:PutLogEvents", logStream(physical["BastionLogGroup.Arn"]), nil)
	pull := []string{"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"}
	want := "Denied"
	if repositories {
		want = "Allowed"
	}
	c.add(want, ecsExec, name("GetAuthorizationToken (only with BastionImageRepositoryArns)"), "ecr:GetAuthorizationToken", "*", nil, "")
	for _, a := range pull {
		c.add(want, ecsExec, name(a+" from a named repository"), a, repo("bastion-ttl/supervisor"), nil, "")
		c.add(want, ecsExec, name(a+" through the named pull-through cache"), a, repo("ghcr/bastion-ttl/supervisor"), nil, "")
		c.deny(ecsExec, name(a+" from another repository"), a, repo("payments/api"), nil)
	}
	for _, a := range []string{"ecr:BatchImportUpstreamImage", "ecr:CreateRepository"} {
		c.add(want, ecsExec, name(a+": a pull-through cache's first pull"), a, repo("ghcr/bastion-ttl/supervisor"), nil, "")
		c.deny(ecsExec, name(a+" of another repository"), a, repo("payments/api"), nil)
	}
	c.deny(ecsExec, name("PutImage to a named repository"), "ecr:PutImage", repo("bastion-ttl/supervisor"), nil)
	c.deny(ecsExec, name("GetSecretValue (no secrets)"), "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db-password-AbCdEf", nil)
	c.deny(ecsExec, name("GetParameters (no parameters)"), "ssm:GetParameters", "arn:aws:ssm:eu-west-1:111122223333:parameter/db/password", nil)
	c.deny(ecsExec, name("kms:Decrypt"), "kms:Decrypt", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", nil)
	c.deny(ecsExec, name("PutLogEvents to the terminate function's log group (the alarms')"), "logs:PutLogEvents", logStream(physical["TerminateLogGroup.Arn"]), nil)
	c.deny(ecsExec, name("PutLogEvents to another log group"), "logs:PutLogEvents", "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/payments:log-stream:x", nil)
	c.deny(ecsExec, name("CreateLogGroup"), "logs:CreateLogGroup", "arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/other:*", nil)
	c.deny(ecsExec, name("StopTask"), "ecs:StopTask", bastionTask, bastionOf(aliceID))
	c.deny(ecsExec, name("invoke the API"), "execute-api:Invoke", apiRoute(physical["TerminateApi"], "$default", "POST", "terminate"), nil)
	c.assumeRole("Allowed", "BastionExecutionRole", "ECS tasks of this account", "ecs-tasks.amazonaws.com", ctx{"aws:SourceAccount": simAccount, "aws:SourceArn": bastionTask})
	c.assumeRole("Denied", "BastionExecutionRole", "ECS tasks of another account", "ecs-tasks.amazonaws.com", ctx{"aws:SourceAccount": otherAccount, "aws:SourceArn": foreignTask})
	c.assumeRole("Denied", "BastionExecutionRole", "Lambda", "lambda.amazonaws.com", ctx{"aws:SourceAccount": simAccount})
}

// The launcher policy for people without the stack's outputs is the
// template's, with placeholders for what the stack would fill in, and
// decides every launcher request as the stack's does.
func TestTemplateLauncherPolicyExample(t *testing.T) {
	launcherExample := filepath.Join(root, "examples", "launcher-policy.json")
	placeholders := map[string]string{"ClusterName": "CLUSTER", "BastionFamilies": "FAMILY"}
	want := renderPolicy(t, "LauncherPolicy", placeholders, map[string]any{
		"AWS::Region": "REGION", "AWS::AccountId": "ACCOUNT", "AWS::StackName": "STACK",
		"AWS::StackId":             "arn:aws:cloudformation:REGION:ACCOUNT:stack/STACK/*",
		"BastionTaskRole.Arn":      "TASK_ROLE_ARN",
		"BastionExecutionRole.Arn": "EXECUTION_ROLE_ARN",
		"LedgerTable.Arn":          "LEDGER_TABLE_ARN",
	})
	if *updateExamples {
		if err := os.WriteFile(launcherExample, policyJSON(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(launcherExample)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", launcherExample, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s is not the template's LauncherPolicy with placeholders: go test ./template -run TestTemplateLauncherPolicyExample -update-examples rewrites it\nwant:\n%s", launcherExample, policyJSON(want))
	}
	// Filled in as the README says, it decides as the stack's does.
	filled := strings.NewReplacer("REGION", simRegion, "ACCOUNT", simAccount, "CLUSTER", simCluster, "STACK", simStack, "FAMILY", "bastion-ssh",
		"TASK_ROLE_ARN", roleArn("BastionTaskRole"), "EXECUTION_ROLE_ARN", roleArn("BastionExecutionRole"),
		"LEDGER_TABLE_ARN", ledgerTable).Replace(string(b))
	var doc any
	if err := json.Unmarshal([]byte(filled), &doc); err != nil {
		t.Fatal(err)
	}
	var c corpus
	launcherCorpus(&c, "launcher example", []string{"bastion-ssh"})
	iamsim.Check(t, map[string]any{"launcher example": doc}, c.reqs)
}

// renderPolicy is the document of the template's managed policy id, deployed
// with params, every other name given by names.
func renderPolicy(t *testing.T, id string, params map[string]string, names map[string]any) any {
	t.Helper()
	raw := rawTransformedWith(t, params)
	tpl, err := cfn.Resolve(raw, params)
	if err != nil {
		t.Fatal(err)
	}
	given := deployment(raw, params)
	for k, v := range names {
		given[k] = v
	}
	doc, err := cfn.Evaluate(get(resources(tpl, "AWS::IAM::ManagedPolicy")[id], "Properties", "PolicyDocument"), given)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	// As JSON decodes it: the comparison is of values, not Go types.
	var out any
	if err := json.Unmarshal([]byte(jsonOf(doc)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// compact is v's JSON on one line, with a space after each separator (no
// value here holds the two characters that mark one).
func compact(v any) string {
	return strings.NewReplacer(`,"`, `, "`, `":`, `": `).Replace(jsonOf(v))
}

// policyJSON writes a policy document as people read one: each statement's
// members in IAM's order, one statement a block.
func policyJSON(doc any) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n")
	sts := list(get(doc, "Statement"))
	for i, st := range sts {
		b.WriteString("    {\n")
		var lines []string
		for _, k := range []string{"Sid", "Effect", "Action", "Resource", "Condition"} {
			v := get(st, k)
			if v == nil {
				continue
			}
			if k != "Condition" {
				lines = append(lines, "      "+jsonOf(k)+": "+compact(v))
				continue
			}
			var ops []string
			for _, op := range slices.Sorted(maps.Keys(v.(map[string]any))) {
				ops = append(ops, "        "+jsonOf(op)+": "+compact(get(v, op)))
			}
			lines = append(lines, "      \"Condition\": {\n"+strings.Join(ops, ",\n")+"\n      }")
		}
		b.WriteString(strings.Join(lines, ",\n"))
		b.WriteString("\n    }")
		if i < len(sts)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}
