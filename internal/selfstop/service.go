package selfstop

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

	"github.com/bastion-ttl/bastion-ttl/internal/terminate"
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
	caller := ""
	if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil {
		caller = a.IAM.UserARN
	}
	accepted, taskARN, err := s.stop(ctx, caller, ev)
	status, body := http.StatusAccepted, any(accepted)
	attrs := []any{"request_id", ev.RequestContext.RequestID, "caller", caller, "task_arn", taskARN}
	outcome := "stopped"
	if err != nil {
		status, body = err.Status, terminate.ErrorBody{Error: err.Message}
		outcome = "rejected"
		if err.Status >= 500 {
			outcome = "failed"
		}
		attrs = append(attrs, "error", err.Message)
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
func (s *Service) stop(ctx context.Context, caller string, ev events.APIGatewayV2HTTPRequest) (terminate.Accepted, string, *Error) {
	t, err := parseRequest(ev.RequestContext.HTTP.Method, ev.Body, ev.IsBase64Encoded, s.Region)
	if err != nil {
		return terminate.Accepted{}, "", err
	}
	arn := t.task.String()
	if err := s.Policy.authorize(caller, t); err != nil {
		return terminate.Accepted{}, arn, err
	}
	out, stopErr := s.ECS.StopTask(ctx, &ecs.StopTaskInput{
		Cluster: aws.String(t.cluster),
		Task:    aws.String(arn),
		Reason:  aws.String(stopReason(t.reason)),
	})
	if stopErr != nil {
		return terminate.Accepted{}, arn, classify(stopErr)
	}
	a := terminate.Accepted{TaskARN: arn}
	if out != nil && out.Task != nil {
		a.LastStatus, a.DesiredStatus = aws.ToString(out.Task.LastStatus), aws.ToString(out.Task.DesiredStatus)
	}
	return a, arn, nil
}

// classify maps an ECS error to the API's status table.
func classify(err error) *Error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidParameterException":
			if strings.Contains(strings.ToLower(ae.ErrorMessage()), "not found") {
				return &Error{Status: http.StatusNotFound, Message: "task not found", Cause: err}
			}
		case "ClusterNotFoundException":
			return &Error{Status: http.StatusNotFound, Message: "task not found (no such cluster)", Cause: err}
		case "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "ServerException", "ServiceUnavailableException":
			return &Error{Status: http.StatusServiceUnavailable, Message: "ECS is busy or unavailable; retry", Cause: err}
		}
		if ae.ErrorFault() == smithy.FaultServer {
			return &Error{Status: http.StatusServiceUnavailable, Message: "ECS is busy or unavailable; retry", Cause: err}
		}
		return internal(err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusServiceUnavailable, Message: "ECS is busy or unavailable; retry", Cause: err}
	}
	return internal(err)
}

func respond(status int, body any) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with the types above
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}
}
