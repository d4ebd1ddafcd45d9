// Package stophandler is the terminate Lambda's logic: it reads a POST
// /terminate request from API Gateway, lets a task stop only itself, and
// calls ecs:StopTask.
package stophandler

import (
	"fmt"
	"net/http"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// Error is an answer other than 202: a status, a stable code and a message
// safe to show the caller. Cause, if any, is logged and never returned.
type Error struct {
	Status  int
	Code    stopapi.Code
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

// codes maps each status the function answers to its code (DESIGN.md's table).
var codes = map[int]stopapi.Code{
	http.StatusBadRequest:            stopapi.CodeBadRequest,
	http.StatusForbidden:             stopapi.CodeForbidden,
	http.StatusNotFound:              stopapi.CodeTaskNotFound,
	http.StatusMethodNotAllowed:      stopapi.CodeMethodNotAllowed,
	http.StatusRequestEntityTooLarge: stopapi.CodeTooLarge,
	http.StatusServiceUnavailable:    stopapi.CodeUnavailable,
	http.StatusInternalServerError:   stopapi.CodeInternal,
}

func reject(status int, format string, args ...any) *Error {
	return &Error{Status: status, Code: codes[status], Message: fmt.Sprintf(format, args...)}
}

// failed is a rejection whose cause is logged, never answered.
func failed(status int, cause error, format string, args ...any) *Error {
	e := reject(status, format, args...)
	e.Cause = cause
	return e
}

func internalError(cause error) *Error {
	return failed(http.StatusInternalServerError, cause, "internal error")
}
