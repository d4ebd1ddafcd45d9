package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// ExitError is an error with the process's exit code.
type ExitError struct {
	Code int
	Err  error
}

// Error is the wrapped error's text: the code is not part of it.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap is the error the code was given to.
func (e *ExitError) Unwrap() error { return e.Err }

// UsageCode is the exit code of bad input: a bad command line or
// configuration, nothing done.
const UsageCode = 2

// Exit is err with the exit code code; nil when err is nil.
func Exit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// Usage is bad input (exit 2) that says msg.
func Usage(msg string) error { return Exit(UsageCode, errors.New(msg)) }

// Usagef is bad input (exit 2), formatted as fmt.Errorf does (%w wraps).
func Usagef(format string, args ...any) error {
	return Exit(UsageCode, fmt.Errorf(format, args...))
}

// IsUsage reports whether err is bad input (exit 2).
func IsUsage(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Code == UsageCode
}

// ExitCode is the process's exit code for err: 0 for nil, the code of the
// first ExitError in its chain, else 1. A non-nil err is printed to stderr
// after prog's name, each line and each tab-separated cell made safe for a
// terminal (package termtext): a message's own newlines and tabs stay, any
// other control character (from an AWS answer, say) does not reach the
// terminal raw.
func ExitCode(err error, stderr io.Writer, prog string) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Err == nil {
		return ee.Code // a code passed on (Pass), with nothing to say
	}
	fmt.Fprintln(stderr, prog+":", safeLines(err.Error()))
	if ee != nil {
		return ee.Code
	}
	return 1
}

// Pass is an exit code passed on from a program the command ran (a client
// it started, say), which has said what it had to: ExitCode prints nothing
// for it. Nil for 0.
func Pass(code int) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}

// safeLines is s made safe for a terminal, line by line and cell by cell.
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		cells := strings.Split(line, "\t")
		for j := range cells {
			cells[j] = termtext.Safe(cells[j])
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n")
}
