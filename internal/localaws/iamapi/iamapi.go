// Package iamapi is a local stand-in for IAM's GetRole, as the AWS SDK
// reaches it (the Query protocol: a signed form POST, an XML answer). It
// returns a role's trust policy URL-encoded (RFC 3986), as IAM does, and
// IAM's errors: NoSuchEntity (404), AccessDenied (403).
package iamapi

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/sigv4"
)

// Role is a role the stand-in knows.
type Role struct {
	Name  string
	ID    string // AROA...
	Trust string // the trust policy, as JSON
}

// Server answers GetRole for its roles, signed with Credentials.
type Server struct {
	Account     string
	Credentials aws.Credentials
	// Readable, when set, says which roles the caller may read (the
	// function's iam:GetRole grant); the rest answer AccessDenied.
	Readable func(name string) bool
	// Delay holds every answer this long (a slow IAM).
	Delay time.Duration

	mu       sync.Mutex
	roles    map[string]Role
	requests atomic.Int64
	asked    []string
}

// Put adds or replaces a role.
func (s *Server) Put(r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles == nil {
		s.roles = map[string]Role{}
	}
	s.roles[r.Name] = r
}

// Asked returns the role names GetRole was asked for, in order.
func (s *Server) Asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "MalformedInput", err.Error())
		return
	}
	// After the body is read: only then does the server notice a caller
	// that gives up.
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-r.Context().Done():
			return
		}
	}
	lookup := func(id string) (aws.Credentials, bool) { return s.Credentials, id == s.Credentials.AccessKeyID }
	signed, err := sigv4.Verify(r, body, lookup, time.Now(), 5*time.Minute)
	if err != nil || signed.Service != "iam" {
		s.fail(w, http.StatusForbidden, "SignatureDoesNotMatch", fmt.Sprintf("signature: %v (service %q)", err, signed.Service))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "GetRole" || form.Get("Version") != "2010-05-08" {
		s.fail(w, http.StatusBadRequest, "InvalidAction", "Could not find operation "+form.Get("Action"))
		return
	}
	name := form.Get("RoleName")
	s.mu.Lock()
	s.asked = append(s.asked, name)
	role, ok := s.roles[name]
	s.mu.Unlock()
	arn := "arn:aws:iam::" + s.Account + ":role/" + name
	switch {
	case s.Readable != nil && !s.Readable(name):
		s.fail(w, http.StatusForbidden, "AccessDenied", "User is not authorized to perform: iam:GetRole on resource: "+arn)
		return
	case !ok:
		s.fail(w, http.StatusNotFound, "NoSuchEntity", "The role with name "+name+" cannot be found.")
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <GetRoleResult>
    <Role>
      <Path>/</Path>
      <AssumeRolePolicyDocument>%s</AssumeRolePolicyDocument>
      <MaxSessionDuration>3600</MaxSessionDuration>
      <RoleId>%s</RoleId>
      <RoleLastUsed/>
      <RoleName>%s</RoleName>
      <Arn>%s</Arn>
      <CreateDate>2026-11-30T09:00:00Z</CreateDate>
    </Role>
  </GetRoleResult>
  <ResponseMetadata><RequestId>0a1b2c3d-4e5f-6789-abcd-ef0123456789</RequestId></ResponseMetadata>
</GetRoleResponse>`, esc(Encode(role.Trust)), esc(role.ID), esc(name), esc(arn))
}

// Encode URL-encodes a policy document as IAM returns it: every byte but
// RFC 3986's unreserved characters as %XX.
func Encode(doc string) string {
	var b strings.Builder
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>0a1b2c3d-4e5f-6789-abcd-ef0123456789</RequestId></ErrorResponse>`, esc(code), esc(msg))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
