package stophandler

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sts"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

// The tests' STS: it knows every caller a test made credentials for, so a
// test's event carries a proof of the identity it claims, and STS, not the
// event, is what the function believes.
var testSTS struct {
	once     sync.Once
	server   *sts.Server
	endpoint *url.URL
}

func stsEndpoint() *url.URL {
	testSTS.once.Do(func() {
		testSTS.server = &sts.Server{Region: region, Now: time.Now}
		srv := httptest.NewServer(testSTS.server)
		testSTS.endpoint, _ = url.Parse(srv.URL)
	})
	return testSTS.endpoint
}

// credsOf are the credentials of the identity (arn, userID), known to the
// tests' STS.
func credsOf(arn, userID string) aws.Credentials {
	stsEndpoint()
	return testSTS.server.Issue(arn, userID)
}

// proofOf is the header value proving (arn, userID) for the request.
func proofOf(arn, userID, route string, body []byte, at time.Time) string {
	p, err := stopclient.Prove(context.Background(), credsOf(arn, userID), stsEndpoint(), region, "POST", route, body, at)
	if err != nil {
		panic(err)
	}
	return p
}

// withProof gives ev a proof of the identity its requestContext claims,
// for its route and body as they are now. An event that claims none gets
// none.
func withProof(ev *events.APIGatewayV2HTTPRequest) {
	a := ev.RequestContext.Authorizer
	if a == nil || a.IAM == nil || a.IAM.UserARN == "" {
		return
	}
	raw := []byte(ev.Body)
	if ev.IsBase64Encoded {
		raw, _ = base64.StdEncoding.DecodeString(ev.Body)
	}
	if ev.Headers == nil {
		ev.Headers = map[string]string{}
	}
	ev.Headers[strings.ToLower(identityproof.Header)] = proofOf(a.IAM.UserARN, a.IAM.UserID, routeV2(*ev), raw, time.Now())
}

// testProver checks proofs with the tests' STS.
func testProver() *Prover {
	return &Prover{Endpoint: stsEndpoint(), Region: region, Now: time.Now}
}

// proven is ev with a proof of the identity it claims, made now: the
// request a real supervisor sends through a real API.
func proven(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPRequest {
	h := make(map[string]string, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		h[k] = v
	}
	ev.Headers = h
	withProof(&ev)
	return ev
}

// provenREST is proven for a REST API's event, whose headers keep the
// sender's case: the proof arrives as X-Bastion-Ttl-Identity.
func provenREST(ev events.APIGatewayProxyRequest) events.APIGatewayProxyRequest {
	id := ev.RequestContext.Identity
	if id.UserArn == "" {
		return ev
	}
	raw := []byte(ev.Body)
	if ev.IsBase64Encoded {
		raw, _ = base64.StdEncoding.DecodeString(ev.Body)
	}
	p := proofOf(id.UserArn, id.User, routeREST(ev), raw, time.Now())
	h := map[string]string{identityproof.Header: p}
	for k, v := range ev.Headers {
		h[k] = v
	}
	ev.Headers = h
	if ev.MultiValueHeaders != nil {
		m := map[string][]string{identityproof.Header: {p}}
		for k, v := range ev.MultiValueHeaders {
			m[k] = v
		}
		ev.MultiValueHeaders = m
	}
	return ev
}
