package apigateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// REST is an Invoker for a REST API's stage: handle gets the request as
// payload 1.0 (ToREST), with its headers as sent.
func REST(handle func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error), stage string) Invoker {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp, err := handle(ctx, restEvent(ctx, ev, stage))
		return events.APIGatewayV2HTTPResponse{StatusCode: resp.StatusCode, Headers: resp.Headers, Body: resp.Body}, err
	}
}

// sentHeaderKey carries the request's header as sent (sentHeader) from a
// REST stage's Gateway to its invoker: payload 1.0 keeps each name's case
// and each value of a repeated header, which the 2.0 event has lost.
type sentHeaderKey struct{}

// sentHeader is r's header with its Host. Its names are as net/http reads
// them, canonical: the case Go's clients, the supervisor among them, send.
func sentHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	h["Host"] = []string{r.Host}
	return h
}

func restEvent(ctx context.Context, ev events.APIGatewayV2HTTPRequest, stage string) events.APIGatewayProxyRequest {
	sent, _ := ctx.Value(sentHeaderKey{}).(http.Header)
	return toREST(ev, stage, sent)
}

// ToREST is the request ev as a private REST API with IAM auth delivers it
// (payload format 1.0) from stage, through an interface VPC endpoint: the
// route's path in resource, the caller in requestContext.identity (userArn,
// and user, the principal ID that the HTTP API calls userId), the headers
// in the sender's case (here, canonical) and in multiValueHeaders too, with
// those API Gateway adds for a private API.
func ToREST(ev events.APIGatewayV2HTTPRequest, stage string) events.APIGatewayProxyRequest {
	return toREST(ev, stage, nil)
}

// The VPC and interface endpoint the private API is reached through.
const (
	vpcID         = "vpc-0a1b2c3d"
	vpcEndpointID = "vpce-0a1b2c3d4e5f60718"
)

// toREST is ToREST with the headers as sent; nil: ev's.
func toREST(ev events.APIGatewayV2HTTPRequest, stage string, sent http.Header) events.APIGatewayProxyRequest {
	if sent == nil {
		sent = http.Header{}
		for k, v := range ev.Headers {
			sent[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
		}
		for _, k := range []string{"X-Forwarded-Port", "X-Forwarded-Proto", "X-Amzn-Trace-Id"} {
			delete(sent, k) // the HTTP API's; the private API's capture has none
		}
	}
	http2 := ev.RequestContext.HTTP
	r := events.APIGatewayProxyRequest{
		HTTPMethod: http2.Method, Body: ev.Body, IsBase64Encoded: ev.IsBase64Encoded,
		Resource: ev.RawPath, Path: ev.RawPath,
		Headers: map[string]string{}, MultiValueHeaders: map[string][]string{},
	}
	if _, routePath, ok := strings.Cut(ev.RouteKey, " "); ok {
		r.Resource = routePath
	}
	for k, vs := range sent {
		if len(vs) == 0 || k == "Content-Length" { // a REST API passes no Content-Length on
			continue
		}
		r.Headers[k], r.MultiValueHeaders[k] = vs[len(vs)-1], vs // headers: the last value
	}
	added := map[string]string{ // names in API Gateway's case
		"X-Forwarded-For":        http2.SourceIP,
		"x-amzn-cipher-suite":    "ECDHE-RSA-AES128-GCM-SHA256", // the endpoint is HTTPS only: the stand-in's plain HTTP stands in for it
		"x-amzn-tls-version":     "TLSv1.2",
		"x-amzn-vpc-id":          vpcID,
		"x-amzn-vpce-config":     "0",
		"x-amzn-vpce-id":         vpcEndpointID,
		"x-amzn-vpce-policy-url": "MQ==",
	}
	for k, v := range added {
		if v != "" {
			r.Headers[k], r.MultiValueHeaders[k] = v, []string{v}
		}
	}

	c := &r.RequestContext
	v2 := ev.RequestContext
	c.AccountID, c.Stage, c.HTTPMethod, c.Protocol = v2.AccountID, stage, r.HTTPMethod, http2.Protocol
	c.ResourcePath, c.Path, c.ResourceID = r.Resource, "/"+stage+r.Path, hashed(r.Resource)[:6]
	c.APIID, c.DomainName, c.DomainPrefix = v2.APIID, v2.DomainName, v2.DomainPrefix
	c.RequestID, c.ExtendedRequestID = uuid(v2.RequestID), v2.RequestID // 1.0's requestId is a UUID
	c.RequestTime, c.RequestTimeEpoch = v2.Time, v2.TimeEpoch
	c.Identity.SourceIP, c.Identity.UserAgent = http2.SourceIP, http2.UserAgent
	if a := v2.Authorizer; a != nil && a.IAM != nil {
		c.Identity.UserArn, c.Identity.User, c.Identity.Caller = a.IAM.UserARN, a.IAM.UserID, a.IAM.UserID
		c.Identity.AccountID, c.Identity.AccessKey = a.IAM.AccountID, a.IAM.AccessKey
	}
	return r
}

func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// uuid is a UUID (version 4's form) that follows from s.
func uuid(s string) string {
	h := hashed(s)
	return fmt.Sprintf("%s-%s-4%s-a%s-%s", h[:8], h[8:12], h[13:16], h[17:20], h[20:32])
}
