// Package stophandler is the terminate Lambda's logic: it reads a
// POST /terminate, POST /extend or POST /usage request from API Gateway, checks the
// caller's proof of identity, lets a task act only on itself, and calls
// ecs:StopTask, or records the extended TTL in the task's bastion-ttl tag.
package stophandler

import (
	"fmt"
	"net/http"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// errorAnswer is an answer other than 200 or 202: a status, a stable code
// and a message safe to show the caller. Cause, if any, is logged and never
// returned. It is not an error value: every path hands it to the answer and
// the log line, never up a call chain.
type errorAnswer struct {
	Status  int
	Code    stopapi.Code
	Message string
	Cause   error
}

// codes maps each status the function answers to its code: one code a
// status, so that a client can decide on either (docs/api.md's table).
var codes = map[int]stopapi.Code{
	http.StatusBadRequest:            stopapi.CodeBadRequest,
	http.StatusForbidden:             stopapi.CodeForbidden,
	http.StatusNotFound:              stopapi.CodeTaskNotFound,
	http.StatusMethodNotAllowed:      stopapi.CodeMethodNotAllowed,
	http.StatusRequestEntityTooLarge: stopapi.CodeTooLarge,
	http.StatusServiceUnavailable:    stopapi.CodeUnavailable,
	http.StatusInternalServerError:   stopapi.CodeInternal,
}

func reject(status int, format string, args ...any) *errorAnswer {
	return &errorAnswer{Status: status, Code: codes[status], Message: fmt.Sprintf(format, args...)}
}

// failed is a rejection whose cause is logged, never answered.
func failed(status int, cause error, format string, args ...any) *errorAnswer {
	e := reject(status, format, args...)
	e.Cause = cause
	return e
}

func internalError(cause error) *errorAnswer {
	return failed(http.StatusInternalServerError, cause, "internal error")
}
