package selfstop

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
)

// An assumed-role session ARN: arn:<partition>:sts::<account>:assumed-role/<role>/<session>.
var sessionARN = regexp.MustCompile(`^arn:(aws(?:-[a-z]+)*):sts::([0-9]{12}):assumed-role/([\w+=,.@-]{1,64})/([\w+=,.@-]{2,64})$`)

// Policy says who may stop which task.
type Policy struct {
	// RequireSelf: the caller's session name must be the task ID. ECS names
	// a task role's session after the task ID.
	RequireSelf bool
	// Allowed clusters, by name or ARN.
	Allowed []ecsarn.Cluster
}

// authorize checks that callerARN (API Gateway's IAM userArn) may stop t.
func (p Policy) authorize(callerARN string, t target) *Error {
	if callerARN == "" {
		return reject(http.StatusForbidden, "no caller identity; the route must use IAM authorization")
	}
	m := sessionARN.FindStringSubmatch(callerARN)
	if m == nil {
		return reject(http.StatusForbidden, "caller is not an assumed-role session (a task role)")
	}
	partition, account, session := m[1], m[2], m[4]
	if partition != t.task.Partition || account != t.task.Account {
		return reject(http.StatusForbidden, "caller is not in the task's account")
	}
	if p.RequireSelf && session != t.task.ID {
		return reject(http.StatusForbidden, "caller may stop only its own task")
	}
	if !p.clusterAllowed(t) {
		return reject(http.StatusForbidden, "cluster %s is not allowed", t.cluster)
	}
	return nil
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

// ParseAllowed reads BASTION_ALLOWED_CLUSTERS entries (names or ARNs).
func ParseAllowed(entries []string) ([]ecsarn.Cluster, error) {
	var out []ecsarn.Cluster
	for _, e := range entries {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		c, err := ecsarn.ParseCluster(e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
