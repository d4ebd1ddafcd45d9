// Package e2e runs the whole chain with real processes: the supervisor
// binary, the API Gateway stand-in, the terminate function, and an ECS
// endpoint; and the fault suite, which breaks one part at a time and checks
// that the bastion still ends by deadline + grace and never before the
// deadline.
package e2e

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/apigw"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

var supervisorBin string

func TestMain(m *testing.M) {
	var dir string
	var err error
	if supervisorBin, dir, err = testenv.BuildCommand("../supervisor", "supervisor"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	keyID  = "ASIAE2ETASKROLE00001"
	secret = "e2e-task-role-secret"
)

// caller is the task's role session as API Gateway reports it.
func caller(account, taskARN string) apigw.Caller {
	id := taskARN[strings.LastIndex(taskARN, "/")+1:]
	return apigw.Caller{
		Credentials: aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
		ARN:         "arn:aws:sts::" + account + ":assumed-role/bastion-task-role/" + id,
		AccountID:   account,
	}
}

// process is a running supervisor binary.
type process struct {
	cmd    *exec.Cmd
	out    *testenv.Buffer
	exited chan struct{}
	at     time.Time // when it exited
	code   int
}

// startSupervisor runs `supervisor watch` as the sidecar would run.
func startSupervisor(t *testing.T, metaURL, apiURL string, ttl, grace time.Duration, region string) *process {
	t.Helper()
	p := &process{out: &testenv.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(supervisorBin, "watch")
	p.cmd.Env = []string{
		"ECS_CONTAINER_METADATA_URI_V4=" + metaURL + "/v4/0123456789abcdef-1",
		"BASTION_TERMINATE_URL=" + apiURL + "/terminate",
		"BASTION_TTL=" + ttl.String(),
		"BASTION_GRACE=" + grace.String(),
		"AWS_ACCESS_KEY_ID=" + keyID,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_REGION=" + region,
		"TMPDIR=" + t.TempDir(),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.at = time.Now()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("supervisor output:\n%s", p.out.String())
		}
	})
	return p
}

// sigterm is ECS stopping the task; it returns the exit code.
func (p *process) sigterm(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.code
	case <-time.After(5 * time.Second):
		t.Fatal("the supervisor did not exit on SIGTERM")
		return -1
	}
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	return url
}
