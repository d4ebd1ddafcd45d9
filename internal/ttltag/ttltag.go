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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Key is the tag that marks a bastion; its value is the task's TTL, a Go
// duration (the launcher writes time.Duration.String()).
const Key = "bastion-ttl"

// OwnerKey is the tag the launcher records who ran the bastion in (their
// user ID); the launch policy allows RunTask only with the caller's own.
const OwnerKey = "bastion-ttl-owner"

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
