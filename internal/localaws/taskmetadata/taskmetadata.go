// Package taskmetadata makes ECS task metadata (v4) documents for the demo and
// the end-to-end tests, from a real Fargate sample with the task, cluster
// and start time replaced.
package taskmetadata

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

//go:embed testdata/v4-fargate-task.json
var sample string

// Stats is the task's stats (/task/stats): the AWS developer guide's
// Fargate example (package usage's testdata), keyed by the sample's
// container.
//
//go:embed testdata/v4-fargate-task-stats.json
var Stats []byte

const (
	sampleTask      = "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3"
	sampleCluster   = "arn:aws:ecs:us-west-2:111122223333:cluster/default"
	sampleStartedAt = "2020-10-08T20:47:20.567813946Z"
)

// SampleTaskARN is the sample's own task ARN (region us-west-2, account
// 111122223333, cluster default).
const SampleTaskARN = sampleTask

// Document is the sample task document for taskARN in clusterARN whose
// container started at startedAt; a zero startedAt gives a task still
// PENDING, whose container has not started.
func Document(taskARN, clusterARN string, startedAt time.Time) []byte {
	doc := strings.NewReplacer(sampleTask, taskARN, sampleCluster, clusterARN).Replace(sample)
	if !startedAt.IsZero() {
		return []byte(strings.ReplaceAll(doc, sampleStartedAt, startedAt.UTC().Format(time.RFC3339Nano)))
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(doc), &m)
	m["KnownStatus"] = "PENDING"
	for _, c := range m["Containers"].([]any) {
		c := c.(map[string]any)
		delete(c, "StartedAt")
		c["KnownStatus"] = "PENDING"
	}
	b, _ := json.Marshal(m)
	return b
}

// Handler serves doc() as the task document at any path ending in /task,
// and Stats at any ending in /task/stats.
func Handler(doc func() []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := Stats
		switch {
		case strings.HasSuffix(r.URL.Path, "/task"):
			body = doc()
		case strings.HasSuffix(r.URL.Path, "/task/stats"):
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}
