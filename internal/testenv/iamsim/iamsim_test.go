package iamsim_test

import (
	"slices"
	"testing"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/iamsim"
)

type object = map[string]any

// The key check fails a policy whose condition names a key the action does
// not offer: the shape of the launcher policy that could launch nothing
// (ecs:TagResource has no ecs:cluster key, so the condition never held).
func TestSimulateFlagsKeysTheActionLacks(t *testing.T) {
	const (
		clusterArn  = "arn:aws:ecs:eu-west-1:111122223333:cluster/bastions"
		bastionTask = "arn:aws:ecs:eu-west-1:111122223333:task/bastions/0123456789abcdef0123456789abcdef"
	)
	policies := map[string]any{"tag-in-cluster": object{"Version": "2012-10-17", "Statement": []any{object{
		"Sid": "TagInTheCluster", "Effect": "Allow", "Action": []any{"ecs:RunTask", "ecs:TagResource"}, "Resource": "*",
		"Condition": object{"ArnEquals": object{"ecs:cluster": clusterArn}}}, object{
		"Sid": "NoSuchKey", "Effect": "Allow", "Action": "ecs:StopTask", "Resource": "*",
		"Condition": object{"StringEquals": object{"ecs:no-such-key": "x"}}}}}}
	reqs := []iamsim.Request{{Name: "tag on create", Principal: "arn:aws:sts::111122223333:assumed-role/developers/alice", Action: "ecs:TagResource", Resource: bastionTask,
		Account: "111122223333", Context: object{"ecs:CreateAction": "RunTask", "aws:TagKeys": []string{"bastion-ttl"}, "aws:RequestTag/bastion-ttl": "2h"}, Identity: []string{"tag-in-cluster"}}}
	results, problems := iamsim.Simulate(t, policies, reqs)
	if results[0].Decision != iamsim.ImplicitlyDenied {
		t.Errorf("tag on create under an ecs:cluster condition: %+v, want ImplicitlyDenied", results[0])
	}
	var found []string
	for _, p := range problems {
		found = append(found, p.Statement+" "+p.Action+" "+p.Key)
	}
	slices.Sort(found)
	want := []string{"NoSuchKey ecs:StopTask ecs:no-such-key", "TagInTheCluster ecs:TagResource ecs:cluster"}
	if !slices.Equal(found, want) {
		t.Errorf("problems %v, want %v", found, want)
	}
}
