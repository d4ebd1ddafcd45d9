package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// The whole chain with real processes: the supervisor binary signs a
// request to the API Gateway stand-in, which invokes the terminate
// bootstrap under the Lambda Runtime Interface Emulator, which stops the
// task in moto_server (through the mending proxy). The task ends STOPPED
// with the TTL reason, on time, and the other task still runs.
func TestEndToEnd(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	tasks := testenv.RunTasks(t, client, "bastions", 2)
	me, other := tasks[0], tasks[1]
	fn, st := startChain(t, endpoint, me, 12*time.Hour)
	started := time.Now()
	meta := metadataOf(t, me, started)
	const ttl, grace = 2 * time.Second, 5 * time.Second
	deadline := started.Add(ttl)
	sup := startSupervisor(t, meta, st.APIURL, st.STSURL, ttl, grace, testenv.Region)

	var stoppedAt time.Time
	for time.Now().Before(deadline.Add(grace)) {
		task := testenv.Describe(t, client, "bastions", []string{me})[me]
		if aws.ToString(task.DesiredStatus) == "STOPPED" {
			stoppedAt = time.Now()
			want := "bastion-ttl: TTL 2s expired (started " + started.UTC().Format(time.RFC3339) + ")"
			if got := aws.ToString(task.StoppedReason); got != want {
				t.Errorf("stop reason %q, want %q", got, want)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	switch {
	case stoppedAt.IsZero():
		t.Fatalf("the task was not stopped by deadline + grace\nemulator:\n%s", fn.Output())
	case stoppedAt.Before(deadline):
		t.Fatalf("the task was stopped %v before its deadline", deadline.Sub(stoppedAt))
	}
	t.Logf("stopped %v after the deadline (polled every 50ms)", stoppedAt.Sub(deadline).Round(time.Millisecond))
	fn.WaitOutput(t, 5*time.Second, `"outcome":"stopped"`)
	if code := sigterm(t, sup); code != 0 {
		t.Errorf("supervisor exit %d after SIGTERM, want 0", code)
	}
	if got := testenv.Describe(t, client, "bastions", []string{other})[other]; aws.ToString(got.DesiredStatus) != "RUNNING" {
		t.Errorf("the other task is %s", aws.ToString(got.DesiredStatus))
	}
}

// Extension through the whole chain: at start the sidecar registers its TTL
// (the task's tag in moto), a person on the bastion runs `supervisor extend`,
// the terminate function caps and records it, and the sidecar lets the old
// deadline pass.
func TestEndToEndExtension(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	me := testenv.RunTasks(t, client, "bastions", 1)[0]
	fn, st := startChain(t, endpoint, me, time.Hour)
	started := time.Now()
	meta := metadataOf(t, me, started)
	control := testenv.FreeAddr(t)
	const ttl = 4 * time.Second
	sup := startSupervisor(t, meta, st.APIURL, st.STSURL, ttl, 5*time.Second, testenv.Region, "BASTION_CONTROL_ADDR="+control)

	testenv.WaitFor(t, 3*time.Second, "the TTL's registration in the task's tag", func() bool { return testenv.Tag(t, client, me, ttltag.Key) == "4s" })
	person := testenv.Start(t, supervisorBin, []string{"BASTION_CONTROL_ADDR=" + control}, "extend", "2m")
	if code := person.Wait(t, 10*time.Second); code != 0 || !strings.HasPrefix(person.Output(), "extended: TTL 2m4s, ") {
		t.Fatalf("supervisor extend 2m: exit %d\n%s\nsidecar:\n%s", code, person.Output(), sup.Output())
	}
	if got := testenv.Tag(t, client, me, ttltag.Key); got != "2m4s" {
		t.Fatalf("tag after the extension %q, want 2m4s", got)
	}
	time.Sleep(time.Until(started.Add(ttl + time.Second)))
	if task := testenv.Describe(t, client, "bastions", []string{me})[me]; aws.ToString(task.DesiredStatus) != "RUNNING" {
		t.Fatalf("the task is %s after its first deadline, although extended", aws.ToString(task.DesiredStatus))
	}
	fn.WaitOutput(t, 5*time.Second, `"outcome":"extended"`)
	if code := sigterm(t, sup); code != 0 {
		t.Errorf("supervisor exit %d after SIGTERM, want 0", code)
	}
}

// The private API's shape: the supervisor signs for a REST API stage's URL
// (…/prod/terminate), the gateway delivers payload 1.0, the function
// answers in that format's shape and stops the task, on time.
func TestEndToEndPrivateAPI(t *testing.T) {
	endpoint, client := testenv.MotoECS(t)
	me := testenv.RunTasks(t, client, "bastions", 1)[0]
	fn, st := startChain(t, endpoint, me, 12*time.Hour, "prod")
	started := time.Now()
	meta := metadataOf(t, me, started)
	const ttl, grace = 2 * time.Second, 5 * time.Second
	sup := startSupervisor(t, meta, st.APIURL, st.STSURL, ttl, grace, testenv.Region)
	deadline := started.Add(ttl)
	testenv.WaitFor(t, ttl+grace, "the task STOPPED", func() bool {
		return aws.ToString(testenv.Describe(t, client, "bastions", []string{me})[me].DesiredStatus) == "STOPPED"
	})
	if time.Now().Before(deadline) {
		t.Fatalf("stopped before its deadline")
	}
	task := testenv.Describe(t, client, "bastions", []string{me})[me]
	if !strings.HasPrefix(aws.ToString(task.StoppedReason), "bastion-ttl: TTL 2s expired") {
		t.Errorf("stop reason %q", aws.ToString(task.StoppedReason))
	}
	fn.WaitOutput(t, 5*time.Second, `"outcome":"stopped"`)
	if !strings.Contains(sup.Output(), `"status":202`) {
		t.Errorf("the supervisor saw no 202:\n%s", sup.Output())
	}
	if code := sigterm(t, sup); code != 0 {
		t.Errorf("supervisor exit %d after SIGTERM, want 0", code)
	}
}
