package launcher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/testenv"
)

// What an AWS error says (its message may quote a request's text someone
// else wrote) is printed safe for a terminal, whatever the error; errors.Is
// still finds what it wraps.
func TestAWSErrorIsSafeToPrint(t *testing.T) {
	cause := errors.New("connection reset" + evil)
	for _, err := range []error{
		&smithy.GenericAPIError{Code: "InvalidParameterException", Message: "Tag value " + evil + " is invalid"},
		&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform ecs:RunTask on " + evil},
		cause,
	} {
		var printed strings.Builder
		got := awsError("run-task", err)
		exitCode(got, &printed)
		if !strings.Contains(printed.String(), `\x1b]0;pwned`) {
			t.Errorf("awsError(%q) printed %q: want the text as escapes", err, printed.String())
		}
		terminalSafe(t, "the error", got.Error())
		terminalSafe(t, "the printed error", printed.String())
	}
	if !errors.Is(awsError("run-task", cause), cause) {
		t.Error("awsError hides what it wraps")
	}
}

// A failure to get credentials is told by MarkCredentials's mark, which
// the SDK's wrapping keeps, not by its text.
func TestAWSErrorOfMissingCredentials(t *testing.T) {
	f := newFakeAWS(t, "AROAEXAMPLEDEVELOPER1:alice")
	none := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	})
	client := ecs.New(ecs.Options{Region: testenv.Region, BaseEndpoint: aws.String("http://127.0.0.1:1"), Credentials: MarkCredentials(none)})
	f.env.ECS = runTaskECS{client, f}
	if _, errs, code := f.run(5*time.Second, "ls", "--cluster", "bastions"); code != 2 || !strings.Contains(errs, "no usable AWS credentials (list-tasks)") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Unmarked, the same text is an error like any other.
	if err := awsError("list-tasks", errors.New("failed to retrieve credentials")); cli.IsUsage(err) {
		t.Fatalf("%v: a usage error by its text", err)
	}
}
