package ecsapi_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv/moto"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// The stand-in (package ecsapi) and moto_server (behind the mending proxy,
// package moto) both play ECS in this project's tests: the stand-in where
// moto cannot (make demo without moto, injected faults, ECS Exec), moto
// elsewhere. TestConformance runs both through the same scenarios, with the
// real SDK client and the calls the project makes, and pins each answer:
// the same for both, or, for a known difference, each one's own with what
// AWS documents. A new difference fails the test, and so does one that
// goes away.
//
// moto's bugs the tests already route around, each asserted where it is
// mended: cpu and memory as JSON numbers, and an HTML 500 for a task it
// does not know (the mending proxy; moto/unmended below); task states that
// advance at every DescribeTasks (frozen by testenv.Moto); no awsvpc tasks
// (testenv.RunTasks runs a bridge-mode task definition).

// backend is one ECS endpoint and how to put things in it.
type backend struct {
	endpoint string
	ecs      *ecs.Client
	// unmended is moto's own endpoint, without the mending proxy.
	unmended string
	// cluster makes a cluster named name.
	cluster func(t *testing.T, name string)
	// run starts one task in cluster, tagged: RunTask on moto; the
	// stand-in serves no RunTask and is given the task.
	run func(t *testing.T, cluster string, tags ...types.Tag) string
}

// backends are the stand-in, always, and moto, which skips loudly where
// moto_server is missing (fails under BASTION_TEST_STRICT=1), and under
// -short as every test that needs moto does.
var backends = []struct {
	name  string
	start func(t *testing.T) backend
}{{"ecsapi", standIn}, {"moto", motoBackend}}

func standIn(t *testing.T) backend {
	api := ecsapi.New()
	api.TaskDefinitions = map[string]map[string]any{"bastion": {
		"family": "bastion", "revision": 1, "status": "ACTIVE",
		"taskDefinitionArn":    arn("task-definition/bastion:1"),
		"containerDefinitions": []map[string]any{{"name": "ssh", "image": "bastion:latest"}},
	}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	n := 0
	return backend{
		endpoint: srv.URL,
		ecs:      testenv.ECSClient(srv.URL),
		cluster:  func(_ *testing.T, name string) { api.AddCluster(arn("cluster/" + name)) },
		run: func(_ *testing.T, cluster string, tags ...types.Tag) string {
			n++
			task := ecsapi.Task{
				ARN:        arn(fmt.Sprintf("task/%s/%032x", cluster, n)),
				ClusterARN: arn("cluster/" + cluster), StartedAt: time.Now(),
				TaskDefinitionARN: arn("task-definition/bastion:1"), Containers: []string{"ssh"},
				Tags: map[string]string{},
			}
			for _, tag := range tags {
				task.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			api.Add(task)
			return task.ARN
		},
	}
}

func motoBackend(t *testing.T) backend {
	// testenv.MotoECS, keeping moto's own URL too.
	unmended := testenv.Moto(t)
	target, err := url.Parse(unmended)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(moto.New(target))
	t.Cleanup(proxy.Close)
	client := testenv.ECSClient(proxy.URL)
	return backend{
		endpoint: proxy.URL,
		unmended: unmended,
		ecs:      client,
		cluster: func(t *testing.T, name string) {
			if _, err := client.CreateCluster(context.Background(), &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
				t.Fatal(err)
			}
		},
		run: func(t *testing.T, cluster string, tags ...types.Tag) string {
			return testenv.RunTasks(t, client, cluster, 1, tags...)[0]
		},
	}
}

func arn(resource string) string {
	return "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":" + resource
}

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// scenario is one thing the project asks ECS, and what each backend answers,
// said as a short line without ARNs. want is the answer of both; a known
// difference has moto and ecsapi instead, aws (what AWS documents) and ref.
type scenario struct {
	name string
	do   func(t *testing.T, b backend) string
	want string

	moto, ecsapi string
	aws, ref     string
}

func (s scenario) wantFor(backend string) string {
	switch {
	case s.want != "":
		return s.want
	case backend == "moto":
		return s.moto
	}
	return s.ecsapi
}

// check says what is wrong with the scenario's table entry, if anything.
func (s scenario) check() string {
	difference := s.moto != "" || s.ecsapi != "" || s.aws != "" || s.ref != ""
	switch {
	case s.want != "" && difference:
		return "want (both agree) or a difference, not both"
	case s.want == "" && (s.moto == "" || s.ecsapi == "" || s.aws == "" || !strings.HasPrefix(s.ref, "https://docs.aws.amazon.com/")):
		return "a difference needs moto, ecsapi, aws and ref (AWS's documentation)"
	case s.want == "" && s.moto == s.ecsapi:
		return "a difference with one answer is an agreement: use want"
	}
	return ""
}

// Each scenario makes clusters of its own (moto's state is shared by all),
// and no cluster's name is in another's but where that is the point: moto's
// ListTasks matches a cluster's name anywhere in a task's cluster ARN.
var scenarios = []scenario{
	{
		name: "RunTask with tags",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "runtask")
			b.run(t, "runtask") // registers the task definition on moto
			out, err := b.ecs.RunTask(context.Background(), &ecs.RunTaskInput{Cluster: aws.String("runtask"), TaskDefinition: aws.String("bastion"),
				LaunchType: types.LaunchTypeFargate, Tags: []types.Tag{tag(ttltag.Key, "1h"), tag(ttltag.OwnerKey, "AIDAEXAMPLE")}})
			if err != nil {
				return code(err)
			}
			return taskLines(out.Tasks)
		},
		moto:   "RUNNING/RUNNING tags bastion-ttl-owner=AIDAEXAMPLE bastion-ttl=1h",
		ecsapi: "UnknownOperationException",
		aws:    "RunTask starts the task and answers it; the stand-in is given its tasks (Server.Add) and leaves RunTask to moto, behind ExecLayer in the launcher's tests",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html",
	},
	{
		name: "DescribeTasks include TAGS",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "described")
			task := b.run(t, "described", tag(ttltag.Key, "2h"), tag(ttltag.OwnerKey, "AIDAEXAMPLE"))
			return describe(b, "described", []types.TaskField{types.TaskFieldTags}, task)
		},
		want: "RUNNING/RUNNING tags bastion-ttl-owner=AIDAEXAMPLE bastion-ttl=2h; failures none",
	},
	{
		name: "DescribeTasks without include has no tags",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "untagged")
			return describe(b, "untagged", nil, b.run(t, "untagged", tag(ttltag.Key, "2h")))
		},
		want: "RUNNING/RUNNING tags none; failures none",
	},
	{
		name: "DescribeTasks by task ID",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "byid")
			task := b.run(t, "byid", tag(ttltag.Key, "2h"))
			return describe(b, "byid", []types.TaskField{types.TaskFieldTags}, task[strings.LastIndexByte(task, '/')+1:])
		},
		want: "RUNNING/RUNNING tags bastion-ttl=2h; failures none",
	},
	{
		name: "DescribeTasks startedAt",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "started")
			out, err := b.ecs.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String("started"), Tasks: []string{b.run(t, "started")}})
			if err != nil {
				return code(err)
			}
			if len(out.Tasks) != 1 || out.Tasks[0].StartedAt == nil {
				return "no startedAt"
			}
			return "startedAt"
		},
		moto:   "no startedAt",
		ecsapi: "startedAt",
		aws:    "a RUNNING task has startedAt (the sweeper skips a task without one); ExecLayer adds it in front of moto",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html",
	},
	{
		name: "DescribeTasks of a missing task",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "missing")
			task := b.run(t, "missing")
			return describe(b, "missing", nil, task, arn("task/missing/0123456789abcdef0123456789abcdef"))
		},
		moto:   "RUNNING/RUNNING tags none; failures none",
		ecsapi: "RUNNING/RUNNING tags none; failures MISSING",
		aws:    "a task not found is a failure with reason MISSING (the sweeper counts any other reason as failed)",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html",
	},
	{
		name: "DescribeTasks of a task in another cluster",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "home")
			b.cluster(t, "away")
			return describe(b, "away", nil, b.run(t, "home"))
		},
		moto:   "RUNNING/RUNNING tags none; failures none",
		ecsapi: "failures MISSING",
		aws:    "tasks are looked up in the cluster asked: another cluster's task is MISSING; moto looks in every cluster",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html",
	},
	{
		name: "DescribeTasks in an unknown cluster",
		do: func(t *testing.T, b backend) string {
			return describe(b, "nosuchcluster", nil, arn("task/nosuchcluster/0123456789abcdef0123456789abcdef"))
		},
		want: "ClusterNotFoundException",
	},
	{
		name: "ListTasks RUNNING of a cluster",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "listed")
			b.cluster(t, "elsewhere")
			mine := []string{b.run(t, "listed"), b.run(t, "listed")}
			b.run(t, "elsewhere")
			return list(b, "listed", types.DesiredStatusRunning, 0, mine)
		},
		want: "2 tasks, 1 pages, as run",
	},
	{
		name: "ListTasks of a cluster whose name is in another's",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "prod")
			b.cluster(t, "preprod")
			mine := []string{b.run(t, "prod")}
			b.run(t, "preprod")
			return list(b, "prod", types.DesiredStatusRunning, 0, mine)
		},
		moto:   "2 tasks, 1 pages, not as run",
		ecsapi: "1 tasks, 1 pages, as run",
		aws:    "ListTasks lists the cluster asked; moto matches the name anywhere in a task's cluster ARN (prod lists preprod's)",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html",
	},
	{
		name: "ListTasks paged by maxResults",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "paged")
			mine := []string{b.run(t, "paged"), b.run(t, "paged"), b.run(t, "paged")}
			return list(b, "paged", types.DesiredStatusRunning, 1, mine)
		},
		moto:   "3 tasks, 1 pages, as run",
		ecsapi: "3 tasks, 3 pages, as run",
		aws:    "maxResults bounds a page and nextToken gives the next; moto answers every task at once, so only the stand-in tests the sweeper's paging",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html",
	},
	{
		name: "ListTasks after StopTask, by desiredStatus",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "halted")
			running, stopped := b.run(t, "halted"), b.run(t, "halted")
			if _, err := b.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("halted"), Task: aws.String(stopped)}); err != nil {
				return code(err)
			}
			return "RUNNING: " + list(b, "halted", types.DesiredStatusRunning, 0, []string{running}) +
				"; STOPPED: " + list(b, "halted", types.DesiredStatusStopped, 0, []string{stopped})
		},
		want: "RUNNING: 1 tasks, 1 pages, as run; STOPPED: 1 tasks, 1 pages, as run",
	},
	{
		name: "ListTasks without desiredStatus",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "nofilter")
			running, stopped := b.run(t, "nofilter"), b.run(t, "nofilter")
			if _, err := b.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("nofilter"), Task: aws.String(stopped)}); err != nil {
				return code(err)
			}
			return list(b, "nofilter", "", 0, []string{running})
		},
		moto:   "2 tasks, 1 pages, not as run",
		ecsapi: "1 tasks, 1 pages, as run",
		aws:    "the default filter is desiredStatus RUNNING; the project always passes RUNNING",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html",
	},
	{
		name: "ListTasks of an unknown cluster",
		do: func(t *testing.T, b backend) string {
			return list(b, "nosuchcluster", types.DesiredStatusRunning, 0, nil)
		},
		want: "ClusterNotFoundException",
	},
	{
		// Both stop at once; ECS answers lastStatus RUNNING and gets to
		// STOPPED as the containers stop (the task lifecycle). The project
		// reads desiredStatus only.
		name: "StopTask with a reason",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "stopping")
			task := b.run(t, "stopping")
			out, err := b.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("stopping"), Task: aws.String(task), Reason: aws.String("TTL 1h0m0s reached")})
			if err != nil {
				return code(err)
			}
			return "answer " + stopLine(out.Task) + "; described " + describeStop(b, "stopping", task)
		},
		want: "answer STOPPED/STOPPED reason \"TTL 1h0m0s reached\"; described STOPPED/STOPPED reason \"TTL 1h0m0s reached\"",
	},
	{
		name: "StopTask of a stopped task",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "twice")
			task := b.run(t, "twice")
			var answers []string
			for _, reason := range []string{"first", "second"} {
				out, err := b.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("twice"), Task: aws.String(task), Reason: aws.String(reason)})
				if err != nil {
					return code(err)
				}
				answers = append(answers, stopLine(out.Task))
			}
			return strings.Join(answers, ", then ") + "; described " + describeStop(b, "twice", task)
		},
		moto:   "STOPPED/STOPPED reason \"first\", then STOPPED/STOPPED reason \"second\"; described STOPPED/STOPPED reason \"second\"",
		ecsapi: "STOPPED/STOPPED reason \"first\", then STOPPED/STOPPED reason \"first\"; described STOPPED/STOPPED reason \"first\"",
		aws:    "not documented beyond success; the stand-in keeps the reason of the stop that was made (a retried stop, or the sweeper after the function, does not rewrite it)",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html",
	},
	{
		name: "StopTask of an unknown task",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "unknowntask")
			b.run(t, "unknowntask")
			_, err := b.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("unknowntask"),
				Task: aws.String(arn("task/unknowntask/0123456789abcdef0123456789abcdef")), Reason: aws.String("r")})
			return code(err)
		},
		want: "InvalidParameterException (not found)",
	},
	{
		name: "StopTask of a task in another cluster",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "mine")
			b.cluster(t, "theirs")
			b.run(t, "theirs")
			_, err := b.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("theirs"), Task: aws.String(b.run(t, "mine")), Reason: aws.String("r")})
			return code(err)
		},
		want: "InvalidParameterException (not found)",
	},
	{
		name: "StopTask in an unknown cluster",
		do: func(t *testing.T, b backend) string {
			_, err := b.ecs.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("nosuchcluster"),
				Task: aws.String(arn("task/nosuchcluster/0123456789abcdef0123456789abcdef")), Reason: aws.String("r")})
			return code(err)
		},
		want: "ClusterNotFoundException",
	},
	{
		name: "ListTagsForResource and TagResource",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "tagging")
			task := b.run(t, "tagging", tag(ttltag.Key, "1h"), tag(ttltag.OwnerKey, "AIDAEXAMPLE"))
			before := listTags(b, task)
			if _, err := b.ecs.TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: aws.String(task),
				Tags: []types.Tag{tag(ttltag.Key, "3h"), tag("extra", "x")}}); err != nil {
				return code(err)
			}
			return before + "; then " + listTags(b, task)
		},
		want: "bastion-ttl-owner=AIDAEXAMPLE bastion-ttl=1h; then bastion-ttl-owner=AIDAEXAMPLE bastion-ttl=3h extra=x",
	},
	{
		name: "ListTagsForResource and TagResource of an unknown task",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "notags")
			b.run(t, "notags")
			unknown := aws.String(arn("task/notags/0123456789abcdef0123456789abcdef"))
			_, listErr := b.ecs.ListTagsForResource(context.Background(), &ecs.ListTagsForResourceInput{ResourceArn: unknown})
			_, tagErr := b.ecs.TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: unknown, Tags: []types.Tag{tag(ttltag.Key, "1h")}})
			return code(listErr) + "; " + code(tagErr)
		},
		want: "InvalidParameterException (not found); InvalidParameterException (not found)",
	},
	{
		name: "DescribeTaskDefinition",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "definitions")
			b.run(t, "definitions") // registers it on moto
			var lines []string
			for _, name := range []string{"bastion", "nosuchfamily"} {
				out, err := b.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(name)})
				if err != nil {
					lines = append(lines, name+": "+code(err))
					continue
				}
				d := out.TaskDefinition
				var names []string
				for _, c := range d.ContainerDefinitions {
					names = append(names, aws.ToString(c.Name))
				}
				lines = append(lines, fmt.Sprintf("%s: %s %s containers %s", name, aws.ToString(d.Family), d.Status, strings.Join(names, " ")))
			}
			return strings.Join(lines, "; ")
		},
		want: "bastion: bastion ACTIVE containers ssh; nosuchfamily: ClientException",
	},
	{
		name: "DescribeClusters",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "present")
			b.run(t, "present")
			out, err := b.ecs.DescribeClusters(context.Background(), &ecs.DescribeClustersInput{Clusters: []string{"present", "absent"}})
			if err != nil {
				return code(err)
			}
			var lines []string
			for _, c := range out.Clusters {
				lines = append(lines, aws.ToString(c.ClusterName)+" "+aws.ToString(c.Status))
			}
			for _, f := range out.Failures {
				lines = append(lines, "failure "+aws.ToString(f.Reason))
			}
			return strings.Join(lines, "; ")
		},
		want: "present ACTIVE; failure MISSING",
	},
	{
		name: "ExecuteCommand",
		do: func(t *testing.T, b backend) string {
			b.cluster(t, "shell")
			_, err := b.ecs.ExecuteCommand(context.Background(), &ecs.ExecuteCommandInput{Cluster: aws.String("shell"), Task: aws.String(b.run(t, "shell")),
				Container: aws.String("ssh"), Command: aws.String("/bin/sh"), Interactive: true})
			return code(err)
		},
		moto:   "HTTP 500",
		ecsapi: "UnknownOperationException",
		aws:    "ECS Exec opens a session; neither serves it, which is why ExecLayer exists (moto/ExecLayer below)",
		ref:    "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ExecuteCommand.html",
	},
}

func TestConformance(t *testing.T) {
	for _, s := range scenarios {
		if problem := s.check(); problem != "" {
			t.Fatalf("scenario %q: %s", s.name, problem)
		}
	}
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.start(t)
			for _, s := range scenarios {
				t.Run(s.name, func(t *testing.T) {
					if got, want := s.do(t, b), s.wantFor(bk.name); got != want {
						if s.want == "" {
							t.Errorf("a known difference changed (AWS: %s, %s):\n got  %s\n want %s", s.aws, s.ref, got, want)
						} else {
							t.Errorf("\n got  %s\n want %s (both backends)", got, want)
						}
					}
				})
			}
			if bk.name == "moto" {
				t.Run("unmended", func(t *testing.T) { testUnmended(t, b) })
				t.Run("ExecLayer", func(t *testing.T) { testExecLayer(t, b) })
			}
		})
	}
}

// testUnmended asserts that moto still has the bugs the mending proxy
// mends: when one is fixed, the mend can go.
func testUnmended(t *testing.T, b backend) {
	b.cluster(t, "unmended")
	task := b.run(t, "unmended")
	c := testenv.ECSClient(b.unmended)
	once := func(o *ecs.Options) { o.RetryMaxAttempts = 1 }
	unreadable := func(err error, status int) bool {
		var de *smithy.DeserializationError
		return errors.As(err, &de) && code(err) == fmt.Sprint("HTTP ", status)
	}
	// cpu and memory as numbers: the SDK cannot read the task.
	if _, err := c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String("unmended"), Tasks: []string{task}}, once); !unreadable(err, 200) {
		t.Errorf("moto's DescribeTasks: %v, want a 200 the SDK cannot read (cpu and memory as numbers)", err)
	}
	// A task moto does not know: an HTML 500, which the SDK retries.
	if _, err := c.StopTask(context.Background(), &ecs.StopTaskInput{Cluster: aws.String("unmended"),
		Task: aws.String(arn("task/unmended/0123456789abcdef0123456789abcdef"))}, once); !unreadable(err, 500) {
		t.Errorf("moto's StopTask of an unknown task: %v, want an HTML 500", err)
	}
}

// testExecLayer puts ExecLayer in front of moto, as the launcher's connect
// tests do, and pins what it adds: what DescribeTasks shows of a task run
// with ECS Exec, and ExecuteCommand, which moto does not serve; and what it
// keeps: RunTask's containerOverrides.
func testExecLayer(t *testing.T, b backend) {
	next, err := url.Parse(b.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		opened []string // the targets of the sessions opened
	)
	sessions := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(opened) }
	layer := &ecsapi.ExecLayer{Next: httputil.NewSingleHostReverseProxy(next), Now: time.Now,
		Open: func(target string) (string, string, string) {
			mu.Lock()
			defer mu.Unlock()
			opened = append(opened, target)
			return "session-1", "wss://ssmmessages.example/v1/data-channel/session-1", "token-1"
		}}
	srv := httptest.NewServer(layer)
	t.Cleanup(srv.Close)
	c := testenv.ECSClient(srv.URL)
	ctx := context.Background()
	b.cluster(t, "execlayer")
	b.run(t, "execlayer") // registers the task definition
	start := func(exec bool) string {
		out, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("execlayer"), TaskDefinition: aws.String("bastion"),
			LaunchType: types.LaunchTypeFargate, EnableExecuteCommand: exec})
		if err != nil || len(out.Tasks) != 1 {
			t.Fatalf("run-task: %v", err)
		}
		return aws.ToString(out.Tasks[0].TaskArn)
	}
	execute := func(task string, interactive bool) (*ecs.ExecuteCommandOutput, error) {
		return c.ExecuteCommand(ctx, &ecs.ExecuteCommandInput{Cluster: aws.String("execlayer"), Task: aws.String(task),
			Container: aws.String("ssh"), Command: aws.String("/bin/sh"), Interactive: interactive})
	}
	task := start(true)

	d, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("execlayer"), Tasks: []string{task}})
	if err != nil || len(d.Tasks) != 1 {
		t.Fatalf("describe-tasks: %v", err)
	}
	got := d.Tasks[0]
	if got.StartedAt == nil || !got.EnableExecuteCommand || len(got.Containers) != 1 {
		t.Fatalf("described %+v: want startedAt, enableExecuteCommand and the container", got)
	}
	runtimeID := ecsapi.RuntimeID(task, "ssh")
	ctr := got.Containers[0]
	if aws.ToString(ctr.RuntimeId) != runtimeID || len(ctr.ManagedAgents) != 1 ||
		ctr.ManagedAgents[0].Name != types.ManagedAgentNameExecuteCommandAgent || aws.ToString(ctr.ManagedAgents[0].LastStatus) != "RUNNING" {
		t.Errorf("container %+v: want runtime ID %s and a RUNNING ExecuteCommandAgent", ctr, runtimeID)
	}

	out, err := execute(task, true)
	if err != nil {
		t.Fatalf("execute-command through the layer: %v", err)
	}
	wantTarget := "ecs:execlayer_" + task[strings.LastIndexByte(task, '/')+1:] + "_" + runtimeID
	if got := sessions(); len(got) != 1 || got[0] != wantTarget {
		t.Errorf("sessions opened to %q, want one to %s", got, wantTarget)
	}
	if out.Session == nil || aws.ToString(out.Session.SessionId) != "session-1" || aws.ToString(out.Session.TokenValue) != "token-1" ||
		aws.ToString(out.TaskArn) != task || aws.ToString(out.ContainerName) != "ssh" || !out.Interactive {
		t.Errorf("execute-command answered %+v, session %+v", out, out.Session)
	}

	// What ECS refuses, the layer refuses, and opens nothing.
	plain := start(false)
	_, nonInteractive := execute(task, false)
	_, notEnabled := execute(plain, true)
	if _, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("execlayer"), Task: aws.String(task)}); err != nil {
		t.Fatal(err)
	}
	_, stopped := execute(task, true)
	for what, err := range map[string]error{"not interactive": nonInteractive, "run without ECS Exec": notEnabled, "stopped": stopped} {
		if code(err) != "InvalidParameterException" {
			t.Errorf("execute-command, %s: %v, want InvalidParameterException", what, err)
		}
	}
	if got := sessions(); len(got) != 1 {
		t.Errorf("sessions opened to %q, want only the first", got)
	}

	// RunTask's containerOverrides: moto keeps them, and neither the
	// mending proxy nor the layer drops them, so a test can see that an
	// override reached ECS (lambda/sweep's overridden supervisors).
	override := types.ContainerOverride{Name: aws.String("ssh"), Command: []string{"sleep", "infinity"},
		Environment: []types.KeyValuePair{{Name: aws.String("BASTION_DRY_RUN"), Value: aws.String("true")}}}
	run, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("execlayer"), TaskDefinition: aws.String("bastion"),
		LaunchType: types.LaunchTypeFargate, Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{override}}})
	if err != nil || len(run.Tasks) != 1 {
		t.Fatalf("run-task with overrides: %v", err)
	}
	const want = `ssh: command ["sleep" "infinity"] environment ["BASTION_DRY_RUN=true"]`
	if got := testenv.Overrides(run.Tasks[0].Overrides); got != want {
		t.Errorf("run-task answered overrides %s, want %s", got, want)
	}
	overridden := aws.ToString(run.Tasks[0].TaskArn)
	for through, client := range map[string]*ecs.Client{"the layer": c, "the mending proxy": b.ecs} {
		d, err := client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("execlayer"), Tasks: []string{overridden}})
		if err != nil || len(d.Tasks) != 1 {
			t.Fatalf("describe-tasks through %s: %v", through, err)
		}
		if got := testenv.Overrides(d.Tasks[0].Overrides); got != want {
			t.Errorf("described through %s: overrides %s, want %s", through, got, want)
		}
	}
}

// code is an error as the project tells errors apart: the API error code,
// and for InvalidParameterException whether it says "not found"
// (stophandler's classify).
func code(err error) string {
	var (
		ae   smithy.APIError
		resp *awshttp.ResponseError
	)
	switch {
	case err == nil:
		return "no error"
	case errors.As(err, &ae):
	case errors.As(err, &resp):
		return fmt.Sprint("HTTP ", resp.HTTPStatusCode())
	default:
		return "not an API error: " + err.Error()
	}
	switch {
	case ae.ErrorCode() == "InvalidParameterException" && strings.Contains(strings.ToLower(ae.ErrorMessage()), "not found"):
		return "InvalidParameterException (not found)"
	}
	return ae.ErrorCode()
}

func describe(b backend, cluster string, include []types.TaskField, tasks ...string) string {
	out, err := b.ecs.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: tasks, Include: include})
	if err != nil {
		return code(err)
	}
	var reasons []string
	for _, f := range out.Failures {
		reasons = append(reasons, aws.ToString(f.Reason))
	}
	line := "failures " + cmp.Or(strings.Join(reasons, " "), "none")
	if len(out.Tasks) > 0 {
		line = taskLines(out.Tasks) + "; " + line
	}
	return line
}

func taskLines(tasks []types.Task) string {
	var lines []string
	for _, task := range tasks {
		var tags []string
		for _, tg := range task.Tags {
			tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		slices.Sort(tags)
		lines = append(lines, fmt.Sprintf("%s/%s tags %s", aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus), cmp.Or(strings.Join(tags, " "), "none")))
	}
	return strings.Join(lines, ", ")
}

// list pages through ListTasks (maxResults 0: not given) and says how many
// tasks in how many pages, and whether they are want.
func list(b backend, cluster string, desired types.DesiredStatus, maxResults int32, want []string) string {
	in := &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: desired}
	if maxResults > 0 {
		in.MaxResults = aws.Int32(maxResults)
	}
	pages := ecs.NewListTasksPaginator(b.ecs, in)
	var got []string
	n := 0
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			return code(err)
		}
		n++
		got = append(got, page.TaskArns...)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	as := "as run"
	if !slices.Equal(got, want) {
		as = "not as run"
	}
	return fmt.Sprintf("%d tasks, %d pages, %s", len(got), n, as)
}

func stopLine(t *types.Task) string {
	if t == nil {
		return "no task"
	}
	return fmt.Sprintf("%s/%s reason %q", aws.ToString(t.LastStatus), aws.ToString(t.DesiredStatus), aws.ToString(t.StoppedReason))
}

func describeStop(b backend, cluster, task string) string {
	out, err := b.ecs.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{task}})
	if err != nil {
		return code(err)
	}
	if len(out.Tasks) != 1 {
		return fmt.Sprintf("%d tasks", len(out.Tasks))
	}
	return stopLine(&out.Tasks[0])
}

func listTags(b backend, task string) string {
	out, err := b.ecs.ListTagsForResource(context.Background(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(task)})
	if err != nil {
		return code(err)
	}
	var tags []string
	for _, tg := range out.Tags {
		tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
	}
	slices.Sort(tags)
	return strings.Join(tags, " ")
}
