// Package sigv4 checks AWS Signature Version 4 on an HTTP request, as
// API Gateway's IAM authorization does: it signs a copy of the request
// carrying only the signed headers with the caller's secret and compares.
package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrDenied is matched by every verification failure.
var ErrDenied = errors.New("signature not valid")

const algorithm = "AWS4-HMAC-SHA256"

// Signed is what a valid signature proves.
type Signed struct {
	AccessKeyID string
	Region      string
	Service     string
	Time        time.Time
}

// Lookup returns the credentials of an access key ID, false if unknown.
type Lookup func(accessKeyID string) (aws.Credentials, bool)

// Verify checks r's Authorization header over body. The signing time must be
// within maxSkew of now, as AWS allows (5 minutes).
func Verify(r *http.Request, body []byte, lookup Lookup, now time.Time, maxSkew time.Duration) (Signed, error) {
	auth, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return Signed{}, err
	}
	scope := strings.Split(auth.credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return Signed{}, fmt.Errorf("%w: bad credential scope", ErrDenied)
	}
	s := Signed{AccessKeyID: scope[0], Region: scope[2], Service: scope[3]}
	s.Time, err = time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || s.Time.Format("20060102") != scope[1] {
		return Signed{}, fmt.Errorf("%w: bad X-Amz-Date", ErrDenied)
	}
	if d := now.Sub(s.Time); d > maxSkew || d < -maxSkew {
		return Signed{}, fmt.Errorf("%w: signature expired or from the future", ErrDenied)
	}
	creds, ok := lookup(s.AccessKeyID)
	if !ok {
		return Signed{}, fmt.Errorf("%w: unknown access key", ErrDenied)
	}
	if creds.SessionToken != r.Header.Get("X-Amz-Security-Token") {
		return Signed{}, fmt.Errorf("%w: security token does not match", ErrDenied)
	}
	cp, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrDenied, err)
	}
	for _, h := range strings.Split(auth.signedHeaders, ";") {
		if h == "host" || h == "content-length" || h == "x-amz-security-token" {
			continue // set by the signer from the request itself
		}
		if vs := r.Header.Values(h); len(vs) > 0 {
			cp.Header[http.CanonicalHeaderKey(h)] = vs
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, cp, hex.EncodeToString(sum[:]), s.Service, s.Region, s.Time); err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrDenied, err)
	}
	if subtle.ConstantTimeCompare([]byte(cp.Header.Get("Authorization")), []byte(r.Header.Get("Authorization"))) != 1 {
		return Signed{}, fmt.Errorf("%w: signature does not match", ErrDenied)
	}
	return s, nil
}

type authorization struct{ credential, signedHeaders, signature string }

func parseAuthorization(h string) (authorization, error) {
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		return authorization{}, fmt.Errorf("%w: missing or not %s", ErrDenied, algorithm)
	}
	var a authorization
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			a.credential = v
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	if a.credential == "" || a.signedHeaders == "" || a.signature == "" {
		return authorization{}, fmt.Errorf("%w: incomplete Authorization header", ErrDenied)
	}
	return a, nil
}

// emptySHA256 is the payload hash of a presigned request: it has no body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// VerifyPresigned checks a presigned request (SigV4 query authentication),
// as STS does for a presigned GetCallerIdentity: the signature over the
// query and the signed headers, and a signing time no older than maxAge
// (STS: 15 minutes, whatever X-Amz-Expires says) and not in the future.
func VerifyPresigned(r *http.Request, lookup Lookup, now time.Time, maxAge time.Duration) (Signed, error) {
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != algorithm {
		return Signed{}, fmt.Errorf("%w: X-Amz-Algorithm missing or not %s", ErrDenied, algorithm)
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"} {
		if len(q[k]) > 1 {
			return Signed{}, fmt.Errorf("%w: %s repeated", ErrDenied, k)
		}
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return Signed{}, fmt.Errorf("%w: bad credential scope", ErrDenied)
	}
	s := Signed{AccessKeyID: scope[0], Region: scope[2], Service: scope[3]}
	var err error
	s.Time, err = time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil || s.Time.Format("20060102") != scope[1] {
		return Signed{}, fmt.Errorf("%w: bad X-Amz-Date", ErrDenied)
	}
	if d := now.Sub(s.Time); d > maxAge || d < -5*time.Minute {
		return Signed{}, fmt.Errorf("%w: signature expired: %s is more than %s from now", ErrDenied, s.Time.Format("20060102T150405Z"), maxAge)
	}
	creds, ok := lookup(s.AccessKeyID)
	if !ok {
		return Signed{}, fmt.Errorf("%w: unknown access key", ErrUnknownKey)
	}
	if creds.SessionToken != q.Get("X-Amz-Security-Token") {
		return Signed{}, fmt.Errorf("%w: security token does not match", ErrUnknownKey)
	}
	// Sign a copy that has the query less the signature and only the signed
	// headers; the signer sets the other X-Amz-* parameters again.
	want := q.Get("X-Amz-Signature")
	q.Del("X-Amz-Signature")
	cp, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.EscapedPath()+"?"+q.Encode(), nil)
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrDenied, err)
	}
	signedHeaders := q.Get("X-Amz-SignedHeaders")
	for _, h := range strings.Split(signedHeaders, ";") {
		if h == "host" {
			continue
		}
		if vs := r.Header.Values(h); len(vs) > 0 {
			cp.Header[http.CanonicalHeaderKey(h)] = vs
		}
	}
	got, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, cp, emptySHA256, s.Service, s.Region, s.Time)
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrDenied, err)
	}
	gu, err := url.Parse(got)
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrDenied, err)
	}
	gq := gu.Query()
	if gq.Get("X-Amz-SignedHeaders") != signedHeaders ||
		subtle.ConstantTimeCompare([]byte(gq.Get("X-Amz-Signature")), []byte(want)) != 1 {
		return Signed{}, fmt.Errorf("%w: signature does not match", ErrDenied)
	}
	return s, nil
}

// ErrUnknownKey is matched, with ErrDenied, when the access key or its
// session token is not known: STS's InvalidClientTokenId.
var ErrUnknownKey = fmt.Errorf("%w: invalid client token", ErrDenied)
