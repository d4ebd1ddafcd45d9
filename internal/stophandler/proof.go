package stophandler

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// Prover checks a request's proof of identity with STS and returns the
// identity STS vouches for. The event's requestContext cannot be trusted
// for this: anyone allowed to invoke the function directly writes it.
type Prover struct {
	// Endpoint is the only STS a proof may name (identityproof.Endpoint).
	Endpoint *url.URL
	// Region is the only region a proof may be signed for: the function's,
	// which is the regional STS endpoint's (it refuses any other scope).
	Region string
	// HTTP sends the proof; nil: a client with Timeout that follows no
	// redirect (a redirect would take the signed request elsewhere).
	HTTP *http.Client
	Now  func() time.Time
	// Timeout bounds the STS round trip; 0: proofTimeout.
	Timeout time.Duration
	// AcceptUnproven lets a request without the header through on the
	// event's identity, for a stack upgraded before its bastions'
	// supervisors; each such request is logged and counted.
	AcceptUnproven bool
}

// queryBytes is what may appear in a proof's raw query.
const queryBytes = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%&="

const (
	// maxProofSkew bounds a proof's X-Amz-Date: STS itself honours one for
	// 15 minutes, which is too long to leave a stolen proof usable.
	maxProofSkew = 5 * time.Minute
	// proofTimeout is one STS round trip's budget: it leaves the ECS call
	// most of the function's 10 s.
	proofTimeout = 3 * time.Second
	// maxSTSAnswer bounds what is read of STS's answer.
	maxSTSAnswer = 64 << 10
)

// How a request's identity was proven, for its log line.
const (
	proofVerified       = "verified"
	proofRefused        = "refused"
	proofAbsent         = "absent"
	proofAbsentAccepted = "absent, accepted (BASTION_ACCEPT_UNPROVEN)"
)

// proofHeader is the header's value, looked up case-insensitively; more
// than one value is malformed.
func proofHeader(headers map[string]string) (string, bool, *errorAnswer) {
	var found []string
	for k, v := range headers {
		if strings.EqualFold(k, identityproof.Header) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 0:
		return "", false, nil
	case 1:
		if strings.Contains(found[0], ",") { // API Gateway joins repeated headers with commas
			return "", true, proofInvalid(nil, "more than one %s header", identityproof.Header)
		}
		return found[0], true, nil
	}
	return "", true, proofInvalid(nil, "more than one %s header", identityproof.Header)
}

// prove returns the identity a request proves, or why it proves none.
// claimed is the event's identity: when it names one, the two must agree.
func (p *Prover) prove(ctx context.Context, r request) (Identity, string, *errorAnswer) {
	if !r.hasProof {
		if p.AcceptUnproven {
			return r.id, proofAbsentAccepted, nil
		}
		return Identity{}, proofAbsent, proofInvalid(nil, "no %s header: the supervisor must send a proof of identity (supervisor v0.2.0 or later)", identityproof.Header)
	}
	u, err := p.check(r.proof)
	if err != nil {
		return Identity{}, proofRefused, err
	}
	binding := identityproof.Binding(r.method, r.route, r.rawBody)
	id, err := p.ask(ctx, u, binding)
	if err != nil {
		return Identity{}, proofRefused, err
	}
	if r.id.UserARN != "" && r.id.UserARN != id.UserARN || !sameUserID(r.id.UserID, id.UserID) {
		return Identity{}, proofRefused, proofInvalid(fmt.Errorf("STS says %s (%s), the event %s (%s)", id.UserARN, id.UserID, r.id.UserARN, r.id.UserID),
			"the proof's identity is not the caller's")
	}
	return id, proofVerified, nil
}

// sameUserID reports whether the event's userId (empty: none) names STS's
// UserId: the same <RoleId>:<session>, or its role ID alone. Captured events
// of a role's session give the former; the role ID alone is in the sample
// events of aws-lambda-go and Powertools (see testdata/README.md).
func sameUserID(event, proven string) bool {
	if event == "" || event == proven {
		return true
	}
	role, _, ok := strings.Cut(proven, ":")
	return ok && event == role
}

// check decodes the proof and accepts only a GetCallerIdentity presigned
// for this function's STS: nothing else is ever sent anywhere.
func (p *Prover) check(value string) (*url.URL, *errorAnswer) {
	raw, err := identityproof.Decode(value)
	if err != nil {
		return nil, proofInvalid(nil, "%v", err)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Fragment != "" || u.RawFragment != "" {
		return nil, proofInvalid(nil, "the proof is not a URL")
	}
	// Exactly the endpoint's scheme and host, as the maker writes them: no
	// case folding, no port spelled out, nothing for a resolver to read
	// differently.
	if u.Scheme != p.Endpoint.Scheme || u.Host != p.Endpoint.Host {
		return nil, proofInvalid(nil, "the proof is not for this function's STS endpoint")
	}
	if u.Path != "/" || u.RawPath != "" {
		return nil, proofInvalid(nil, "the proof's path is not /")
	}
	// The v4 signer writes only these bytes in a query; anything else would
	// be passed to STS as it is.
	if strings.ContainsFunc(u.RawQuery, func(c rune) bool { return !strings.ContainsRune(queryBytes, c) }) {
		return nil, proofInvalid(nil, "the proof's query has characters no signer writes")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, proofInvalid(nil, "the proof's query is malformed")
	}
	for k, vs := range q {
		if k != "Action" && k != "Version" && !slices.Contains(identityproof.SigV4QueryParams, k) {
			return nil, proofInvalid(nil, "the proof carries the query parameter %q", k)
		}
		if len(vs) != 1 {
			return nil, proofInvalid(nil, "the proof repeats the query parameter %q", k)
		}
	}
	if q.Get("Action") != identityproof.Action || q.Get("Version") != identityproof.APIVersion {
		return nil, proofInvalid(nil, "the proof is not Action=%s&Version=%s", identityproof.Action, identityproof.APIVersion)
	}
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-Signature") == "" {
		return nil, proofInvalid(nil, "the proof is not a SigV4 presigned URL")
	}
	if scope := strings.Split(q.Get("X-Amz-Credential"), "/"); len(scope) != 5 || scope[3] != identityproof.SigningName {
		return nil, proofInvalid(nil, "the proof is not signed for %s", identityproof.SigningName)
	} else if scope[2] != p.Region {
		return nil, proofInvalid(nil, "the proof is signed for the region %q, not %s", scope[2], p.Region)
	}
	if signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";"); !slices.Contains(signed, "host") || !slices.Contains(signed, identityproof.BindingHeader) {
		return nil, proofInvalid(nil, "the proof does not sign host and %s", identityproof.BindingHeader)
	}
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return nil, proofInvalid(nil, "the proof's X-Amz-Date is malformed")
	}
	if d := p.Now().Sub(at); d > maxProofSkew || d < -maxProofSkew {
		return nil, proofInvalid(nil, "the proof was made at %s, more than %s from now", at.Format(time.RFC3339), maxProofSkew)
	}
	return u, nil
}

// stsIdentity is GetCallerIdentity's answer in JSON (Accept: application/json).
type stsIdentity struct {
	Response struct {
		Result struct {
			Account string
			Arn     string
			UserID  string `json:"UserId"`
		} `json:"GetCallerIdentityResult"`
	} `json:"GetCallerIdentityResponse"`
}

// stsError is an error answer: JSON, or the XML STS answers without Accept.
type stsError struct {
	Error struct{ Code, Message string }
}

// ask sends the proof to STS with the binding this function computed: STS
// verifies the signature, binding included, and says whose it is.
func (p *Prover) ask(ctx context.Context, u *url.URL, binding string) (Identity, *errorAnswer) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = proofTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Identity{}, proofInvalid(err, "the proof is not a URL")
	}
	req.Header.Set(identityproof.BindingHeader, binding)
	req.Header.Set("Accept", "application/json")
	hc := p.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := hc.Do(req)
	if err != nil { // a time-out, a refused connection: STS's trouble, not the caller's
		return Identity{}, failed(http.StatusServiceUnavailable, err, "STS could not be reached to check the identity proof; retry")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSTSAnswer))
	if err != nil {
		return Identity{}, failed(http.StatusServiceUnavailable, err, "STS's answer could not be read; retry")
	}
	if resp.StatusCode == http.StatusOK {
		var a stsIdentity
		if err := json.Unmarshal(body, &a); err != nil || a.Response.Result.Arn == "" {
			return Identity{}, failed(http.StatusServiceUnavailable, fmt.Errorf("STS answered 200 with %.300q", body), "STS's answer could not be read; retry")
		}
		return Identity{UserARN: a.Response.Result.Arn, UserID: a.Response.Result.UserID}, nil
	}
	code := errorCode(body)
	cause := fmt.Errorf("STS answered %d %s: %.300q", resp.StatusCode, code, body)
	// By code, not status: STS throttles with a 400.
	switch {
	case code == "RegionDisabledException":
		// The account has turned this region's STS off: the operator's to
		// fix, not the caller's; 500, which the supervisor retries.
		return Identity{}, internalError(cause)
	case code == "Throttling" || code == "ThrottlingException" || code == "RequestLimitExceeded" ||
		code == "ServiceUnavailable" || code == "InternalFailure" || code == "InternalError" || resp.StatusCode >= 500:
		return Identity{}, failed(http.StatusServiceUnavailable, cause, "STS is busy or unavailable; retry")
	}
	return Identity{}, proofInvalid(cause, "STS refused the identity proof (%s)", code)
}

// errorCode is the code of an STS error answer, JSON or XML; "" if none.
func errorCode(body []byte) string {
	var e stsError
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return e.Error.Code
	}
	var x struct {
		Error struct{ Code string } `xml:"Error"`
	}
	if xml.Unmarshal(body, &x) == nil {
		return x.Error.Code
	}
	return ""
}

func proofInvalid(cause error, format string, args ...any) *errorAnswer {
	e := failed(http.StatusForbidden, cause, format, args...)
	e.Code = stopapi.CodeIdentityProofInvalid
	return e
}
