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
