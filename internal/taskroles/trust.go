// Package taskroles resolves the names of task roles of one's own (the
// stack's ExtraTaskRoleNames) to the roles' unique IDs at deploy time, and
// refuses a role whose trust policy admits anything but ECS tasks. The
// terminate function pins callers by those IDs: a role deleted and created
// again under the same name has a new ID and is not trusted, and a role
// that something besides ECS may assume (which could then pick any session
// name, such as a victim's task ID) is never trusted at all.
//
// It runs as a CloudFormation custom resource (lambda/taskroles).
package taskroles

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ECSTasks is the one principal a trusted task role may admit.
const ECSTasks = "ecs-tasks.amazonaws.com"

// ErrUntrusted is matched (errors.Is) by every refusal of a trust policy.
var ErrUntrusted = errors.New("trust policy admits more than ECS tasks")

// CheckTrust reports whether role's trust policy, as IAM's GetRole returns
// it (URL-encoded JSON), lets only the service ecs-tasks.amazonaws.com
// assume it. Any other principal in an Allow statement is refused, with or
// without conditions: an AWS account or role (of this account or another),
// a wildcard, a federated or canonical user, another service, a NotPrincipal.
// Deny statements only take away, and are not read.
func CheckTrust(role, document string) error {
	doc, err := url.PathUnescape(document)
	if err != nil {
		return fmt.Errorf("role %s: trust policy is not URL-encoded JSON: %w", role, err)
	}
	var policy struct {
		Statement statements
	}
	if err := json.Unmarshal([]byte(doc), &policy); err != nil {
		return fmt.Errorf("role %s: trust policy is not a policy document: %w", role, err)
	}
	for i, s := range policy.Statement {
		if !strings.EqualFold(s.Effect, "Allow") {
			continue
		}
		where := s.Sid
		if where == "" {
			where = fmt.Sprintf("#%d", i+1)
		}
		if s.NotPrincipal != nil {
			return fmt.Errorf("%w: role %s, statement %s: NotPrincipal admits everyone it does not name", ErrUntrusted, role, where)
		}
		if other := beyondECSTasks(s.Principal); other != "" {
			return fmt.Errorf("%w: role %s, statement %s admits %s; only the service %s may assume a bastion task role", ErrUntrusted, role, where, other, ECSTasks)
		}
	}
	return nil
}

// statements is a policy's Statement: one object or a list of them.
type statements []statement

type statement struct {
	Sid          string
	Effect       string
	Principal    json.RawMessage
	NotPrincipal json.RawMessage
}

func (s *statements) UnmarshalJSON(b []byte) error {
	var one statement
	if err := json.Unmarshal(b, &one); err == nil {
		*s = statements{one}
		return nil
	}
	var many []statement
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// beyondECSTasks returns what principal admits besides ECS tasks ("" if
// nothing): "*", {"AWS": ...}, {"Federated": ...}, {"Service": [...]}, ...
func beyondECSTasks(principal json.RawMessage) string {
	if len(principal) == 0 {
		return "no principal"
	}
	var star string
	if json.Unmarshal(principal, &star) == nil {
		return fmt.Sprintf("the principal %q", star)
	}
	var kinds map[string]json.RawMessage
	if err := json.Unmarshal(principal, &kinds); err != nil || len(kinds) == 0 {
		return "the principal " + string(principal)
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, kind := range names {
		values := stringsOf(kinds[kind])
		if values == nil {
			return fmt.Sprintf("the %s principal %s", kind, kinds[kind])
		}
		for _, v := range values {
			if kind != "Service" || v != ECSTasks {
				return fmt.Sprintf("the %s principal %q", kind, v)
			}
		}
	}
	return ""
}

// stringsOf reads a principal's value, a string or a list of strings (nil
// for anything else).
func stringsOf(v json.RawMessage) []string {
	var one string
	if json.Unmarshal(v, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(v, &many) == nil && len(many) > 0 {
		return many
	}
	return nil
}
