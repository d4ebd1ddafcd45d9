package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/sweep"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// A scheduled event from EventBridge, as Lambda delivers it.
const scheduledEvent = `{
  "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
  "detail-type": "Scheduled Event", "source": "aws.events",
  "account": "123456789012", "time": "2026-11-24T12:00:00Z", "region": "eu-west-1",
  "resources": ["arn:aws:events:eu-west-1:123456789012:rule/bastion-ttl-sweep"],
  "detail": {}
}`

// The real bootstrap under the Runtime Interface Emulator, invoked with a
// scheduled event, against moto_server. moto reports no startedAt, so the
// sweeper must list, describe with tags, stop nothing, and say why.
func TestLambdaAgainstMoto(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	tag := types.Tag{Key: aws.String(ttltag.Key), Value: aws.String("1s")}
	marked := testenv.RunTasks(t, client, "bastions", 3, tag)
	plain := testenv.RunTasks(t, client, "bastions", 2)
	elsewhere := testenv.RunTasks(t, client, "other", 2, tag)

	fn := testenv.StartLambda(t, testenv.BuildLambda(t, "../..", "lambda/sweep"), map[string]string{
		"AWS_ENDPOINT_URL_ECS":        endpoint,
		"AWS_REGION":                  testenv.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"BASTION_ALLOWED_CLUSTERS":    "bastions",
		"BASTION_MAX_TTL":             "1s",
		"BASTION_GRACE":               "0s",
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
	})
	var rep sweep.Report
	out := fn.Invoke(t, []byte(scheduledEvent))
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	want := sweep.Report{Clusters: 1, Scanned: 5, Marked: 3, NotStarted: 3}
	if rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	// It says why it stopped nothing: one line per marked task, and the
	// summary, its last line.
	fn.WaitOutput(t, 5*time.Second, `"msg":"sweep done"`)
	logs := fn.Output()
	if n := strings.Count(logs, `"msg":"marked task has no startedAt: not stopped"`); n != 3 {
		t.Errorf("%d 'no startedAt' lines, want 3:\n%s", n, logs)
	}
	if !strings.Contains(logs, `"msg":"sweep done"`) || !strings.Contains(logs, `"not_started":3`) {
		t.Errorf("no summary line with not_started 3:\n%s", logs)
	}
	for cluster, arns := range map[string][]string{"bastions": append(marked, plain...), "other": elsewhere} {
		for arn, task := range testenv.Describe(t, client, cluster, arns) {
			if aws.ToString(task.DesiredStatus) != "RUNNING" {
				t.Errorf("%s is %s, want RUNNING", arn, aws.ToString(task.DesiredStatus))
			}
		}
	}
}
