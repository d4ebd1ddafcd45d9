package stopclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
)

// emptySHA256 is the payload hash of a GET without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Prove is the identity proof for one request (the header's value): an
// sts:GetCallerIdentity presigned with creds at now, for the STS endpoint
// in region, with the request's binding signed in. Made afresh for every
// attempt, so a retry never carries a proof older than its signature.
func Prove(ctx context.Context, creds aws.Credentials, endpoint *url.URL, region, method, route string, body []byte, now time.Time) (string, error) {
	if endpoint == nil {
		return "", errors.New("no STS endpoint to make the proof for")
	}
	u := url.URL{Scheme: endpoint.Scheme, Host: endpoint.Host, Path: "/",
		RawQuery: url.Values{
			"Action":        {identityproof.Action},
			"Version":       {identityproof.APIVersion},
			"X-Amz-Expires": {identityproof.Expires},
		}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set(identityproof.BindingHeader, identityproof.Binding(method, route, body))
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptySHA256, identityproof.SigningName, region, now)
	if err != nil {
		return "", err
	}
	return identityproof.Encode(signed), nil
}
