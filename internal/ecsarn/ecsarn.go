// Package ecsarn parses ECS task and cluster ARNs strictly: the terminate API
// decides who may stop what from them, so anything unusual is rejected.
// TaskID and ClusterName only read a name out of what ECS answered, for
// display and for ECS's own calls, and check nothing.
package ecsarn

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrMalformed is matched by every parse error.
var ErrMalformed = errors.New("malformed ARN")

var (
	partitionRe = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	regionRe    = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)
	accountRe   = regexp.MustCompile(`^[0-9]{12}$`)
	clusterRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	// New-format task IDs are 32 hex digits; old-format ones are UUIDs.
	taskIDRe = regexp.MustCompile(`^([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
)

// Task is a parsed task ARN. Cluster is empty for old-format ARNs (task/<id>).
type Task struct {
	Partition, Region, Account, Cluster, ID string
}

// String returns the ARN.
func (t Task) String() string {
	res := "task/" + t.ID
	if t.Cluster != "" {
		res = "task/" + t.Cluster + "/" + t.ID
	}
	return fmt.Sprintf("arn:%s:ecs:%s:%s:%s", t.Partition, t.Region, t.Account, res)
}

// ParseTask parses arn:<partition>:ecs:<region>:<account>:task/[<cluster>/]<id>.
func ParseTask(s string) (Task, error) {
	p, res, err := split(s)
	if err != nil {
		return Task{}, err
	}
	segs := strings.Split(res, "/")
	t := Task{Partition: p[1], Region: p[3], Account: p[4]}
	switch {
	case len(segs) == 2 && segs[0] == "task":
		t.ID = segs[1]
	case len(segs) == 3 && segs[0] == "task":
		t.Cluster, t.ID = segs[1], segs[2]
		if !clusterRe.MatchString(t.Cluster) {
			return Task{}, fmt.Errorf("%w: bad cluster name in %q", ErrMalformed, s)
		}
	default:
		return Task{}, fmt.Errorf("%w: resource is not task/<cluster>/<id> in %q", ErrMalformed, s)
	}
	if !taskIDRe.MatchString(t.ID) {
		return Task{}, fmt.Errorf("%w: bad task ID in %q", ErrMalformed, s)
	}
	return t, nil
}

// TaskID is the ID a task ARN ends in (arn:…:task/[<cluster>/]<id>), or ref
// itself when it is an ID already. It checks nothing: a decision takes
// ParseTask.
func TaskID(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }

// ClusterName is a cluster's name, given its name or its ARN
// (arn:…:cluster/<name>). It checks nothing: a decision takes ParseCluster.
func ClusterName(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }

// Cluster is a parsed cluster reference.
type Cluster struct {
	Partition, Region, Account string // empty when given by name only
	Name                       string
}

// ParseCluster accepts a cluster name or arn:<partition>:ecs:<region>:<account>:cluster/<name>.
func ParseCluster(s string) (Cluster, error) {
	if !strings.HasPrefix(s, "arn:") {
		if !clusterRe.MatchString(s) {
			return Cluster{}, fmt.Errorf("%w: bad cluster name %q", ErrMalformed, s)
		}
		return Cluster{Name: s}, nil
	}
	p, res, err := split(s)
	if err != nil {
		return Cluster{}, err
	}
	name, ok := strings.CutPrefix(res, "cluster/")
	if !ok || !clusterRe.MatchString(name) {
		return Cluster{}, fmt.Errorf("%w: resource is not cluster/<name> in %q", ErrMalformed, s)
	}
	return Cluster{Partition: p[1], Region: p[3], Account: p[4], Name: name}, nil
}

// String is the cluster's ARN when it was given as one, else its name.
func (c Cluster) String() string {
	if c.Account == "" {
		return c.Name
	}
	return fmt.Sprintf("arn:%s:ecs:%s:%s:cluster/%s", c.Partition, c.Region, c.Account, c.Name)
}

// ParseClusters reads a list of cluster names or ARNs, such as the entries
// of BASTION_ALLOWED_CLUSTERS; blank entries are skipped, and none at all is
// an error.
func ParseClusters(entries []string) ([]Cluster, error) {
	var out []Cluster
	for _, e := range entries {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		c, err := ParseCluster(e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no cluster given", ErrMalformed)
	}
	return out, nil
}

// split checks the common ARN fields of an ECS ARN and returns them and the resource.
func split(s string) ([]string, string, error) {
	if len(s) > 1600 {
		return nil, "", fmt.Errorf("%w: too long", ErrMalformed)
	}
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[2] != "ecs" {
		return nil, "", fmt.Errorf("%w: not an ECS ARN: %q", ErrMalformed, s)
	}
	if !partitionRe.MatchString(p[1]) || !regionRe.MatchString(p[3]) || !accountRe.MatchString(p[4]) {
		return nil, "", fmt.Errorf("%w: bad partition, region or account in %q", ErrMalformed, s)
	}
	return p, p[5], nil
}
