// Package apigateway is a local stand-in for an API Gateway HTTP API route
// with AWS_IAM authorization (or, with Gateway.Stage, a private REST API's),
// for the demo and the end-to-end tests: it verifies the request's SigV4
// signature, builds the payload format 2.0 event (or 1.0) with the caller's
// IAM identity and the members API Gateway fills, invokes the function (in
// process, or the real bootstrap under the Lambda Runtime Interface
// Emulator) and turns its answer into the HTTP response, as API Gateway
// does.
package apigateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	// Stage, when set, makes this a private REST API's stage, reached
	// through an interface VPC endpoint: its URLs start /<Stage>, and the
	// routes are matched on what follows (pair it with RESTInvokeURL or
	// REST, which deliver payload 1.0 with the endpoint's headers).
	Stage string
	// APIID is the API's ID (requestContext.apiId); empty: a1b2c3d4e5.
	APIID string
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

	ev := g.event(r, route, path, body, signed.AccessKeyID, caller)
	ctx := r.Context()
	if g.Stage != "" {
		ctx = context.WithValue(ctx, sentHeaderKey{}, sentHeader(r))
	}
	resp, err := g.Invoke(ctx, ev)
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

// event is the payload 2.0 event for r, with what API Gateway adds: the
// forwarding and trace headers, the request's instant (time, timeEpoch),
// the API's ID and domain.
func (g *Gateway) event(r *http.Request, route, path string, body []byte, accessKeyID string, caller Caller) events.APIGatewayV2HTTPRequest {
	now := g.Now().UTC()
	sourceIP := clientAddress(r)
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       route,
		RawPath:        path,
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{"host": r.Host},
		Body:           string(body),
	}
	for k, v := range r.Header {
		ev.Headers[strings.ToLower(k)] = strings.Join(v, ",") // as API Gateway joins a repeated header
	}
	// The API is HTTPS only, on 443: the stand-in's plain HTTP stands in for it.
	ev.Headers["x-forwarded-for"], ev.Headers["x-forwarded-port"], ev.Headers["x-forwarded-proto"] = sourceIP, "443", "https"
	ev.Headers["x-amzn-trace-id"] = fmt.Sprintf("Root=1-%08x-%s", now.Unix(), randomHex(12))

	rc := &ev.RequestContext
	rc.RouteKey, rc.AccountID, rc.Stage = ev.RouteKey, g.AccountID, "$default"
	rc.APIID, rc.DomainName, rc.DomainPrefix = g.apiID(), r.Host, domainPrefix(r.Host)
	rc.RequestID = requestID()
	rc.Time, rc.TimeEpoch = now.Format(timeLayout), now.UnixMilli()
	rc.HTTP = events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent()}
	rc.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			AccessKey: accessKeyID, AccountID: caller.AccountID, UserARN: caller.ARN,
			UserID: caller.UserID, CallerID: caller.UserID,
		},
	}
	return ev
}

// timeLayout is requestContext.time's (and 1.0's requestTime's) form.
const timeLayout = "02/Jan/2006:15:04:05 -0700"

func (g *Gateway) apiID() string {
	if g.APIID == "" {
		return "a1b2c3d4e5"
	}
	return g.APIID
}

// clientAddress is the caller's IP address, without its port.
func clientAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// domainPrefix is the first label of host (for an execute-api name, the API ID).
func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}

// requestID is an ID of the form API Gateway gives a request ("Bq3xYhX0joEEMdA=").
func requestID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
		return invoke(ctx, url, restEvent(ctx, ev, stage))
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
