package launcher

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
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
		ExitCode(got, &printed)
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
