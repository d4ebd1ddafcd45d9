package apigateway

import (
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// ToREST is the request ev as a REST API with IAM auth delivers it (payload
// format 1.0) from stage: the route's path in resource, the caller in
// requestContext.identity (userArn, and user, the principal ID that the
// HTTP API calls userId).
func ToREST(ev events.APIGatewayV2HTTPRequest, stage string) events.APIGatewayProxyRequest {
	r := events.APIGatewayProxyRequest{
		HTTPMethod: ev.RequestContext.HTTP.Method, Body: ev.Body, IsBase64Encoded: ev.IsBase64Encoded,
		Resource: ev.RawPath, Path: ev.RawPath, Headers: ev.Headers,
	}
	if _, routePath, ok := strings.Cut(ev.RouteKey, " "); ok {
		r.Resource = routePath
	}
	c := &r.RequestContext
	c.AccountID, c.RequestID, c.Stage, c.HTTPMethod = ev.RequestContext.AccountID, ev.RequestContext.RequestID, stage, r.HTTPMethod
	c.ResourcePath, c.Path = r.Resource, "/"+stage+r.Path
	if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil {
		c.Identity.UserArn, c.Identity.User, c.Identity.Caller = a.IAM.UserARN, a.IAM.UserID, a.IAM.UserID
		c.Identity.AccountID, c.Identity.AccessKey = a.IAM.AccountID, a.IAM.AccessKey
	}
	return r
}
