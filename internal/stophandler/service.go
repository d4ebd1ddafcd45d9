package stophandler

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// ECS is the one ECS call this function makes.
type ECS interface {
	StopTask(ctx context.Context, in *ecs.StopTaskInput, optFns ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
}

var _ ECS = (*ecs.Client)(nil)

// Service answers POST /terminate.
type Service struct {
	ECS    ECS
	Policy Policy
	Region string // the function's own region: tasks elsewhere are refused
	Log    *slog.Logger
}

// Handle is the Lambda handler: an adapter from the API Gateway HTTP API
// (payload 2.0) event to stop and back. Every outcome is an HTTP answer; it
// never returns an error to the Lambda runtime.
func (s *Service) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	began := time.Now()
	var id Identity
	if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil {
		id = Identity{UserARN: a.IAM.UserARN, UserID: a.IAM.UserID}
	}
	accepted, taskARN, err := s.stop(ctx, id, ev)
	status, body := http.StatusAccepted, any(accepted)
	attrs := []any{"request_id", ev.RequestContext.RequestID, "caller", id.UserARN, "task_arn", taskARN}
	outcome := "stopped"
	if err != nil {
		status, body = err.Status, stopapi.ErrorBody{Code: err.Code, Error: err.Message}
		outcome = "rejected"
		if err.Status >= 500 {
			outcome = "failed"
		}
		attrs = append(attrs, "code", string(err.Code), "error", err.Message)
		if err.Cause != nil {
			attrs = append(attrs, "cause", err.Cause.Error())
		}
	}
	attrs = append(attrs, "outcome", outcome, "status", status, "duration_ms", time.Since(began).Milliseconds())
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	} else if status >= 400 {
		level = slog.LevelWarn
	}
	s.Log.Log(ctx, level, "terminate request", attrs...)
	return respond(status, body), nil
}

// stop validates, authorizes and stops. It returns the task ARN as soon as
// it is known, for the log line.
func (s *Service) stop(ctx context.Context, id Identity, ev events.APIGatewayV2HTTPRequest) (stopapi.Accepted, string, *Error) {
	t, err := parseRequest(ev.RequestContext.HTTP.Method, ev.Body, ev.IsBase64Encoded, s.Region)
	if err != nil {
		return stopapi.Accepted{}, "", err
	}
	arn := t.task.String()
	if err := s.Policy.authorize(id, ev.RequestContext.AccountID, t); err != nil {
		return stopapi.Accepted{}, arn, err
	}
	ctx, cancel := withReserve(ctx)
	defer cancel()
	out, stopErr := s.ECS.StopTask(ctx, &ecs.StopTaskInput{
		Cluster: aws.String(t.cluster),
		Task:    aws.String(arn),
		Reason:  aws.String(stopReason(t.reason)),
	})
	if stopErr != nil {
		return stopapi.Accepted{}, arn, classify(stopErr)
	}
	a := stopapi.Accepted{TaskARN: arn}
	if out != nil && out.Task != nil {
		a.LastStatus, a.DesiredStatus = aws.ToString(out.Task.LastStatus), aws.ToString(out.Task.DesiredStatus)
	}
	return a, arn, nil
}

// stopReserve is the time kept back from the function's deadline: a slow
// ECS must end in a 503 the caller retries, not in a runtime killed mid-call
// (API Gateway would answer its own 500 or 503 without a code).
const stopReserve = 1500 * time.Millisecond

// withReserve ends ctx stopReserve before its deadline, or at a fifth of
// the time left when that is shorter.
func withReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(stopReserve, time.Until(deadline)/5)
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

// classify maps an ECS error to the API's status table.
func classify(err error) *Error {
	const busy = "ECS is busy or unavailable; retry"
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidParameterException":
			if strings.Contains(strings.ToLower(ae.ErrorMessage()), "not found") {
				return failed(http.StatusNotFound, err, "task not found")
			}
		case "ClusterNotFoundException":
			return failed(http.StatusNotFound, err, "task not found (no such cluster)")
		case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation":
			// The function's role may not stop this task: a refusal, not a fault.
			return failed(http.StatusForbidden, err, "the function may not stop this task")
		case "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "ServerException", "ServiceUnavailableException":
			return failed(http.StatusServiceUnavailable, err, busy)
		}
		if ae.ErrorFault() == smithy.FaultServer {
			return failed(http.StatusServiceUnavailable, err, busy)
		}
		return internalError(err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return failed(http.StatusServiceUnavailable, err, busy)
	}
	return internalError(err)
}

func respond(status int, body any) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with the types above
		status, b = http.StatusInternalServerError, []byte(`{"code":"Internal","error":"internal error"}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}
}
