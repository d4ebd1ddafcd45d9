package launcher

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// minLeftToReuse is the least time a bastion must have left to be reused
// (ConnectEnv.ReuseLeft may say less): less, and the session would end
// before it is of use.
const minLeftToReuse = 5 * time.Minute

// pickReusable is the caller's own running bastion with the most time left
// (at least minLeftToReuse) that was started with ECS Exec; nil when there
// is none. Ownership is the owner tag equal to the caller's user ID byte for
// byte, which the launcher policy lets nobody write but the caller: never a
// bastion of someone else, nor one whose tag holds an ARN or a like session
// name. A user ID no tag can hold is refused (ownerOK): its tag could only
// be someone else's.
func pickReusable(ctx context.Context, env Env, cluster string, bastions []Bastion, userID string) (*Bastion, types.Task, []string, error) {
	if err := ownerOK(userID); err != nil {
		return nil, types.Task{}, nil, err
	}
	now := env.Clock.Now()
	least := env.Connect.ReuseLeft
	if least <= 0 {
		least = minLeftToReuse
	}
	var mine []Bastion
	for _, b := range bastions {
		if b.Owner == userID && b.Status == "RUNNING" && b.Deadline != nil && b.Deadline.Sub(now) >= least {
			mine = append(mine, b)
		}
	}
	if len(mine) == 0 {
		return nil, types.Task{}, nil, nil
	}
	slices.SortFunc(mine, func(a, b Bastion) int { return b.Deadline.Compare(*a.Deadline) })
	mine = mine[:min(len(mine), 100)]
	var arns []string
	for _, b := range mine {
		arns = append(arns, b.TaskARN)
	}
	d, err := env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
	if err != nil {
		return nil, types.Task{}, nil, awsError("describe-tasks", err)
	}
	byARN := map[string]types.Task{}
	for _, t := range d.Tasks {
		byARN[aws.ToString(t.TaskArn)] = t
	}
	var notes []string
	for _, b := range mine {
		t, ok := byARN[b.TaskARN]
		if ok && t.EnableExecuteCommand {
			return &b, t, notes, nil
		}
		notes = append(notes, fmt.Sprintf("your bastion %s has no ECS Exec (started without --exec): not reused", b.TaskID))
	}
	return nil, types.Task{}, notes, nil
}

// markReuse marks the bastion a connect by the caller would reuse, and says
// so in a line for ls; "" when it cannot tell who calls.
func markReuse(ctx context.Context, env Env, cluster string, bastions []Bastion) string {
	if env.Caller == nil {
		return ""
	}
	who, err := whoCalls(ctx, env)
	if err != nil {
		return ""
	}
	if err := ownerOK(who.userID); err != nil {
		return fmt.Sprintf("bastion-ttl connect would refuse: your user ID %q %v", who.userID, ttltag.CheckOwner(who.userID))
	}
	b, _, _, err := pickReusable(ctx, env, cluster, bastions, who.userID)
	if err != nil {
		return ""
	}
	if b == nil {
		return fmt.Sprintf("bastion-ttl connect would start a bastion: none of yours here has ECS Exec and %s left", minLeftToReuse)
	}
	for i := range bastions {
		bastions[i].ConnectReuses = bastions[i].TaskARN == b.TaskARN
	}
	return fmt.Sprintf("bastion-ttl connect would reuse %s (yours, %s left)", b.TaskID, b.Left)
}
