package launcher

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
)

// longCaller is an IAM user whose ARN, with its path, passes ECS's 255
// characters in a stop reason.
var longCaller = fakeCaller{arn: "arn:aws:iam::123456789012:user/" + strings.Repeat("équipe/", 40) + "alice", userID: "AIDAEXAMPLEUSER00001"}

// stop's reason names who stopped the bastion, cut by package lifetime's
// rule (lifetime.CutStopReason), the one every StopTask reason follows.
func TestStopReasonIsCutByTheLifetimeRule(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	f.env.Caller = longCaller
	arn := f.bastion("0f3a9c1be7d84a52b6c1d2e3f4a5b6c7", "AROAEXAMPLEDEVELOPER1:alice", "2h0m0s")
	if out, errs, code := f.run(5*time.Second, "stop", "0f3a9c1be7d84a52b6c1d2e3f4a5b6c7"); code != 0 {
		t.Fatalf("stop: exit %d\n%s%s", code, out, errs)
	}
	task, _ := f.api.Task(arn)
	want := lifetime.CutStopReason("bastion-ttl: stopped by " + longCaller.arn)
	if task.StoppedReason != want || utf8.RuneCountInString(task.StoppedReason) != lifetime.MaxStopReason {
		t.Errorf("reason %q (%d characters), want %q", task.StoppedReason, utf8.RuneCountInString(task.StoppedReason), want)
	}
}
