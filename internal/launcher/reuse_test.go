package launcher

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// A second connect reuses the caller's own bastion; nobody else's, nor one
// too near its end, nor one without ECS Exec, is ever reused; ls says which
// one connect would take. --stop stops it at the end.
func TestConnectReusesOnlyTheCallersOwnBastion(t *testing.T) {
	logPath := standInPlugin(t)
	r := newRig(t)
	host, dbPort := database(t)
	session := r.me[strings.LastIndexByte(r.me, ':')+1:]
	others := map[string]string{
		"bob's":                         r.bastion(t, "AROAEXAMPLEDEVELOPER1:bob", "4h0m0s", true),
		"another role, same session":    r.bastion(t, "AROAOTHERROLE0000001:"+session, "4h0m0s", true),
		"the caller's ARN, not user ID": r.bastion(t, "arn:aws:sts::123456789012:user/"+session, "4h0m0s", true),
		"a prefix of the user ID":       r.bastion(t, r.me[:len(r.me)-1], "4h0m0s", true),
		"untagged owner":                r.bastion(t, "", "4h0m0s", true),
		"own, 2m left":                  r.bastion(t, r.me, "2m0s", true),
		"own, without ECS Exec":         r.bastion(t, r.me, "4h0m0s", false),
	}
	local := freePort(t)
	to := fmt.Sprintf("%s:%d", host, dbPort)
	c := r.connect(t, "--to", to, "--local-port", strconv.Itoa(local))
	c.until(t, "through ", 1)
	exchange(t, local, "first")
	c.cancel()
	if code := c.exit(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, c.errs.String())
	}
	var mine string
	for _, arn := range r.running(t) {
		found := false
		for _, o := range others {
			found = found || o == arn
		}
		if !found {
			if mine != "" {
				t.Fatalf("two bastions started: %s, %s", mine, arn)
			}
			mine = arn
		}
	}
	if mine == "" || !strings.Contains(c.out.String(), "started "+taskID(mine)) {
		t.Fatalf("connect reused one of %v:\n%s", others, c.out.String())
	}
	if !strings.Contains(c.errs.String(), "note: your bastion "+taskID(others["own, without ECS Exec"])+" has no ECS Exec") {
		t.Errorf("no note about the caller's bastion without ECS Exec:\n%s", c.errs.String())
	}

	out, errs, code := runCLI(r.env, "ls")
	if code != 0 || !strings.Contains(out, "bastion-ttl connect would reuse "+taskID(mine)+" (yours, ") {
		t.Fatalf("ls: exit %d\n%s%s", code, out, errs)
	}

	c = r.connect(t, "--to", to, "--local-port", strconv.Itoa(local), "--stop")
	c.until(t, "through "+taskID(mine), 1)
	exchange(t, local, "second")
	if !strings.Contains(c.out.String(), "reusing your bastion "+taskID(mine)+" in bastions (stops at ") || strings.Contains(c.out.String(), "started ") {
		t.Fatalf("second connect:\n%s", c.out.String())
	}
	c.cancel()
	if code := c.exit(t); code != 0 || !strings.Contains(c.out.String(), "session ended; stopping "+taskID(mine)) {
		t.Fatalf("--stop: exit %d\n%s%s", code, c.out.String(), c.errs.String())
	}
	got := testenv.Describe(t, r.ecs, "bastions", []string{mine})[mine]
	if aws.ToString(got.DesiredStatus) != "STOPPED" || !strings.HasSuffix(aws.ToString(got.StoppedReason), "(connect --stop)") {
		t.Fatalf("--stop left %s (%q)", aws.ToString(got.DesiredStatus), aws.ToString(got.StoppedReason))
	}
	for name, arn := range others {
		if got := testenv.Describe(t, r.ecs, "bastions", []string{arn})[arn]; aws.ToString(got.DesiredStatus) != "RUNNING" {
			t.Errorf("%s bastion was stopped", name)
		}
	}
	for _, l := range pluginLog(t, logPath) {
		if !strings.Contains(l.Target, taskID(mine)) {
			t.Errorf("a session to another bastion: %+v", l)
		}
	}
}

// A user ID that an ECS tag value cannot hold verbatim (a role session
// name may hold a comma) is refused by run and connect before anything
// starts, naming it and why: never mapped to one that fits, which is
// someone else's (alice,x is not alice_x), and never their bastion. ls
// says connect would refuse, and marks nothing; alice_x herself is marked.
func TestConnectNeverTakesABastionOfAMappedUserID(t *testing.T) {
	const me, other = "AROAEXAMPLEDEVELOPER1:alice,x", "AROAEXAMPLEDEVELOPER1:alice_x"
	f := newFakeAWS(t, me)
	theirs := f.bastion("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7", other, "4h0m0s")
	want := `your user ID "` + me + `" (sts get-caller-identity) has ','`
	for _, args := range [][]string{
		{"connect", "--to", "db.internal:5432", "--local-port", strconv.Itoa(freePort(t))},
		{"connect", "--shell"},
		{"run", "--wait=false"},
	} {
		out, errs, code := f.run(5*time.Second, args...)
		if code != 2 || !strings.Contains(errs, want) || !strings.Contains(errs, "nothing started") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d, want 2 and one line with %q:\n%s%s", args, code, want, out, errs)
		}
		if strings.Contains(out, "reusing") {
			t.Errorf("%v reused %s, alice_x's:\n%s", args, taskID(theirs), out)
		}
	}
	if runs, calls := f.runTasks(), f.ssm.Calls(); len(runs) != 0 || calls["StartSession"] != 0 {
		t.Fatalf("started %d tasks and %d sessions, want none", len(runs), calls["StartSession"])
	}
	if task, _ := f.api.Task(theirs); task.DesiredStatus != "RUNNING" {
		t.Fatal("alice_x's bastion was stopped")
	}

	out, errs, code := f.run(5*time.Second, "ls")
	if code != 0 || strings.Contains(out, "would reuse") || !strings.Contains(out, `bastion-ttl connect would refuse: your user ID "`+me+`" has ','`) {
		t.Errorf("ls: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = f.run(5*time.Second, "ls", "--json")
	if strings.Contains(out, "connectReuses") {
		t.Errorf("ls --json marks a bastion for %s:\n%s", me, out)
	}

	f.env.Caller = fakeCaller{arn: "arn:aws:sts::123456789012:assumed-role/developers/alice_x", userID: other}
	if out, errs, code := f.run(5*time.Second, "ls"); code != 0 || !strings.Contains(out, "bastion-ttl connect would reuse "+taskID(theirs)+" (yours, ") {
		t.Errorf("ls as alice_x: exit %d\n%s%s", code, out, errs)
	}
}
