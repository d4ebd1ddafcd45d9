// Package sts is a local stand-in for STS's GetCallerIdentity as a presigned
// URL reaches it: it verifies the SigV4 query signature (signed headers
// included) with the caller's secret and answers who signed, in JSON when
// asked with Accept: application/json and in XML otherwise, as STS does.
// Errors carry STS's codes: InvalidClientTokenId, SignatureDoesNotMatch.
package sts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sigv4"
)

// Caller is an identity STS knows: its credentials and who they are (for a
// task role, the assumed-role session ECS made).
type Caller struct {
	Credentials aws.Credentials
	ARN         string // arn:aws:sts::<account>:assumed-role/<role>/<session>
	UserID      string // <RoleId>:<session> for an assumed role
	AccountID   string
}

// MaxAge is how long STS honours a presigned GetCallerIdentity.
const MaxAge = 15 * time.Minute

// Server answers GetCallerIdentity for its Callers.
type Server struct {
	// Region is the region of this regional endpoint: a signature scoped to
	// any other is refused, as STS does. Empty: any.
	Region  string
	Callers []Caller
	Now     func() time.Time
	// Fail, when set and returning a status, answers that status with that
	// error code instead (fault injection: Throttling with a 400, a 500).
	Fail func(r *http.Request) (status int, code string)
	// Delay holds every answer this long (a slow STS).
	Delay time.Duration
	// Observe hears each answer ("identity verified", "identity refused").
	Observe func(event string, attrs ...any)

	requests atomic.Int64
	mu       sync.Mutex
	issued   map[string]Caller // by access key ID
}

// Issue returns credentials for the identity (arn, userID), the same for
// the same identity, and makes them known: a test can then prove any
// identity it claims.
func (s *Server) Issue(arn, userID string) aws.Credentials {
	sum := sha256.Sum256([]byte(arn + "\n" + userID))
	key := "ASIA" + strings.ToUpper(hex.EncodeToString(sum[:8]))
	c := aws.Credentials{AccessKeyID: key, SecretAccessKey: hex.EncodeToString(sum[8:]), SessionToken: "token-" + key}
	account := ""
	if parts := strings.Split(arn, ":"); len(parts) > 4 {
		account = parts[4]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued == nil {
		s.issued = map[string]Caller{}
	}
	s.issued[key] = Caller{Credentials: c, ARN: arn, UserID: userID, AccountID: account}
	return c
}

// Requests is how many requests reached the server.
func (s *Server) Requests() int { return int(s.requests.Load()) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if s.Fail != nil {
		if status, code := s.Fail(r); status != 0 {
			s.fail(w, r, status, code, "injected fault")
			return
		}
	}
	q := r.URL.Query()
	if r.URL.Path != "/" || q.Get("Action") != "GetCallerIdentity" || q.Get("Version") != "2011-06-15" {
		s.fail(w, r, http.StatusBadRequest, "InvalidAction", "Could not find operation "+q.Get("Action")+" for version "+q.Get("Version"))
		return
	}
	signed, err := sigv4.VerifyPresigned(r, s.lookup, s.Now(), MaxAge)
	switch {
	case errors.Is(err, sigv4.ErrUnknownKey):
		s.fail(w, r, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	case err != nil:
		s.fail(w, r, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
		return
	}
	if s.Region != "" && signed.Region != s.Region {
		s.fail(w, r, http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to a valid region, not '"+signed.Region+"'.")
		return
	}
	if signed.Service != "sts" {
		s.fail(w, r, http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.")
		return
	}
	c := s.caller(signed.AccessKeyID)
	s.observe("identity verified", "caller", c.ARN)
	id := result{Arn: c.ARN, UserID: c.UserID, Account: c.AccountID}
	const requestID = "01234567-89ab-cdef-0123-456789abcdef"
	if wantsJSON(r) {
		var a struct {
			Response struct {
				Result   result `json:"GetCallerIdentityResult"`
				Metadata struct {
					RequestID string `json:"RequestId"`
				} `json:"ResponseMetadata"`
			} `json:"GetCallerIdentityResponse"`
		}
		a.Response.Result, a.Response.Metadata.RequestID = id, requestID
		writeJSON(w, http.StatusOK, a)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>%s</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
		esc(id.Arn), esc(id.UserID), esc(id.Account), requestID)
}

type result struct {
	Arn     string `json:"Arn"`
	UserID  string `json:"UserId"`
	Account string `json:"Account"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.observe("identity refused", "code", code, "error", msg)
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	if wantsJSON(r) {
		var e struct {
			Error     struct{ Type, Code, Message string }
			RequestID string `json:"RequestId"`
		}
		e.Error.Type, e.Error.Code, e.Error.Message, e.RequestID = typ, code, msg, "01234567-89ab-cdef-0123-456789abcdef"
		writeJSON(w, status, e)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ErrorResponse>`, typ, esc(code), esc(msg))
}

func (s *Server) observe(event string, attrs ...any) {
	if s.Observe != nil {
		s.Observe(event, attrs...)
	}
}

func (s *Server) lookup(id string) (aws.Credentials, bool) {
	c := s.caller(id)
	return c.Credentials, c.ARN != ""
}

func (s *Server) caller(accessKeyID string) Caller {
	for _, c := range s.Callers {
		if c.Credentials.AccessKeyID == accessKeyID {
			return c
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued[accessKeyID]
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// CheckProof verifies the identity proof r carries as the function and STS
// would, for a test's API stand-in: made for endpoint, presigned with creds,
// bound to r's method, route and body.
func CheckProof(r *http.Request, body []byte, endpoint *url.URL, creds aws.Credentials, now time.Time) error {
	raw, err := identityproof.Decode(r.Header.Get(identityproof.Header))
	if err != nil {
		return err
	}
	proof, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	if proof.URL.Scheme != endpoint.Scheme || proof.URL.Host != endpoint.Host {
		return fmt.Errorf("proof for %s://%s", proof.URL.Scheme, proof.URL.Host)
	}
	proof.Host = proof.URL.Host
	proof.Header.Set(identityproof.BindingHeader, identityproof.Binding(r.Method, identityproof.Route(r.URL.Path), body))
	_, err = sigv4.VerifyPresigned(proof, func(id string) (aws.Credentials, bool) { return creds, id == creds.AccessKeyID }, now, 5*time.Minute)
	return err
}
