package launcher

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// maxWait bounds the wait for a task to run; it keeps its TTL after.
const maxWait = 10 * time.Minute

// waitRunning shows the task's progress until it runs, then its deadline,
// its address and how to connect; a task that stops instead gives its
// reason. Interrupted, it leaves the task running: it has its TTL.
func waitRunning(ctx context.Context, env Env, cluster, arn string, ttl time.Duration, def *types.TaskDefinition, sup *string) error {
	t, err := waitUntilRunning(ctx, env, cluster, arn, ttl)
	if err == nil {
		printConnect(env, cluster, t, ttl, def, sup)
	}
	return err
}

// waitUntilRunning shows the task's progress until it runs, and returns it.
func waitUntilRunning(ctx context.Context, env Env, cluster, arn string, ttl time.Duration) (types.Task, error) {
	poll := env.Poll
	if poll <= 0 {
		poll = 3 * time.Second
	}
	began := env.Clock.Now()
	last := ""
	for {
		out, err := env.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
		if err != nil && ctx.Err() == nil {
			return types.Task{}, awsError("describe-tasks", err)
		}
		if err == nil && len(out.Tasks) == 1 {
			t := out.Tasks[0]
			status := termtext.Safe(aws.ToString(t.LastStatus))
			if status != last {
				fmt.Fprintf(env.Stdout, "%6.0fs  %s\n", env.Clock.Now().Sub(began).Seconds(), status)
				last = status
			}
			desired := aws.ToString(t.DesiredStatus)
			switch {
			case desired == "STOPPED" || status == "STOPPED" || status == "DEPROVISIONING" || status == "STOPPING" || status == "DEACTIVATING":
				return t, fmt.Errorf("the task stopped before it ran: %s", stopReasons(t))
			case status == "RUNNING":
				return t, nil
			}
		}
		if env.Clock.Sleep(ctx, poll) != nil {
			return types.Task{}, fmt.Errorf("%w: stopped waiting; the task %s keeps running and stops at its TTL (%s after it starts)", errInterrupted, taskID(arn), ttl)
		}
		if env.Clock.Now().Sub(began) > maxWait {
			return types.Task{}, fmt.Errorf("the task %s is still %s after %s; it keeps its TTL: bastion-ttl ls shows it", taskID(arn), last, maxWait)
		}
	}
}

// stopReasons are the task's and its containers' reasons, safe to print:
// anyone allowed StopTask writes a task's, and a container's may quote a
// registry's answer.
func stopReasons(t types.Task) string {
	why := []string{aws.ToString(t.StoppedReason)}
	for _, c := range t.Containers {
		if r := aws.ToString(c.Reason); r != "" {
			why = append(why, aws.ToString(c.Name)+": "+r)
		}
	}
	return termtext.Safe(strings.Join(why, "; "))
}

// printConnect says when the bastion stops, where it is, and how to get in.
func printConnect(env Env, cluster string, t types.Task, ttl time.Duration, def *types.TaskDefinition, sup *string) {
	id := taskID(aws.ToString(t.TaskArn))
	if t.StartedAt != nil {
		fmt.Fprintf(env.Stdout, "stops at %s (started %s + TTL %s)\n", t.StartedAt.Add(ttl).UTC().Format(time.RFC3339), t.StartedAt.UTC().Format(time.RFC3339), ttl)
	} else {
		fmt.Fprintf(env.Stdout, "stops %s after its start (ECS reports no start time yet)\n", ttl)
	}
	ip := termtext.Safe(privateIP(t))
	if ip != "" {
		fmt.Fprintf(env.Stdout, "private IP %s\n", ip)
	}
	bastion, port := bastionContainer(def, sup)
	bastion, cluster = termtext.Safe(bastion), termtext.Safe(cluster)
	fmt.Fprintln(env.Stdout, "connect:")
	if t.EnableExecuteCommand {
		fmt.Fprintf(env.Stdout, "  aws ecs execute-command --cluster %s --task %s --container %s --interactive --command /bin/sh\n", cluster, id, bastion)
		// A port forwarded through the task's SSM agent, then ssh to localhost.
		for _, c := range t.Containers {
			if aws.ToString(c.Name) == bastion && aws.ToString(c.RuntimeId) != "" && port != 0 {
				fmt.Fprintf(env.Stdout, "  aws ssm start-session --target ecs:%s_%s_%s --document-name AWS-StartPortForwardingSession --parameters portNumber=%d,localPortNumber=%d\n",
					ecsarn.ClusterName(cluster), id, termtext.Safe(aws.ToString(c.RuntimeId)), port, port)
			}
		}
	}
	if ip != "" && port != 0 {
		fmt.Fprintf(env.Stdout, "  ssh -p %d <user>@%s\n", port, ip)
	}
	if !t.EnableExecuteCommand && (ip == "" || port == 0) {
		fmt.Fprintln(env.Stdout, "  (no ECS Exec, and no private IP and port reported: see the task in the console)")
	}
}

// BastionContainerName is the container the stack's launcher policy lets
// people ECS Exec into (ecs:container-name): never the supervisor's.
const BastionContainerName = "bastion"

// bastionContainer is the bastion's container and its first port mapping:
// the one named BastionContainerName, else one beside the supervisor's, else
// the supervisor's own (the health-check variant has one container). The
// containers share one network namespace: a port any of them maps is the
// bastion's too.
func bastionContainer(def *types.TaskDefinition, sup *string) (string, int32) {
	var containers []types.ContainerDefinition
	if def != nil {
		containers = def.ContainerDefinitions
	}
	name, port := anyContainer(containers, sup)
	for _, c := range containers {
		if aws.ToString(c.Name) == BastionContainerName {
			return BastionContainerName, cmp.Or(firstPort(c), port)
		}
	}
	return name, port
}

func anyContainer(containers []types.ContainerDefinition, sup *string) (string, int32) {
	bastion, port := "", int32(0)
	for _, own := range []bool{false, true} {
		for _, c := range containers {
			if (aws.ToString(c.Name) == aws.ToString(sup)) != own || (bastion != "" && port != 0) {
				continue
			}
			if bastion == "" {
				bastion = aws.ToString(c.Name)
			}
			if p := firstPort(c); port == 0 && p != 0 {
				bastion, port = aws.ToString(c.Name), p
			}
		}
	}
	return bastion, port
}

func firstPort(c types.ContainerDefinition) int32 {
	for _, pm := range c.PortMappings {
		if pm.ContainerPort != nil {
			return *pm.ContainerPort
		}
	}
	return 0
}

func privateIP(t types.Task) string {
	for _, a := range t.Attachments {
		for _, d := range a.Details {
			if aws.ToString(d.Name) == "privateIPv4Address" {
				return aws.ToString(d.Value)
			}
		}
	}
	for _, c := range t.Containers {
		for _, n := range c.NetworkInterfaces {
			if ip := aws.ToString(n.PrivateIpv4Address); ip != "" {
				return ip
			}
		}
	}
	return ""
}
