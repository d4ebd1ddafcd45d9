package launcher

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// stopCmd is bastion-ttl stop.
func stopCmd(env *Env) *cli.Command {
	var c common
	var force bool
	return &cli.Command{
		Name:      "stop",
		UsageLine: "stop [--cluster C] [--force] TASK...",
		Short:     "stop bastions",
		Long: `Stop stops the bastions named by their task IDs or ARNs (1 to 100), and
says who stopped them in ECS's stop reason. It stops nothing when one is not
a task of the cluster, or has no bastion-ttl tag (--force stops it anyway).`,
		Flags: func(fs *flag.FlagSet) error {
			c.register(fs, env.Environ)
			fs.BoolVar(&force, "force", false, "stop a task without the bastion-ttl tag too")
			return nil
		},
		Run: withAWS(env, func(ctx context.Context, args []string) error { return stopCommand(ctx, args, *env, c, force) }),
	}
}

func stopCommand(ctx context.Context, args []string, env Env, c common, force bool) error {
	if len(args) == 0 || len(args) > 100 {
		return badf("stop takes 1 to 100 tasks to stop (IDs or ARNs): bastion-ttl stop TASK...")
	}
	cluster, err := resolveCluster(ctx, env, c)
	if err != nil {
		return err
	}
	d, err := env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: args, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil {
		return clusterError(cluster, err)
	}
	found := map[string]bool{}
	for _, t := range d.Tasks {
		found[aws.ToString(t.TaskArn)], found[taskID(aws.ToString(t.TaskArn))] = true, true
	}
	var missing []string
	for _, ref := range args {
		if !found[ref] {
			missing = append(missing, ref)
		}
	}
	if len(missing) > 0 {
		return badf("not tasks of %s: %s; nothing stopped", cluster, strings.Join(missing, ", "))
	}
	for _, t := range d.Tasks {
		if _, marked := ttltag.Find(t.Tags); !marked && !force {
			return badf("task %s has no %s tag: not a bastion? (--force stops it anyway); nothing stopped", taskID(aws.ToString(t.TaskArn)), ttltag.Key)
		}
	}
	who, err := whoCalls(ctx, env)
	if err != nil {
		return err
	}
	var stopped []string
	for _, t := range d.Tasks {
		if _, err := env.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: t.TaskArn,
			Reason: aws.String(lifetime.CutStopReason("bastion-ttl: stopped by " + who.arn))}); err != nil {
			if len(stopped) == 0 {
				return awsError("stop-task "+taskID(aws.ToString(t.TaskArn)), err)
			}
			// Some are stopped already: not bad input, and it says which.
			return fmt.Errorf("stopped %s, then stop-task %s: %s", strings.Join(stopped, ", "), taskID(aws.ToString(t.TaskArn)), termtext.Safe(err.Error()))
		}
		stopped = append(stopped, taskID(aws.ToString(t.TaskArn)))
		fmt.Fprintf(env.Stdout, "stopping %s\n", taskID(aws.ToString(t.TaskArn)))
	}
	return nil
}
