// Package e2e runs the whole chain with real processes: the supervisor
// binary, the API Gateway stand-in, the terminate function, and an ECS
// endpoint; and the fault suite, which breaks one part at a time and checks
// that the bastion still ends by deadline + grace and never before the
// deadline.
package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/apigateway"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/taskmetadata"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

var supervisorBin string

func TestMain(m *testing.M) { os.Exit(testenv.MainWithCommand(m, "../supervisor", &supervisorBin)) }

const (
	taskRoleID = "AROAZBASTIONTASKROLE1" // bastion-task-role's unique ID, as the template pins it
	keyID      = "ASIAE2ETASKROLE00001"
	secret     = "e2e-task-role-secret"
)

// caller is the task's role session as API Gateway reports it.
func caller(account, taskARN string) apigateway.Caller {
	id := taskARN[strings.LastIndex(taskARN, "/")+1:]
	return apigateway.Caller{
		Credentials: aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
		ARN:         "arn:aws:sts::" + account + ":assumed-role/bastion-task-role/" + id,
		UserID:      taskRoleID + ":" + id,
		AccountID:   account,
	}
}

// startSupervisor runs `supervisor watch` as the sidecar would run; extra
// environment entries come last and win.
func startSupervisor(t *testing.T, metaURL, apiURL string, ttl, grace time.Duration, region string, extra ...string) *testenv.Process {
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
		"AWS_ENDPOINT_URL_STS=" + stsOf(apiURL),
		"TMPDIR=" + t.TempDir(),
	}, extra...), "watch")
}

// withSTS serves STS's GetCallerIdentity at / beside the API's routes: one
// local server stands for both hosts, so the supervisor proves its identity
// to the STS the function asks (stsOf the API's URL).
func withSTS(s *sts.Server, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			s.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// stsOf is the STS endpoint beside an API's URL (withSTS).
func stsOf(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil {
		return apiURL
	}
	return u.Scheme + "://" + u.Host
}

// startChain starts the terminate bootstrap under the emulator against the
// ECS endpoint, and the API Gateway stand-in in front of it with the task's
// role session as the caller: the public HTTP API, or with stage set the
// private REST API's stage. It returns the function and the API's base URL
// (the stage's, for a REST API).
func startChain(t *testing.T, ecsEndpoint, taskARN, maxTTL string, stage ...string) (*testenv.Lambda, string) {
	t.Helper()
	gw := &apigateway.Gateway{
		Routes: []string{"POST /terminate", "POST /extend"}, Region: testenv.Region, AccountID: testenv.Account,
		Callers: []apigateway.Caller{caller(testenv.Account, taskARN)}, Now: time.Now,
	}
	api := httptest.NewServer(withSTS(&sts.Server{Region: testenv.Region, Callers: gw.Callers, Now: time.Now}, gw))
	t.Cleanup(api.Close)
	fn := testenv.StartLambda(t, testenv.BuildLambda(t, "..", "lambda/terminate"), map[string]string{
		"AWS_ENDPOINT_URL_ECS":        ecsEndpoint,
		"AWS_ENDPOINT_URL_STS":        api.URL,
		"AWS_REGION":                  testenv.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDLAMBDA",
		"AWS_SECRET_ACCESS_KEY":       "lambda",
		"BASTION_ALLOWED_CLUSTERS":    "bastions",
		"BASTION_TASK_ROLES":          taskRoleID,
		"BASTION_MAX_TTL":             maxTTL,
		"BASTION_ACCOUNT_ID":          testenv.Account,
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "10",
	})
	gw.Invoke = apigateway.InvokeURL(fn.URL)
	if len(stage) > 0 {
		gw.Stage, gw.Invoke = stage[0], apigateway.RESTInvokeURL(fn.URL, stage[0])
	}
	if gw.Stage != "" {
		return fn, api.URL + "/" + gw.Stage
	}
	return fn, api.URL
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
