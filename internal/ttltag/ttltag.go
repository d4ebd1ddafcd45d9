// Package ttltag is the bastion-ttl tag, the one state the stop API, the
// sweeper and the launcher share: the launcher writes a bastion's TTL in
// it, POST /extend raises it, the sweeper stops a task past it, and ls
// shows it. Its presence marks a task as a bastion, whatever the value;
// its value is read by one rule (TTL), so that all of them agree on a
// task's lifetime.
//
// The supervisor does not link this package (it reads its TTL from its
// environment, not from the tag), so it may use the SDK's ECS types.
package ttltag

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// Key is the tag that marks a bastion; its value is the task's TTL, a Go
// duration (the launcher writes time.Duration.String()).
const Key = "bastion-ttl"

// OwnerKey is the tag the launcher records who ran the bastion in (their
// user ID); the launch policy allows RunTask only with the caller's own.
const OwnerKey = "bastion-ttl-owner"

// ReasonKey is the tag a launcher records why a bastion was started in;
// the ledger keeps it, since StopTask deletes a task's tags.
const ReasonKey = "bastion-ttl-reason"

// MaxValueLen is the most characters an ECS tag value holds.
const MaxValueLen = 256

// CheckOwner says whether userID, the caller's user ID (<RoleId>:<session>
// of a role, a user's ID), can be the owner tag's value verbatim: ECS's tag
// values hold up to MaxValueLen letters, numbers, spaces and _ . : / = + -
// @, and a role session name may hold a comma. The owner tag is the user
// ID byte for byte or nothing: the launch policy compares it with
// ${aws:userid}, and a value mapped to fit (",", "_") could be another
// person's ID.
func CheckOwner(userID string) error {
	if userID == "" {
		return errors.New("is empty")
	}
	return checkValue(userID, tagValueRune)
}

// CheckReason says whether reason, why a person starts a bastion, can be
// the reason tag's value: what ECS's tag values hold (CheckOwner's rule),
// and of the spaces only those that keep one line (Unicode Zs, not the
// line and paragraph separators), since ls prints it on one. The control
// and format characters termtext refuses are outside ECS's pattern too.
// "" is no reason: no tag.
func CheckReason(reason string) error {
	return checkValue(reason, func(r rune) bool {
		return tagValueRune(r) && !unicode.In(r, unicode.Zl, unicode.Zp) && !termtext.IsUnsafe(r)
	})
}

// checkValue is an ECS tag value's length and UTF-8 rule, and ok for each
// character.
func checkValue(v string, ok func(rune) bool) error {
	switch n := utf8.RuneCountInString(v); {
	case !utf8.ValidString(v):
		return errors.New("is not UTF-8")
	case n > MaxValueLen:
		return fmt.Errorf("is %d characters; an ECS tag value holds at most %d", n, MaxValueLen)
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return !ok(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		return fmt.Errorf("has %q, which an ECS tag value cannot hold (only letters, numbers, spaces and _ . : / = + - @)", r)
	}
	return nil
}

// tagValueRune is ECS's pattern for tag values, ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$.
func tagValueRune(r rune) bool {
	return unicode.In(r, unicode.L, unicode.Z, unicode.N) || strings.ContainsRune("_.:/=+-@", r)
}

// Parse is the TTL a value says: a Go duration greater than zero. "0s",
// "-5m", "forever" and "" say none.
func Parse(value string) (time.Duration, bool) {
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, true
}

// TTL is the lifetime a value gives a bastion under maxTTL, the stack's
// cap (BASTION_MAX_TTL): what the value says, at most the cap; a value that
// says no TTL means the cap, and valid is false. The cap, not zero: a
// bastion is never stopped early for a tag it cannot fix, and never lives
// past the cap either. With the cap unknown (maxTTL <= 0, the launcher
// without the stack) the value is not capped, and one that says no TTL
// gives 0: no lifetime known.
func TTL(value string, maxTTL time.Duration) (ttl time.Duration, valid bool) {
	d, ok := Parse(value)
	switch {
	case maxTTL <= 0:
		return d, ok
	case !ok:
		return maxTTL, false
	}
	return min(d, maxTTL), true
}

// Lifetime is the lifetime a value gives a bastion started at start, under
// maxTTL (TTL's rule): its deadline is the one the sweeper honours (before
// its grace), so it is the one ls and connect announce. valid is TTL's. A
// zero TTL (the cap unknown and a value that says no TTL) is no lifetime
// known: there is no deadline to announce.
func Lifetime(value string, start time.Time, maxTTL time.Duration) (life lifetime.Lifetime, valid bool) {
	ttl, valid := TTL(value, maxTTL)
	return lifetime.Lifetime{Start: start, TTL: ttl}, valid
}

// Find is the tag's value among a task's tags, and whether the task has
// the tag at all (is a bastion).
func Find(tags []types.Tag) (value string, marked bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == Key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// Value is the value of the tag key among a task's tags, and whether the
// task has it.
func Value(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}
