// Package apigateway is a local stand-in for an API Gateway HTTP API route with
// AWS_IAM authorization, for the demo and the end-to-end tests: it verifies
// the request's SigV4 signature, builds the payload format 2.0 event with the
// caller's IAM identity, invokes the function (in process, or the real
// bootstrap under the Lambda Runtime Interface Emulator) and turns its answer
// into the HTTP response, as API Gateway does.
package apigateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sigv4"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
)

// Caller is an identity the gateway knows: its credentials and the IAM ARN
// API Gateway reports for them (for a task role, the assumed-role session).
// STS knows the same identities.
type Caller = sts.Caller

// Invoker runs the function with an event.
type Invoker func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Gateway serves its routes, e.g. "POST /terminate", all with one function.
type Gateway struct {
	Routes    []string // "<METHOD> <path>"
	Region    string   // the region signatures must be scoped to
	AccountID string   // the API's own account (requestContext.accountId)
	Callers   []Caller
	Invoke    Invoker
	Now       func() time.Time
	// Observe, when set, hears what the gateway did ("signature verified",
	// "signature rejected", "function error"...), for the demo's timeline.
	Observe func(event string, attrs ...any)
	// Stage, when set, makes this a REST API's stage: its URLs start
	// /<Stage>, and the routes are matched on what follows (pair it with
	// RESTInvokeURL, which delivers payload 1.0).
	Stage string
}

func (g *Gateway) observe(event string, attrs ...any) {
	if g.Observe != nil {
		g.Observe(event, attrs...)
	}
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Only the routes reach the function: no other path or method.
	path := r.URL.Path
	if g.Stage != "" {
		var ok bool
		if path, ok = strings.CutPrefix(path, "/"+g.Stage); !ok {
			writeMessage(w, http.StatusForbidden, "Missing Authentication Token") // a REST API's answer to an unknown path
			return
		}
	}
	route := r.Method + " " + path
	if !slices.Contains(g.Routes, route) {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10<<20))
	if err != nil {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	signed, err := sigv4.Verify(r, body, g.lookup, g.Now(), 5*time.Minute)
	if err == nil && (signed.Region != g.Region || signed.Service != "execute-api") {
		err = fmt.Errorf("signed for %s in %s, not execute-api in %s", signed.Service, signed.Region, g.Region)
	}
	if err != nil {
		g.observe("signature rejected", "err", err.Error())
		writeMessage(w, http.StatusForbidden, "Forbidden")
		return
	}
	caller := g.caller(signed.AccessKeyID)
	g.observe("signature verified", "caller", caller.ARN)

	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       route,
		RawPath:        path,
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		Body:           string(body),
	}
	for k, v := range r.Header {
		ev.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	rc := &ev.RequestContext
	rc.RouteKey, rc.AccountID, rc.Stage, rc.DomainName = ev.RouteKey, g.AccountID, "$default", r.Host
	rc.RequestID = fmt.Sprintf("demo-%d", g.Now().UnixNano())
	rc.HTTP = events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: r.RemoteAddr, UserAgent: r.UserAgent()}
	rc.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			AccessKey: signed.AccessKeyID, AccountID: caller.AccountID, UserARN: caller.ARN,
			UserID: caller.UserID, CallerID: caller.UserID,
		},
	}

	resp, err := g.Invoke(r.Context(), ev)
	if err != nil {
		g.observe("function error", "err", err.Error())
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, resp.Body)
}

func (g *Gateway) lookup(id string) (aws.Credentials, bool) {
	c := g.caller(id)
	return c.Credentials, c.ARN != ""
}

func (g *Gateway) caller(accessKeyID string) Caller {
	for _, c := range g.Callers {
		if c.Credentials.AccessKeyID == accessKeyID {
			return c
		}
	}
	return Caller{}
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// ErrFunction is a function error (the handler failed or panicked): API
// Gateway answers it with a 500.
var ErrFunction = errors.New("function error")

// InvokeURL invokes a function through the Lambda invoke API at url, such as
// the Runtime Interface Emulator's, with the HTTP API's payload (2.0).
func InvokeURL(url string) Invoker {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return invoke(ctx, url, ev)
	}
}

// RESTInvokeURL is InvokeURL for a REST API's stage: the function gets the
// request as payload 1.0 (ToREST), and must answer in that format's shape.
func RESTInvokeURL(url, stage string) Invoker {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return invoke(ctx, url, ToREST(ev, stage))
	}
}

func invoke(ctx context.Context, url string, ev any) (events.APIGatewayV2HTTPResponse, error) {
	var out events.APIGatewayV2HTTPResponse
	payload, err := json.Marshal(ev)
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return out, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20))
	if err != nil {
		return out, fmt.Errorf("invoke: %w", err)
	}
	var fnErr struct{ ErrorMessage, ErrorType string }
	_ = json.Unmarshal(b, &fnErr)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" || fnErr.ErrorType != "" || fnErr.ErrorMessage != "" {
		return out, fmt.Errorf("%w: %s %s", ErrFunction, resp.Status, b)
	}
	if _, isREST := ev.(events.APIGatewayProxyRequest); isREST && bytes.Contains(b, []byte(`"cookies"`)) {
		// A REST API refuses a response with members it does not know.
		return out, fmt.Errorf("%w: malformed Lambda proxy response %s", ErrFunction, b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("%w: answer %q: %v", ErrFunction, b, err)
	}
	return out, nil
}
