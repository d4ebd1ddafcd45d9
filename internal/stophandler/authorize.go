package stophandler

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
)

// An assumed-role session ARN: arn:<partition>:sts::<account>:assumed-role/<role>/<session>.
var sessionARN = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):sts::([0-9]{12}):assumed-role/([\w+=,.@-]{1,64})/([\w+=,.@-]{2,64})$`)

// A role's unique ID (AROA...), as IAM shows it in RoleId and in the
// userId <RoleId>:<session> of an assumed-role session.
var roleID = regexp.MustCompile(`^AROA[A-Z0-9]{12,124}$`)

// An IAM user's ARN (arn:<partition>:iam::<account>:user/<path/name>): a
// person's or a program's long-term identity, never a task's.
var userARN = regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:user/`)

// roleName is what IAM allows in a role name.
var roleName = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// Identity is the caller as API Gateway's IAM authorization reports it.
type Identity struct {
	UserARN string // arn:aws:sts::<account>:assumed-role/<role>/<session>
	UserID  string // <RoleId>:<session> for an assumed role
}

// Policy says who may stop which task.
type Policy struct {
	// Roles pins the caller's role: names (matched in UserARN) or unique
	// IDs (AROA..., matched in UserID). Without it any principal allowed to
	// invoke the API and to pick a session name could pose as a task.
	Roles []string
	// RequireSelf: the caller's session name must be the task ID. ECS names
	// a task role's session after the task ID.
	RequireSelf bool
	// Allowed clusters, by name or ARN.
	Allowed []ecsarn.Cluster
}

// authorize checks that the caller may stop t. apiAccount is the account
// of the API (requestContext.accountId), the function's own: a caller from
// any other account is refused even if the task were there.
func (p Policy) authorize(id Identity, apiAccount string, t target) *errorAnswer {
	if id.UserARN == "" {
		return reject(http.StatusForbidden, "no caller identity; the route must use IAM authorization")
	}
	m := sessionARN.FindStringSubmatch(id.UserARN)
	if m == nil && userARN.MatchString(id.UserARN) {
		return reject(http.StatusForbidden, "caller is an IAM user, not an assumed-role session (a task role)")
	}
	if m == nil {
		return reject(http.StatusForbidden, "caller is not an assumed-role session (a task role)")
	}
	partition, account, role, session := m[1], m[2], m[3], m[4]
	if partition != t.task.Partition || account != t.task.Account || account != apiAccount {
		return reject(http.StatusForbidden, "caller is not in the task's account")
	}
	if !p.rolePinned(role, session, id.UserID) {
		return reject(http.StatusForbidden, "caller's role is not a bastion task role")
	}
	if p.RequireSelf && session != t.task.ID {
		return reject(http.StatusForbidden, "caller may stop only its own task")
	}
	if !p.clusterAllowed(t) {
		return reject(http.StatusForbidden, "cluster %s is not allowed", t.cluster)
	}
	return nil
}

// rolePinned reports whether the session's role is one of p.Roles: by name,
// or by unique ID from userID, whose session part, when it has one, must be
// the ARN's (STS always gives one; an event's userId may be the role ID
// alone, as sameUserID allows).
func (p Policy) rolePinned(role, session, userID string) bool {
	idRole, idSession, hasSession := strings.Cut(userID, ":")
	for _, r := range p.Roles {
		if roleID.MatchString(r) {
			if idRole == r && (!hasSession || idSession == session) {
				return true
			}
		} else if r == role {
			return true
		}
	}
	return false
}

func (p Policy) clusterAllowed(t target) bool {
	for _, c := range p.Allowed {
		if c.Name != t.cluster {
			continue
		}
		if c.Account == "" || (c.Account == t.task.Account && c.Region == t.task.Region && c.Partition == t.task.Partition) {
			return true
		}
	}
	return false
}

// ParseRoles reads BASTION_TASK_ROLES entries: role names or unique role IDs.
func ParseRoles(entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if strings.HasPrefix(e, "arn:") || strings.Contains(e, "/") {
			return nil, errors.New("give role names or role IDs (AROA...), not ARNs or paths: " + e)
		}
		if !roleID.MatchString(e) && !roleName.MatchString(e) {
			return nil, errors.New("not a role name or role ID: " + e)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("no role given")
	}
	return out, nil
}
