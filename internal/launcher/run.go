package launcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

type runFlags struct {
	common
	taskDefinition, ttl, idle, subnets, securityGroups, launchType string
	publicIP, wait                                                 bool
}

func runCommand(ctx context.Context, args []string, env Env) error {
	var f runFlags
	fs := newFlags("run", env, &f.common)
	fs.StringVar(&f.taskDefinition, "task-definition", env.Environ["BASTION_TASK_DEFINITION"], "the bastion's task definition (family[:revision] or ARN)")
	fs.StringVar(&f.ttl, "ttl", "2h", "how long the bastion lives")
	fs.StringVar(&f.idle, "idle", "", "stop after this long without a session (default: the stack's IdleTimeout; 0 is off)")
	fs.StringVar(&f.subnets, "subnets", env.Environ["BASTION_SUBNETS"], "comma-separated subnet IDs (awsvpc)")
	fs.StringVar(&f.securityGroups, "security-groups", env.Environ["BASTION_SECURITY_GROUPS"], "comma-separated security group IDs (awsvpc)")
	fs.BoolVar(&f.publicIP, "public-ip", false, "give the task a public IP (a public subnet without NAT)")
	fs.StringVar(&f.launchType, "launch-type", env.Environ["BASTION_LAUNCH_TYPE"], "FARGATE or EC2 (default: FARGATE when the task definition is compatible, else the cluster's default)")
	fs.BoolVar(&f.wait, "wait", true, "wait until it runs, then say how to connect")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badf("run takes no arguments, got %q", fs.Args())
	}
	ttl, err := time.ParseDuration(f.ttl)
	if err != nil || ttl <= 0 {
		return badf("--ttl %q is not a positive duration such as 2h or 90m", f.ttl)
	}
	d, err := stackDefaults(ctx, env, f.stack)
	if err != nil {
		return err
	}
	f.cluster = or(f.cluster, d.cluster)
	f.taskDefinition = or(f.taskDefinition, d.taskDefinition)
	if err := need(f.cluster, "cluster", "BASTION_CLUSTER", "ClusterName", f.stack, d); err != nil {
		return err
	}
	if err := need(f.taskDefinition, "task-definition", "BASTION_TASK_DEFINITION", "TaskDefinition", f.stack, d); err != nil {
		return err
	}
	if d.maxTTL > 0 && ttl > d.maxTTL {
		return badf("--ttl %s is above the stack's cap, MaxTTL %s: the sweeper would stop the bastion at the cap", ttl, d.maxTTL)
	}
	idle := or(f.idle, d.idleTimeout)
	if idle != "" && idle != "0" {
		if i, err := time.ParseDuration(idle); err != nil || i < time.Second {
			return badf("--idle %q is not 0 (off) or a duration of at least 1s, such as 15m", idle)
		}
	}
	if err := clusterExists(ctx, env, f.cluster); err != nil {
		return err
	}
	td, err := env.ECS.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(f.taskDefinition)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ClientException" {
			return badf("task definition %q not found: register one (examples/sidecar-task-definition.json) or pass --task-definition", f.taskDefinition)
		}
		return awsError("the task definition "+f.taskDefinition, err)
	}
	def := td.TaskDefinition
	sup, err := supervisorContainer(def)
	if err != nil {
		return badf("task definition %s: %v", f.taskDefinition, err)
	}
	in := &ecs.RunTaskInput{
		Cluster:        aws.String(f.cluster),
		TaskDefinition: def.TaskDefinitionArn,
		Count:          aws.Int32(1),
		StartedBy:      aws.String(StartedBy),
		// The supervisor's TTL and the sweeper's tag: one value, so they agree.
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{
			Name:        sup,
			Environment: overrides(ttl, idle),
		}}},
		Tags: []types.Tag{{Key: aws.String(TTLTag), Value: aws.String(ttl.String())}},
	}
	if owner, err := callerARN(ctx, env); err == nil {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(OwnerTag), Value: aws.String(owner)})
	} else if ue := (usageError{}); errors.As(err, &ue) {
		return err
	}
	switch strings.ToUpper(f.launchType) {
	case "":
		if slices.Contains(def.RequiresCompatibilities, types.CompatibilityFargate) || slices.Contains(def.Compatibilities, types.CompatibilityFargate) {
			in.LaunchType = types.LaunchTypeFargate
		}
	case "FARGATE":
		in.LaunchType = types.LaunchTypeFargate
	case "EC2":
		in.LaunchType = types.LaunchTypeEc2
	default:
		return badf("--launch-type %q: use FARGATE or EC2", f.launchType)
	}
	if def.NetworkMode == types.NetworkModeAwsvpc {
		subnets, groups := or2(splitList(f.subnets), d.subnets), or2(splitList(f.securityGroups), d.securityGroups)
		if len(subnets) == 0 {
			return badf("task definition %s uses awsvpc: pass --subnets (or set BASTION_SUBNETS, or the stack's Subnets output)", f.taskDefinition)
		}
		assign := types.AssignPublicIpDisabled
		if f.publicIP {
			assign = types.AssignPublicIpEnabled
		}
		in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: subnets, SecurityGroups: groups, AssignPublicIp: assign,
		}}
	}
	out, err := env.ECS.RunTask(ctx, in)
	if err != nil {
		return awsError("run-task", err)
	}
	if len(out.Failures) > 0 || len(out.Tasks) == 0 {
		var why []string
		for _, fl := range out.Failures {
			why = append(why, aws.ToString(fl.Reason)+" "+aws.ToString(fl.Detail))
		}
		return fmt.Errorf("run-task started nothing: %s", strings.Join(why, "; "))
	}
	task := out.Tasks[0]
	arn := aws.ToString(task.TaskArn)
	fmt.Fprintf(env.Stdout, "started %s in %s: TTL %s", taskID(arn), f.cluster, ttl)
	if idle != "" && idle != "0" {
		fmt.Fprintf(env.Stdout, ", idle timeout %s", idle)
	}
	fmt.Fprintln(env.Stdout)
	if !f.wait {
		return nil
	}
	return waitRunning(ctx, env, f.cluster, arn, ttl, def, sup)
}

func or2(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

func overrides(ttl time.Duration, idle string) []types.KeyValuePair {
	env := []types.KeyValuePair{{Name: aws.String("BASTION_TTL"), Value: aws.String(ttl.String())}}
	if idle != "" {
		env = append(env, types.KeyValuePair{Name: aws.String("BASTION_IDLE_TIMEOUT"), Value: aws.String(idle)})
	}
	return env
}

// clusterExists refuses a cluster ECS does not know, before anything starts.
func clusterExists(ctx context.Context, env Env, cluster string) error {
	out, err := env.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{cluster}})
	if err != nil {
		return awsError("the cluster "+cluster, err)
	}
	for _, c := range out.Clusters {
		if aws.ToString(c.Status) == "ACTIVE" {
			return nil
		}
	}
	return badf("cluster %q does not exist (or is not active) in this account and region: pass --cluster, or check AWS_PROFILE and AWS_REGION", cluster)
}

// supervisorContainer is the container that runs the supervisor: its
// command is watch, or its health check runs supervisor check.
func supervisorContainer(def *types.TaskDefinition) (*string, error) {
	for _, c := range def.ContainerDefinitions {
		if len(c.Command) > 0 && c.Command[0] == "watch" {
			return c.Name, nil
		}
	}
	for _, c := range def.ContainerDefinitions {
		if c.HealthCheck != nil && strings.Contains(strings.Join(c.HealthCheck.Command, " "), "supervisor check") {
			return c.Name, nil
		}
	}
	return nil, errors.New("no container runs the supervisor (a command of watch, or a health check running supervisor check): its TTL cannot be set")
}

func taskID(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// clusterName is a cluster's name, given its name or ARN.
func clusterName(cluster string) string { return cluster[strings.LastIndexByte(cluster, '/')+1:] }
