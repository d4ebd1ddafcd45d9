// Package identityproof is the wire contract of the proof of identity that
// every POST /terminate and POST /extend carries: an sts:GetCallerIdentity
// request presigned with the caller's own credentials, bound to the request
// it travels with. The function sends it to STS and believes the identity
// STS answers, not the event's requestContext, which anyone allowed to
// invoke the function directly can write. The maker (package stopclient)
// and the verifier (package stophandler) both import it.
package identityproof

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

const (
	// Header carries the proof: Version then the presigned URL, base64url
	// without padding. API Gateway's HTTP API lowercases header names, the
	// REST API keeps the sender's case: look it up case-insensitively.
	Header = "X-Bastion-Ttl-Identity"
	// Version prefixes the header's value; a later format gets another.
	Version = "v1."
	// BindingHeader is signed into the presigned request, so STS refuses
	// the proof with any other value: the hex SHA-256 of Binding's input.
	BindingHeader = "x-bastion-ttl-binding"

	// Action and APIVersion are the only operation a proof may name.
	Action     = "GetCallerIdentity"
	APIVersion = "2011-06-15"
	// SigningName is the service a proof is signed for.
	SigningName = "sts"
	// Expires is the X-Amz-Expires a proof asks for, in seconds. STS
	// honours a presigned GetCallerIdentity for 15 minutes whatever it
	// says; the verifier's own date check is what bounds a proof.
	Expires = "300"
	// MaxHeaderBytes bounds the header the verifier reads: a presigned URL
	// with a role session's token is about 2 KiB.
	MaxHeaderBytes = 8192
	// EndpointVariable points both ends at another STS (tests): the SDK's
	// own variable for the service's endpoint.
	EndpointVariable = "AWS_ENDPOINT_URL_STS"
)

// SigV4QueryParams are the presigned URL's signature parameters: with
// Action and Version, the only query parameters a proof may carry.
var SigV4QueryParams = []string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token",
}

// Binding ties a proof to one request: the lowercase hex SHA-256 of
// "<METHOD> /<route>\n<body as sent>", where route is the last element of
// the request's path (terminate, extend), whatever the stage.
func Binding(method, route string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method + " /" + route + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Route is the route a request path names, the one rule both ends bind a
// proof with: its last element, trailing slashes ignored, whatever the
// stage or a custom domain's base path before it: /prod/terminate,
// /bastion/terminate/ and /terminate -> terminate. The client takes it from
// the URL it sends to, the function from the path API Gateway gives it.
func Route(path string) string {
	path = strings.TrimRight(path, "/")
	return path[strings.LastIndexByte(path, '/')+1:]
}

// Encode is the header's value for a presigned URL.
func Encode(presigned string) string {
	return Version + base64.RawURLEncoding.EncodeToString([]byte(presigned))
}

// ErrMalformed is matched by Decode's errors.
var ErrMalformed = errors.New("identity proof malformed")

// Decode is the presigned URL in a header's value.
func Decode(value string) (string, error) {
	if len(value) > MaxHeaderBytes {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxHeaderBytes)
	}
	rest, ok := strings.CutPrefix(value, Version)
	if !ok {
		return "", fmt.Errorf("%w: does not start with %q", ErrMalformed, Version)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("%w: not unpadded base64url", ErrMalformed)
	}
	return string(raw), nil
}

// Endpoint is the STS endpoint proofs are made for and sent to: override
// (AWS_ENDPOINT_URL_STS) when set, else the regional endpoint of region in
// its partition, https://sts.<region>.<DNS suffix>. Only its scheme and host
// are used; the path of a proof is always "/".
func Endpoint(region, override string) (*url.URL, error) {
	if override == "" {
		if region == "" {
			return nil, errors.New("no region to find STS in")
		}
		return &url.URL{Scheme: "https", Host: "sts." + region + "." + dnsSuffix(region)}, nil
	}
	u, err := url.Parse(override)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" || u.User != nil {
		return nil, errors.New("not an absolute URL such as https://sts.eu-west-1.amazonaws.com")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("has a path, query or fragment; give only the scheme and host")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, errors.New("must be https (http only to a loopback host)")
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// dnsSuffix is the DNS suffix of region's partition (the SDK's partition
// table, which the supervisor does not link, has the same prefixes).
func dnsSuffix(region string) string {
	for _, p := range []struct{ prefix, suffix string }{
		{"cn-", "amazonaws.com.cn"},
		{"us-isob-", "sc2s.sgov.gov"},
		{"us-isof-", "csp.hci.ic.gov"},
		{"us-iso-", "c2s.ic.gov"},
		{"eu-isoe-", "cloud.adc-e.uk"},
		{"eusc-", "amazonaws.eu"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.suffix
		}
	}
	return "amazonaws.com" // aws and aws-us-gov
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
