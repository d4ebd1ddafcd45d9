// The ledger in the template: its table, the rule that feeds its function,
// the function's least privilege, who else may write and read it (decided
// by the IAM simulator, through ledgerCorpus in iam_decisions_test.go's corpus), its
// alarm and dashboard.
package template_test

import (
	"strings"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/metrics"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/cfn"
)

const (
	ledgerTable = "arn:aws:dynamodb:eu-west-1:111122223333:table/bastion-ttl-LedgerTable-1LEDGER1"
	otherTable  = "arn:aws:dynamodb:eu-west-1:111122223333:table/payments"
)

// ledgerCorpus: the ledger function writes its table only and reads the
// cluster's tasks' tags only; the terminate function and the sweeper write
// the table; a launcher reads her own items through the owner index and
// nobody else's; an operator reads it all and writes nothing.
func ledgerCorpus(c *corpus, docs templateDocs, params map[string]string) {
	role := func(logical, fn string) principal {
		return principal{arn: "arn:aws:sts::111122223333:assumed-role/" + physical[logical] + "/" + physical[fn], identity: docs.identity[logical]}
	}
	fn := role("LedgerFunctionRole", "LedgerFunction")
	c.allow(fn, "ledger: UpdateItem its table", "dynamodb:UpdateItem", ledgerTable, nil)
	c.allow(fn, "ledger: GetItem its table", "dynamodb:GetItem", ledgerTable, nil)
	c.allow(fn, "ledger: ListTagsForResource of a bastion", "ecs:ListTagsForResource", bastionTask, nil)
	c.allow(fn, "ledger: CreateLogStream", "logs:CreateLogStream", logStream(physical["LedgerLogGroup.Arn"]), nil)
	c.allow(fn, "ledger: PutLogEvents", "logs:PutLogEvents", logStream(physical["LedgerLogGroup.Arn"]), nil)
	c.deny(fn, "ledger: UpdateItem another table", "dynamodb:UpdateItem", otherTable, nil)
	c.deny(fn, "ledger: PutItem another table", "dynamodb:PutItem", otherTable, nil)
	c.deny(fn, "ledger: DeleteItem its table", "dynamodb:DeleteItem", ledgerTable, nil)
	c.deny(fn, "ledger: Scan its table", "dynamodb:Scan", ledgerTable, nil)
	c.deny(fn, "ledger: DeleteTable", "dynamodb:DeleteTable", ledgerTable, nil)
	c.deny(fn, "ledger: ListTagsForResource in another cluster", "ecs:ListTagsForResource", otherTask, nil)
	c.deny(fn, "ledger: TagResource", "ecs:TagResource", bastionTask, ctx{"aws:TagKeys": []string{"bastion-ttl"}, "aws:RequestTag/bastion-ttl": "12h"})
	c.deny(fn, "ledger: StopTask", "ecs:StopTask", bastionTask, inCluster(clusterArn))
	c.deny(fn, "ledger: PutLogEvents to the sweeper's log group", "logs:PutLogEvents", logStream(physical["SweepLogGroup.Arn"]), nil)
	if params["AlarmTopicArn"] != "" {
		c.allow(fn, "ledger: Publish a failed event to AlarmTopicArn", "sns:Publish", simTopic, nil)
	} else {
		c.deny(fn, "ledger: Publish with no AlarmTopicArn", "sns:Publish", simTopic, nil)
	}
	c.assumeRole("Allowed", "LedgerFunctionRole", "Lambda", "lambda.amazonaws.com", nil)
	c.assumeRole("Denied", "LedgerFunctionRole", "ECS tasks", "ecs-tasks.amazonaws.com", ctx{"aws:SourceAccount": simAccount})

	for logical, fnName := range map[string]string{"TerminateFunctionRole": "TerminateFunction", "SweepFunctionRole": "SweepFunction"} {
		w := role(logical, fnName)
		c.allow(w, logical+": UpdateItem the ledger", "dynamodb:UpdateItem", ledgerTable, nil)
		c.allow(w, logical+": GetItem the ledger", "dynamodb:GetItem", ledgerTable, nil)
		c.deny(w, logical+": UpdateItem another table", "dynamodb:UpdateItem", otherTable, nil)
		c.deny(w, logical+": DeleteItem the ledger", "dynamodb:DeleteItem", ledgerTable, nil)
	}

	// Who may invoke the ledger function: its rule.
	rp := physical["LedgerFunction"] + " resource policy"
	events := principal{arn: "events.amazonaws.com"}
	c.add("Allowed", events, "invoke: the task state change rule", "lambda:InvokeFunction", physical["LedgerFunction.Arn"], ctx{"aws:SourceArn": physical["LedgerFunctionTaskStateChange.Arn"]}, rp)
	c.add("Denied", events, "invoke: the sweep schedule, the ledger", "lambda:InvokeFunction", physical["LedgerFunction.Arn"], ctx{"aws:SourceArn": physical["SweepFunctionSweep.Arn"]}, rp)

	// People: the launcher her own items, through the owner index only.
	ownerIndex := ledgerTable + "/index/" + ledger.OwnerIndex
	alice := principal{arn: "arn:aws:sts::111122223333:assumed-role/developers/alice", identity: []string{"LauncherPolicy"}, context: ctx{"aws:userid": aliceID}}
	c.allow(alice, "LauncherPolicy: history: Query the owner index for her own", "dynamodb:Query", ownerIndex, ctx{"dynamodb:LeadingKeys": []string{aliceID}})
	c.deny(alice, "LauncherPolicy: Query the owner index for bob's", "dynamodb:Query", ownerIndex, ctx{"dynamodb:LeadingKeys": []string{bobID}})
	c.deny(alice, "LauncherPolicy: Query the family index", "dynamodb:Query", ledgerTable+"/index/"+ledger.FamilyIndex, ctx{"dynamodb:LeadingKeys": []string{"bastion-ssh"}})
	c.deny(alice, "LauncherPolicy: Query the table by a task ARN", "dynamodb:Query", ledgerTable, ctx{"dynamodb:LeadingKeys": []string{bastionTask}})
	c.deny(alice, "LauncherPolicy: GetItem a task's item", "dynamodb:GetItem", ledgerTable, ctx{"dynamodb:LeadingKeys": []string{bastionTask}})
	c.deny(alice, "LauncherPolicy: Scan the owner index", "dynamodb:Scan", ownerIndex, nil)
	c.deny(alice, "LauncherPolicy: UpdateItem the ledger", "dynamodb:UpdateItem", ledgerTable, ctx{"dynamodb:LeadingKeys": []string{bastionTask}})
	// The operator all of it, and writes nothing.
	carol := principal{arn: "arn:aws:sts::111122223333:assumed-role/operators/carol", identity: []string{"OperatorPolicy"}, context: ctx{"aws:userid": "AROAEXAMPLEOPERATOR1:carol"}}
	c.allow(carol, "OperatorPolicy: GetItem any bastion's item", "dynamodb:GetItem", ledgerTable, ctx{"dynamodb:LeadingKeys": []string{bastionTask}})
	c.allow(carol, "OperatorPolicy: Query bob's items", "dynamodb:Query", ownerIndex, ctx{"dynamodb:LeadingKeys": []string{bobID}})
	c.allow(carol, "OperatorPolicy: Query a family's items", "dynamodb:Query", ledgerTable+"/index/"+ledger.FamilyIndex, ctx{"dynamodb:LeadingKeys": []string{"bastion-ssh"}})
	c.allow(carol, "OperatorPolicy: Scan the ledger", "dynamodb:Scan", ledgerTable, nil)
	c.deny(carol, "OperatorPolicy: UpdateItem the ledger", "dynamodb:UpdateItem", ledgerTable, ctx{"dynamodb:LeadingKeys": []string{bastionTask}})
	c.deny(carol, "OperatorPolicy: DeleteItem the ledger", "dynamodb:DeleteItem", ledgerTable, ctx{"dynamodb:LeadingKeys": []string{bastionTask}})
	c.deny(carol, "OperatorPolicy: Scan another table", "dynamodb:Scan", otherTable, nil)
}

// The table, the rule and the function, as the stack makes them for each
// setting of BastionFamilies.
func TestTemplateLedger(t *testing.T) {
	for families, groups := range map[string][]any{"": {"family:bastion-ssh"}, "bastion-ssh,db-tunnel": {"family:bastion-ssh", "family:db-tunnel"}} {
		params := map[string]string{"ClusterName": simCluster}
		if families != "" {
			params["BastionFamilies"] = families
		}
		tpl := transformedFor(t, params)
		table := resources(tpl, "AWS::DynamoDB::Table")["LedgerTable"]
		p := get(table, "Properties")
		if get(table, "DeletionPolicy") != "Retain" || get(p, "BillingMode") != "PAY_PER_REQUEST" ||
			get(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true || get(p, "SSESpecification", "SSEEnabled") != true ||
			get(p, "TimeToLiveSpecification", "AttributeName") != ledger.AttrExpiresAt || get(p, "TimeToLiveSpecification", "Enabled") != true {
			t.Errorf("table %s", jsonOf(table))
		}
		if !same(get(p, "KeySchema"), []any{object{"AttributeName": ledger.AttrTaskARN, "KeyType": "HASH"}}) {
			t.Errorf("key %s", jsonOf(get(p, "KeySchema")))
		}
		indexes := map[string]string{}
		for _, gsi := range list(get(p, "GlobalSecondaryIndexes")) {
			ks := list(get(gsi, "KeySchema"))
			indexes[get(gsi, "IndexName").(string)] = get(ks[0], "AttributeName").(string) + "+" + get(ks[1], "AttributeName").(string)
		}
		if want := map[string]string{ledger.OwnerIndex: ledger.AttrOwner + "+" + ledger.AttrCreatedAt, ledger.FamilyIndex: ledger.AttrFamily + "+" + ledger.AttrCreatedAt}; !same(indexes, want) {
			t.Errorf("indexes %v, want %v", indexes, want)
		}

		rule := resources(tpl, "AWS::Events::Rule")["LedgerFunctionTaskStateChange"]
		pattern, err := cfn.Evaluate(get(rule, "Properties", "EventPattern"), deployment(rawTransformedWith(t, params), params))
		if err != nil {
			t.Fatal(err)
		}
		want := object{"source": []any{"aws.ecs"}, "detail-type": []any{"ECS Task State Change"}, "detail": object{
			"clusterArn": []any{clusterArn},
			"$or":        []any{object{"startedBy": []any{"bastion-ttl"}}, object{"group": groups}},
		}}
		if !same(pattern, want) {
			t.Errorf("BastionFamilies %q: pattern\n %s\nwant\n %s", families, jsonOf(pattern), jsonOf(want))
		}
	}

	tpl := transformed(t)
	fns := resources(tpl, "AWS::Lambda::Function")
	env := get(fns["LedgerFunction"], "Properties", "Environment", "Variables")
	if !same(get(env, ledger.TableVariable), ref("LedgerTable")) || !same(get(env, "BASTION_CLUSTER"), ref("ClusterName")) ||
		!same(get(env, "LEDGER_RETENTION_DAYS"), ref("LedgerRetentionDays")) || !same(get(env, "BASTION_SWEEP_SCHEDULE"), ref("SweepSchedule")) {
		t.Errorf("LedgerFunction environment %s", jsonOf(env))
	}
	for _, fn := range []string{"TerminateFunction", "SweepFunction"} {
		if got := get(fns[fn], "Properties", "Environment", "Variables", ledger.TableVariable); !same(got, ref("LedgerTable")) {
			t.Errorf("%s LEDGER_TABLE = %s", fn, jsonOf(got))
		}
	}
	if d := get(tpl, "Parameters", "LedgerRetentionDays", "Default"); d != 400.0 && d != "400" {
		t.Errorf("LedgerRetentionDays default %v, want 400", d)
	}
	alarm := resources(tpl, "AWS::CloudWatch::Alarm")["PromiseBrokenAlarm"]
	if get(alarm, "Properties", "MetricName") != metrics.PromiseBroken ||
		!same(get(alarm, "Properties", "Dimensions"), []any{object{"Name": metrics.Ledger, "Value": ref("LedgerTable")}}) {
		t.Errorf("PromiseBrokenAlarm %s", jsonOf(alarm))
	}
	board := jsonOf(get(resources(tpl, "AWS::CloudWatch::Dashboard")["Dashboard"], "Properties", "DashboardBody"))
	if !strings.Contains(board, `[\"bastion-ttl\", \"Lateness\", \"Ledger\", \"${LedgerTable}\", {\"stat\": \"p90\"`) {
		t.Errorf("the dashboard shows no lateness distribution:\n%s", board)
	}
}
