package testenv

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv/moto"
)

// Region and Account are moto's defaults.
const (
	Region  = "eu-west-1"
	Account = "123456789012"
)

// MotoECS starts moto_server behind the mending proxy and returns the
// proxy's URL and a real ECS client pointed at it.
func MotoECS(t testing.TB) (string, *ecs.Client) {
	t.Helper()
	target, err := url.Parse(Moto(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(moto.New(target))
	t.Cleanup(proxy.Close)
	return proxy.URL, ECSClient(proxy.URL)
}

// ECSClient is the real SDK client for a local endpoint.
func ECSClient(endpoint string) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "test", ""),
	})
}

// RunTasks creates cluster (if needed) and starts n tasks of a bridge-mode
// task definition (moto cannot run awsvpc ones) with tags, returning their ARNs.
func RunTasks(t testing.TB, c *ecs.Client, cluster string, n int32, tags ...types.Tag) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String("bastion"),
		NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("ssh"), Image: aws.String("bastion:latest"), Memory: aws.Int32(128), Cpu: 64, Essential: aws.Bool(true),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := c.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String("bastion"), Count: aws.Int32(n),
		LaunchType: types.LaunchTypeFargate, Tags: tags,
	})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, task := range out.Tasks {
		arns = append(arns, aws.ToString(task.TaskArn))
	}
	if len(arns) != int(n) {
		t.Fatalf("ran %d tasks, want %d (failures %+v)", len(arns), n, out.Failures)
	}
	return arns
}

// Describe returns the tasks by ARN.
func Describe(t testing.TB, c *ecs.Client, cluster string, arns []string) map[string]types.Task {
	t.Helper()
	out, err := c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]types.Task{}
	for _, task := range out.Tasks {
		m[aws.ToString(task.TaskArn)] = task
	}
	return m
}

// Tag is the value of the task's tag key, "" when it has none.
func Tag(t testing.TB, c *ecs.Client, arn, key string) string {
	t.Helper()
	out, err := c.ListTagsForResource(context.Background(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range out.Tags {
		if aws.ToString(tag.Key) == key {
			return aws.ToString(tag.Value)
		}
	}
	return ""
}

// Overrides says a task's container overrides, one per "; ": name,
// command, environment in order; "none" when it has none.
func Overrides(o *types.TaskOverride) string {
	if o == nil {
		return "none"
	}
	var lines []string
	for _, c := range o.ContainerOverrides {
		var env []string
		for _, kv := range c.Environment {
			env = append(env, aws.ToString(kv.Name)+"="+aws.ToString(kv.Value))
		}
		lines = append(lines, fmt.Sprintf("%s: command %q environment %q", aws.ToString(c.Name), c.Command, env))
	}
	return strings.Join(lines, "; ")
}
