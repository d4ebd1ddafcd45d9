package ecsapi

import (
	"fmt"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/ttltag"
)

// Fleet is n running tasks in one cluster, as the sweeper's scale test and
// benchmark use them: a fifth are expired bastions (tag "1h", started 3h
// before now), a fifth bastions still within their TTL, a fifth bastions
// whose tag is not a duration (the 12h maximum applies; started 2h ago), and
// the rest untagged tasks started long ago. expired lists the ARNs a sweep
// at now must stop, and only those.
func Fleet(region, account, cluster string, n int, now time.Time) (tasks []Task, expired []string) {
	clusterARN := fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", region, account, cluster)
	for i := range n {
		t := Task{
			ARN:        fmt.Sprintf("arn:aws:ecs:%s:%s:task/%s/%032x", region, account, cluster, i),
			ClusterARN: clusterARN,
			StartedAt:  now.Add(-3 * time.Hour),
		}
		switch i % 5 {
		case 0:
			t.Tags = map[string]string{ttltag.Key: "1h"}
			expired = append(expired, t.ARN)
		case 1:
			t.Tags = map[string]string{ttltag.Key: "4h"}
		case 2:
			t.Tags = map[string]string{ttltag.Key: "forever"}
			t.StartedAt = now.Add(-2 * time.Hour)
		default:
			t.StartedAt = now.Add(-100 * time.Hour)
		}
		tasks = append(tasks, t)
	}
	return tasks, expired
}
