// Package controlapi is the wire contract of the sidecar's control endpoint,
// which the people on a bastion and their scripts (supervisor status, the
// profile.d hook, curl) rely on: GET /status and POST /extend on a loopback
// address, plain HTTP. It holds the request and answer types, the schema
// version, the error codes, the limits and the checks of both, and which
// requests the server answers at all (CheckLocal). Its server
// (package supervisor, the sidecar) and its client (package controlclient)
// both import it; neither imports the other.
package controlapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// DefaultAddr is where the sidecar serves the endpoint unless
// BASTION_CONTROL_ADDR says otherwise. The containers of an awsvpc task
// share one network namespace, so every one of them reaches it there.
const DefaultAddr = "127.0.0.1:8311"

// The routes, and the one content type both directions use.
const (
	StatusPath  = "/status" // GET
	ExtendPath  = "/extend" // POST
	ContentType = "application/json"
)

// SchemaVersion is the version of Status. It changes only when a field
// changes meaning or goes; new fields keep it.
const SchemaVersion = 1

// Limits of the endpoint.
const (
	// MaxExtendBody bounds POST /extend's body ({"by": "30m"}).
	MaxExtendBody = 1024
	// MinExtension: people extend by minutes; smaller steps would only
	// multiply the calls the box's users can make the API pay for.
	MinExtension = time.Minute
	// MaxAnswerBytes bounds what a client reads of an answer.
	MaxAnswerBytes = 64 << 10
	// MaxErrorLen bounds the error text a client shows a person.
	MaxErrorLen = 300
)

// Timeouts of POST /extend. The server asks the stop API for one extension
// at a time: a request waits ExtendQueueWait for the one before it, then
// gets a 503 (try again); the API's call is given ExtendBudget. The server
// answers within ExtendAnswerTimeout, and a client waits a little longer.
const (
	ExtendQueueWait     = 5 * time.Second
	ExtendBudget        = 10 * time.Second
	ExtendAnswerTimeout = ExtendQueueWait + ExtendBudget + 5*time.Second
	// StatusTimeout is how long a client waits for GET /status: a login
	// banner must not hang on a port that does not answer.
	StatusTimeout = time.Second
)

// Source says who built a Status.
type Source string

const (
	// SourceSidecar: the sidecar's answer to GET /status, which knows
	// everything below.
	SourceSidecar Source = "sidecar"
	// SourceMetadata: supervisor status built it from the task metadata
	// because no sidecar answered. It knows the start, and the TTL only when
	// BASTION_TTL is set where it runs; what it does not know is null.
	SourceMetadata Source = "metadata"
)

// Reason values: which limit the deadline is.
const (
	ReasonTTL  = "ttl"
	ReasonIdle = "idle"
)

// Status is the answer to GET /status and the output of supervisor status
// --json, with or without a sidecar. A field that is null is not known
// where the Status was built.
type Status struct {
	SchemaVersion int       `json:"schemaVersion"`
	Source        Source    `json:"source"`
	TaskARN       string    `json:"taskArn"`
	StartedAt     time.Time `json:"startedAt"`
	TTL           *string   `json:"ttl"` // a Go duration
	// Deadline is the one that applies now: the earlier of the TTL's and
	// the idle one. Reason, Remaining and RemainingSeconds are null with it.
	Deadline         *time.Time `json:"deadline"`
	Reason           *string    `json:"reason"`           // ReasonTTL or ReasonIdle
	Remaining        *string    `json:"remaining"`        // until Deadline, to the nearest second (lifetime.Left), "0s" once past
	RemainingSeconds *int64     `json:"remainingSeconds"` // the same in whole seconds
	Expired          bool       `json:"expired"`          // Deadline has passed
	IdleTimeout      *string    `json:"idleTimeout"`      // "0s": idle is off
	IdleDeadline     *time.Time `json:"idleDeadline"`     // null when idle is off or not known
	Connections      *int       `json:"connections"`      // sessions open at the last sample
	ExtendedTo       *time.Time `json:"extendedTo"`       // the TTL's deadline, null until extended
	MaxTTL           string     `json:"maxTtl"`           // the API's cap, "" until the API has told it
	Registered       bool       `json:"registered"`       // the API has recorded the TTL in the task's tag (the sweeper's)
	Warning          string     `json:"warning"`          // "" until the first of BASTION_WARN_BEFORE
	Unknown          string     `json:"unknown,omitempty"`
}

// WarningPrefix starts every Warning.
const WarningPrefix = "this bastion stops in "

// Validate refuses a Status that a sidecar would not send. Whatever holds
// the control port answers a login shell's status, and the text it sends
// reaches the terminals of everyone who logs in.
func (s Status) Validate() error {
	if s.SchemaVersion != SchemaVersion {
		return fmt.Errorf("schemaVersion %d, want %d", s.SchemaVersion, SchemaVersion)
	}
	if s.Source != SourceSidecar {
		return fmt.Errorf("source %q", s.Source)
	}
	// Not ecsarn.ParseTask: its patterns, compiled at package init, would
	// be paid at every health check.
	if !strings.HasPrefix(s.TaskARN, "arn:") || !strings.Contains(s.TaskARN, ":task/") || len(s.TaskARN) > 256 ||
		strings.ContainsFunc(s.TaskARN, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return fmt.Errorf("taskArn %q", s.TaskARN)
	}
	if s.TTL == nil || s.Deadline == nil || s.Reason == nil || s.Remaining == nil || s.RemainingSeconds == nil ||
		s.IdleTimeout == nil || s.Connections == nil {
		return errors.New("a sidecar's answer with a field null that it always knows")
	}
	if *s.Reason != ReasonTTL && *s.Reason != ReasonIdle {
		return fmt.Errorf("reason %q", *s.Reason)
	}
	if *s.Reason == ReasonIdle && s.IdleDeadline == nil {
		return errors.New("an idle limit without idleDeadline")
	}
	for name, d := range map[string]string{"ttl": *s.TTL, "remaining": *s.Remaining, "idleTimeout": *s.IdleTimeout} {
		if _, err := time.ParseDuration(d); err != nil {
			return fmt.Errorf("%s %q", name, d)
		}
	}
	if _, err := time.ParseDuration(s.MaxTTL); s.MaxTTL != "" && err != nil {
		return fmt.Errorf("maxTtl %q", s.MaxTTL)
	}
	if s.Warning != "" && !strings.HasPrefix(s.Warning, WarningPrefix) || len(s.Warning) > 80 || termtext.HasUnsafe(s.Warning) {
		return fmt.Errorf("warning %q", s.Warning)
	}
	if s.Unknown != "" {
		return fmt.Errorf("unknown %q: a sidecar knows its deadline", s.Unknown)
	}
	return nil
}

// ExtendRequest is the body of POST /extend: how much longer, a Go
// duration of at least MinExtension. The sidecar asks the API for its TTL
// plus By.
type ExtendRequest struct {
	By string `json:"by"`
}

// Extended is the 200 answer to POST /extend: the status after the
// extension, and whether the API's cap cut it.
type Extended struct {
	Status
	Capped bool `json:"capped"`
}

// ParseBy reads an extension's duration: at least MinExtension. Its error
// says what is wrong, for a person.
func ParseBy(s string) (time.Duration, error) {
	by, err := time.ParseDuration(s)
	if err != nil || by < MinExtension {
		return 0, fmt.Errorf("by is %q: want a duration of at least %s, such as 30m or 1h", s, MinExtension)
	}
	return by, nil
}

// DecodeExtendRequest reads POST /extend's body: one ExtendRequest object,
// no other field, nothing after it, By as ParseBy reads it.
func DecodeExtendRequest(body []byte) (time.Duration, error) {
	var req ExtendRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, errors.New(`the body is not {"by": "<duration>"}`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return 0, errors.New("the body has data after the JSON object")
	}
	return ParseBy(req.By)
}

// LoopbackName reports whether host (no port, no brackets) is one of the
// names the endpoint answers to: 127.0.0.1, localhost or ::1. localhost is
// matched without case, as hostnames are (RFC 4343); a rebinding page
// cannot use that, its Host is its own name. Otherwise the match is exact:
// 127.0.0.2 or "localhost." reach loopback too, but no client sends them,
// and each exception is one more name to reason about.
func LoopbackName(host string) bool {
	return host == "127.0.0.1" || host == "::1" || strings.EqualFold(host, "localhost")
}

// CheckLocal refuses a request that a web page could have sent: one whose
// Host is not LoopbackName's with any port or none (a forward of the
// control port arrives with the laptop's own port), and any request
// carrying Origin, which browsers add and command-line clients do not.
// Through a forwarded port, a page whose name it rebinds to 127.0.0.1
// (DNS rebinding) would otherwise read /status and POST /extend: its Host
// is its own name. The error says why, in one line, for a person; the
// server answers it 403 CodeForbidden on every route.
func CheckLocal(r *http.Request) error {
	if _, ok := r.Header["Origin"]; ok {
		return errors.New("a request with an Origin header is a web page's: the control endpoint answers only local clients (supervisor status, curl)")
	}
	if !LoopbackName(hostOf(r.Host)) {
		// Cut and quoted: the text reaches a person's terminal.
		return fmt.Errorf("the Host header %.64q does not name 127.0.0.1, localhost or [::1]", r.Host)
	}
	return nil
}

// hostOf is a Host header's host without its port (digits, maybe none)
// and without an IPv6 literal's brackets; "" for an IPv6 literal without
// brackets or a port that is not digits.
func hostOf(hostport string) string {
	host := hostport
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		port := hostport[i+1:]
		if len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return ""
		}
		host = hostport[:i]
	}
	if inner, ok := strings.CutPrefix(host, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok && strings.Contains(inner, ":") {
			return inner
		}
		return ""
	}
	if strings.ContainsAny(host, ":]") {
		return ""
	}
	return host
}

// Code is the machine-readable kind of an error answer; scripts decide on
// it. These are the endpoint's own, whatever the stop API's are.
type Code string

// The error codes, each with its status.
const (
	CodeBadRequest  Code = "BadRequest"  // 400: not an ExtendRequest; 415: not ContentType
	CodeTooLarge    Code = "TooLarge"    // 413: over MaxExtendBody
	CodeCapReached  Code = "CapReached"  // 409: the TTL is at the API's cap, or the cap is below the sidecar's TTL
	CodeExpired     Code = "Expired"     // 409: the deadline has passed, the task is being stopped
	CodeUnreachable Code = "Unreachable" // 502: the API failed, refused, or gave an answer refused
	CodeUnavailable Code = "Unavailable" // 503: start not known yet, another extension in progress, dry run: retry
	CodeForbidden   Code = "Forbidden"   // 403: CheckLocal refused the request
)

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Code  Code   `json:"code"`
	Error string `json:"error"`
}

// Printable reports whether Error may be shown to a person: a line of at
// most MaxErrorLen that package termtext finds safe for a terminal.
func (e ErrorBody) Printable() bool {
	return e.Error != "" && len(e.Error) <= MaxErrorLen && !termtext.HasUnsafe(e.Error)
}
