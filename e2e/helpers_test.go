// Package e2e runs the whole chain with real processes: the supervisor
// binary, the API Gateway stand-in, the terminate function, and an ECS
// endpoint; and the fault suite, which breaks one part at a time and checks
// that the bastion still ends by deadline + grace and never before the
// deadline.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/stack"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

var supervisorBin string

func TestMain(m *testing.M) { os.Exit(testenv.MainWithCommand(m, "../supervisor", &supervisorBin)) }

const (
	taskRoleID = "AROAZBASTIONTASKROLE1" // bastion-task-role's unique ID, as the template pins it
	keyID      = "ASIAE2ETASKROLE00001"
	secret     = "e2e-task-role-secret"
)

// caller is the task's role session as STS and API Gateway report it.
func caller(account, taskARN string) sts.Caller {
	return stack.TaskCaller(account, "bastion-task-role", taskRoleID, taskARN, aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret})
}

// startSupervisor runs `supervisor watch` as the sidecar would run, with
// the stack's API and STS; extra environment entries come last and win.
func startSupervisor(t *testing.T, metaURL, apiURL, stsURL string, ttl, grace time.Duration, region string, extra ...string) *testenv.Process {
	t.Helper()
	return testenv.Start(t, supervisorBin, append([]string{
		"ECS_CONTAINER_METADATA_URI_V4=" + metaURL + "/v4/0123456789abcdef-1",
		"BASTION_TERMINATE_URL=" + apiURL + "/terminate",
		"BASTION_TTL=" + ttl.String(),
		"BASTION_GRACE=" + grace.String(),
		"BASTION_CONTROL_ADDR=off", // the fault cases run in parallel
		"AWS_ACCESS_KEY_ID=" + keyID,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_REGION=" + region,
		"AWS_ENDPOINT_URL_STS=" + stsURL,
		"TMPDIR=" + t.TempDir(),
	}, extra...), "watch")
}

// startStack starts the local stack for t, stopped at its cleanup.
func startStack(t *testing.T, c stack.Config) *stack.Stack {
	t.Helper()
	st, err := stack.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// The ledger's table, and the owner the launcher tags each task with.
const (
	ledgerTable = "bastion-ttl-ledger"
	owner       = "AROAEXAMPLEDEVELOPER1:alice"
)

// ownerTag is the tag the launcher writes: who ran the bastion.
var ownerTag = types.Tag{Key: aws.String(ttltag.OwnerKey), Value: aws.String(owner)}

// chainConfig is the local stack with the terminate bootstrap under the
// emulator, against the ECS endpoint, with the task's role session as the
// caller, and the ledger: its table in DynamoDB at the same endpoint (the
// fronts pass other services' calls on to moto), the ledger bootstrap
// under the emulator, fed the tasks of family bastion (testenv.RunTasks').
// It sets *fn to the terminate function once started.
func chainConfig(t *testing.T, ecsEndpoint, taskARN string, maxTTL time.Duration, fn **testenv.Lambda) stack.Config {
	t.Helper()
	testenv.CreateLedgerTable(t, testenv.DynamoDBClient(ecsEndpoint), ledgerTable)
	return stack.Config{
		Region: testenv.Region, Account: testenv.Account, Clusters: []string{"bastions"}, TaskRoles: []string{taskRoleID},
		Callers: []sts.Caller{caller(testenv.Account, taskARN)}, MaxTTL: maxTTL, ECSEndpoint: ecsEndpoint,
		Bootstrap: func(env map[string]string) (string, error) {
			*fn = testenv.StartLambda(t, testenv.BuildLambda(t, "..", "lambda/terminate"), env)
			return (*fn).URL, nil
		},
		Ledger: &stack.Ledger{Table: ledgerTable, DynamoDB: ecsEndpoint, Families: []string{"bastion"}, Every: 200 * time.Millisecond,
			Bootstrap: func(env map[string]string) (string, error) {
				return testenv.StartLambda(t, testenv.BuildLambda(t, "..", "lambda/ledger"), env).URL, nil
			}},
	}
}

// startChain starts chainConfig's stack: the public HTTP API, or with
// stage set the private REST API's stage. It returns the terminate
// function and the stack.
func startChain(t *testing.T, ecsEndpoint, taskARN string, maxTTL time.Duration, stage ...string) (*testenv.Lambda, *stack.Stack) {
	t.Helper()
	var fn *testenv.Lambda
	c := chainConfig(t, ecsEndpoint, taskARN, maxTTL, &fn)
	if len(stage) > 0 {
		c.Stage = stage[0]
	}
	return fn, startStack(t, c)
}

// judged waits for the ledger's item of the task to have a verdict and
// ECS's STOPPED, and returns it.
func judged(t *testing.T, endpoint, taskARN string) ledger.Item {
	t.Helper()
	store := ledger.NewStore(ledger.Config{Table: ledgerTable}, testenv.DynamoDBClient(endpoint), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var it ledger.Item
	testenv.WaitFor(t, 10*time.Second, "the ledger's verdict on "+taskARN, func() bool {
		got, ok, err := store.Get(context.Background(), taskARN)
		if err != nil {
			t.Fatal(err)
		}
		it = got
		return ok && got.Outcome.Verdict != "" && got.LastStatus == "STOPPED" // ECS's last word is in
	})
	return it
}

// metadataOf serves the task's metadata, its container started at started
// (in the cluster bastions), and returns its URL.
func metadataOf(t *testing.T, taskARN string, started time.Time) string {
	clusterARN := "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":cluster/bastions"
	doc := taskmetadata.Document(taskARN, clusterARN, started)
	meta := httptest.NewServer(taskmetadata.Handler(func() []byte { return doc }))
	t.Cleanup(meta.Close)
	return meta.URL
}

// sigterm is ECS stopping the task; it returns the exit code (the process
// may have exited already: its code is then the answer).
func sigterm(t *testing.T, p *testenv.Process) int {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	return p.Wait(t, 5*time.Second)
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	return url
}
