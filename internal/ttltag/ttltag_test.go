package ttltag_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// TestTTL pins the one rule for every value the readers of the tag once
// read each their own way. Before it, with the cap at 12h: POST /extend took
// a value that is not a positive duration as no TTL recorded (the TTL wanted
// stood); the sweeper took it as the cap; ls showed a deadline from any
// duration ("0s": the start, "-5m": before it, "13h": past the cap) and none
// from the rest. Now all of them read what TTL gives.
func TestTTL(t *testing.T) {
	const limit = 12 * time.Hour
	type got struct {
		ttl   time.Duration
		valid bool
	}
	for _, tt := range []struct {
		value       string
		capped      got // with the cap known
		unknownCap  got // the launcher without the stack
		parsed      time.Duration
		parsedValid bool
	}{
		{"2h", got{2 * time.Hour, true}, got{2 * time.Hour, true}, 2 * time.Hour, true},
		{"2h0m0s", got{2 * time.Hour, true}, got{2 * time.Hour, true}, 2 * time.Hour, true},
		{"90m", got{90 * time.Minute, true}, got{90 * time.Minute, true}, 90 * time.Minute, true},
		{"1ns", got{time.Nanosecond, true}, got{time.Nanosecond, true}, time.Nanosecond, true},
		{"12h", got{limit, true}, got{limit, true}, limit, true},
		{"13h", got{limit, true}, got{13 * time.Hour, true}, 13 * time.Hour, true},
		{"0s", got{limit, false}, got{0, false}, 0, false},
		{"0", got{limit, false}, got{0, false}, 0, false},
		{"-5m", got{limit, false}, got{0, false}, 0, false},
		{"", got{limit, false}, got{0, false}, 0, false},
		{"forever", got{limit, false}, got{0, false}, 0, false},
		{"1y", got{limit, false}, got{0, false}, 0, false},
		{"abc", got{limit, false}, got{0, false}, 0, false},
		{"1h junk", got{limit, false}, got{0, false}, 0, false},
		{" 2h", got{limit, false}, got{0, false}, 0, false},
	} {
		if ttl, valid := ttltag.TTL(tt.value, limit); (got{ttl, valid}) != tt.capped {
			t.Errorf("TTL(%q, %v) = %v, %v; want %v, %v", tt.value, limit, ttl, valid, tt.capped.ttl, tt.capped.valid)
		}
		if ttl, valid := ttltag.TTL(tt.value, 0); (got{ttl, valid}) != tt.unknownCap {
			t.Errorf("TTL(%q, 0) = %v, %v; want %v, %v", tt.value, ttl, valid, tt.unknownCap.ttl, tt.unknownCap.valid)
		}
		if d, ok := ttltag.Parse(tt.value); d != tt.parsed || ok != tt.parsedValid {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", tt.value, d, ok, tt.parsed, tt.parsedValid)
		}
	}
}

// Lifetime is TTL's rule from the start: the deadline the sweeper honours
// for a value, the one ls and connect announce.
func TestLifetime(t *testing.T) {
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	const limit = 12 * time.Hour
	for _, tt := range []struct {
		value    string
		maxTTL   time.Duration
		deadline time.Time // zero: no lifetime known
		valid    bool
	}{
		{"2h", limit, start.Add(2 * time.Hour), true},
		{"48h", limit, start.Add(limit), true},
		{"12h0m0s", limit, start.Add(limit), true},
		{"forever", limit, start.Add(limit), false},
		{"0s", limit, start.Add(limit), false},
		{"48h", 0, start.Add(48 * time.Hour), true},
		{"forever", 0, time.Time{}, false},
	} {
		life, valid := ttltag.Lifetime(tt.value, start, tt.maxTTL)
		ttl, _ := ttltag.TTL(tt.value, tt.maxTTL)
		var deadline time.Time
		if life.TTL > 0 {
			deadline = life.Deadline()
		}
		if !life.Start.Equal(start) || life.TTL != ttl || !deadline.Equal(tt.deadline) || valid != tt.valid {
			t.Errorf("Lifetime(%q, %v) = %+v (deadline %v), %v; want deadline %v, %v", tt.value, tt.maxTTL, life, deadline, valid, tt.deadline, tt.valid)
		}
	}
}

// A task with the tag is a bastion whatever its value, an empty one too;
// the owner's tag alone does not make one.
func TestFind(t *testing.T) {
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	for _, tt := range []struct {
		tags   []types.Tag
		value  string
		marked bool
	}{
		{nil, "", false},
		{[]types.Tag{tag("team", "ops"), tag(ttltag.OwnerKey, "AROA:alice")}, "", false},
		{[]types.Tag{tag("team", "ops"), tag(ttltag.Key, "2h0m0s")}, "2h0m0s", true},
		{[]types.Tag{tag(ttltag.Key, "")}, "", true},
		{[]types.Tag{tag(ttltag.Key, "forever")}, "forever", true},
		{[]types.Tag{tag("Bastion-TTL", "2h")}, "", false}, // tag keys are case-sensitive
	} {
		if value, marked := ttltag.Find(tt.tags); value != tt.value || marked != tt.marked {
			t.Errorf("Find(%v) = %q, %v; want %q, %v", tt.tags, value, marked, tt.value, tt.marked)
		}
	}
	if ttltag.Key != "bastion-ttl" || ttltag.OwnerKey != "bastion-ttl-owner" {
		t.Errorf("the keys are %q and %q: running bastions and the shipped policies carry bastion-ttl and bastion-ttl-owner", ttltag.Key, ttltag.OwnerKey)
	}
}

// The owner tag holds the caller's user ID verbatim or not at all: what an
// ECS tag value cannot hold is refused, never mapped to something that fits
// (alice,x is not alice_x, who may be someone else).
func TestCheckOwner(t *testing.T) {
	for _, tt := range []struct {
		userID string
		why    string // "" accepted
	}{
		{"AROAEXAMPLEDEVELOPER1:alice", ""},
		{"AROAEXAMPLEDEVELOPER1:alice@example.com", ""},
		{"AROAEXAMPLEDEVELOPER1:alice_x", ""},
		{"AROAEXAMPLEDEVELOPER1:a.b-c+d=e", ""},
		{"AIDAEXAMPLEUSER00001", ""},
		{"123456789012:federated/alice", ""},
		{"AROA:élise 日本", ""}, // ECS's pattern takes any letter and space
		{"AROA:" + strings.Repeat("a", 251), ""},
		{"AROA:" + strings.Repeat("a", 252), "is 257 characters; an ECS tag value holds at most 256"},
		{"AROAEXAMPLEDEVELOPER1:alice,x", `has ',', which an ECS tag value cannot hold`},
		{"AROAEXAMPLEDEVELOPER1:alice\x1b]0;x\x07", `has '\x1b'`},
		{"AROA:alice\u202e", `has '\u202e'`},
		{"AROA:alice#1", `has '#'`},
		{"AROA:al\xffice", "is not UTF-8"},
		{"", "is empty"},
	} {
		err := ttltag.CheckOwner(tt.userID)
		if (tt.why == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.why) {
			t.Errorf("CheckOwner(%q) = %v, want %q", tt.userID, err, tt.why)
		}
	}
}

// TestCheckReason: what ECS's tag values hold, on one line, and nothing a
// terminal acts on.
func TestCheckReason(t *testing.T) {
	for _, tt := range []struct {
		reason string
		why    string // "" accepted
	}{
		{"", ""},
		{"INC-4211: read the orders replica", ""},
		{"migrate db/orders @alice +1 a=b_c.d", ""},
		{"réparer la base 日本", ""},
		{"a\u00a0b", ""}, // a no-break space is a space (Zs)
		{strings.Repeat("é", 256), ""},
		{strings.Repeat("é", 257), "is 257 characters; an ECS tag value holds at most 256"},
		{"ticket #42", `has '#'`},
		{"why, because", `has ','`},
		{"line\nbreak", `has '\n'`},
		{"tab\there", `has '\t'`},
		{"esc\x1b[2J", `has '\x1b'`},
		{"del\x7f", `has '\x7f'`},
		{"csi\u009b", `has '\u009b'`},
		{"bidi\u202eevil", `has '\u202e'`},
		{"isolate\u2066x", `has '\u2066'`},
		{"zero\u200bwidth", `has '\u200b'`},
		{"line\u2028sep", `has '\u2028'`},
		{"bad\xff", "is not UTF-8"},
	} {
		err := ttltag.CheckReason(tt.reason)
		if (tt.why == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.why) {
			t.Errorf("CheckReason(%q) = %v, want %q", tt.reason, err, tt.why)
		}
	}
}
