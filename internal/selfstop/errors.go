// Package selfstop is the terminate Lambda's logic: it reads a POST
// /terminate request from API Gateway, lets a task stop only itself, and
// calls ecs:StopTask.
package selfstop

import (
	"fmt"
	"net/http"
)

// Error is an answer other than 202: a status and a message safe to show the
// caller. Cause, if any, is logged and never returned.
type Error struct {
	Status  int
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Cause)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

func reject(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

func internal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Message: "internal error", Cause: cause}
}
