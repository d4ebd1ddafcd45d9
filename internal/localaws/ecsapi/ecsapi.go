// Package ecsapi is a small in-memory ECS endpoint speaking the ECS JSON
// protocol (awsJson1.1) for the calls bastion-ttl makes: ListTasks,
// DescribeTasks, StopTask, ListTagsForResource and TagResource (of tasks),
// and for the launcher's connect DescribeClusters and DescribeTaskDefinition. The real SDK client talks to it over HTTP, so
// the SDK's serialization and retryer are exercised. The demo, the sweeper's
// tests and its scale benchmark use it; faults (throttling, server errors,
// latency) are injected per call.
package ecsapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
)

// TargetPrefix starts the X-Amz-Target header of every ECS call (awsJson1.1).
const TargetPrefix = "AmazonEC2ContainerServiceV20141113."

// Task is one task the endpoint knows.
type Task struct {
	ARN           string
	ClusterARN    string
	StartedAt     time.Time // zero: not started (no startedAt in answers)
	Tags          map[string]string
	LastStatus    string // default RUNNING
	DesiredStatus string // default RUNNING
	StoppedReason string
	// DescribeFailure, when set, is the reason DescribeTasks gives in its
	// failures instead of describing the task (e.g. ACCESS_DENIED).
	DescribeFailure string
	// TaskDefinitionARN and Containers (names) are described when set.
	TaskDefinitionARN string
	Containers        []string
	// CPU and Memory are the task's size (CPU units, MiB), described when set.
	CPU, Memory string
	// ExecuteCommand is a task run with ECS Exec: described with
	// enableExecuteCommand, and each container's runtime ID and a RUNNING
	// ExecuteCommandAgent.
	ExecuteCommand bool
}

// Fault is what Inject makes a call answer instead of its result.
type Fault struct {
	Status int    // HTTP status; 400 for client errors, 5xx for server ones
	Code   string // error type, e.g. ThrottlingException
	Delay  time.Duration
}

// Throttled is ECS's throttling answer.
var Throttled = Fault{Status: http.StatusBadRequest, Code: "ThrottlingException"}

// Server is the endpoint. Its zero value is not usable: use New.
type Server struct {
	mu    sync.Mutex
	tasks map[string]*Task
	// clusters are the ARNs of the clusters that exist: those of the tasks
	// added, and those added empty (AddCluster).
	clusters map[string]bool
	order    []string // task ARNs in insertion order, for stable pages
	calls    map[string]int
	inject   func(action string, body map[string]any) *Fault
	// OnStop, when set, is called (without the lock) after each accepted
	// StopTask has been answered.
	OnStop func(Task)
	// TaskDefinitions are what DescribeTaskDefinition answers, by the
	// name it is asked for (family, family:revision or ARN), as ECS's JSON.
	TaskDefinitions map[string]map[string]any
}

// New returns an empty endpoint.
func New() *Server {
	return &Server{tasks: map[string]*Task{}, clusters: map[string]bool{}, calls: map[string]int{}}
}

// AddCluster makes clusters exist without tasks, by ARN. A call naming a
// cluster that does not exist answers ClusterNotFoundException, as ECS does.
func (s *Server) AddCluster(arns ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, arn := range arns {
		s.clusters[arn] = true
	}
}

// Add adds tasks.
func (s *Server) Add(tasks ...Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tasks {
		t := t
		if t.LastStatus == "" {
			t.LastStatus = "RUNNING"
		}
		if t.DesiredStatus == "" {
			t.DesiredStatus = "RUNNING"
		}
		if _, ok := s.tasks[t.ARN]; !ok {
			s.order = append(s.order, t.ARN)
		}
		s.clusters[t.ClusterARN] = true
		s.tasks[t.ARN] = &t
	}
}

// Task returns the task by ARN.
func (s *Server) Task(arn string) (Task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[arn]
	if !ok {
		return Task{}, false
	}
	return t.copy(), true
}

// copy is the task with its own tags: TagResource may change the original's.
func (t *Task) copy() Task {
	c := *t
	c.Tags = maps.Clone(t.Tags)
	return c
}

// Tasks returns every task, in insertion order.
func (s *Server) Tasks() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Task, 0, len(s.order))
	for _, arn := range s.order {
		out = append(out, s.tasks[arn].copy())
	}
	return out
}

// Calls returns how many requests each action received (faults included).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Inject sets a function deciding, per request, whether to answer with a
// fault; nil clears it. It is called under the server's lock.
func (s *Server) Inject(f func(action string, body map[string]any) *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject = f
}

type apiError struct {
	status int
	code   string
	msg    string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if r.Method != http.MethodPost || !ok {
		writeError(w, apiError{http.StatusBadRequest, "UnknownOperationException", "not an ECS JSON request"})
		return
	}
	var body map[string]any
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, apiError{http.StatusBadRequest, "SerializationException", err.Error()})
		return
	}
	s.mu.Lock()
	s.calls[action]++
	var fault *Fault
	if s.inject != nil {
		fault = s.inject(action, body)
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fault.Code != "" {
			writeError(w, apiError{fault.Status, fault.Code, "injected fault"})
			return
		}
	}

	var (
		out     any
		stopped *Task
		aerr    *apiError
	)
	s.mu.Lock()
	switch action {
	case "ListTasks":
		out, aerr = s.listTasks(body)
	case "DescribeTasks":
		out, aerr = s.describeTasks(body)
	case "StopTask":
		out, stopped, aerr = s.stopTask(body)
	case "ListTagsForResource":
		out, aerr = s.listTags(body)
	case "TagResource":
		out, aerr = s.tagResource(body)
	case "DescribeClusters":
		out, aerr = s.describeClusters(body)
	case "DescribeTaskDefinition":
		name, _ := body["taskDefinition"].(string)
		if def, ok := s.TaskDefinitions[name]; ok {
			out = map[string]any{"taskDefinition": def}
		} else {
			aerr = &apiError{http.StatusBadRequest, "ClientException", "Unable to describe task definition."}
		}
	default:
		aerr = &apiError{http.StatusBadRequest, "UnknownOperationException", action + " is not supported here"}
	}
	s.mu.Unlock()
	if aerr != nil {
		writeError(w, *aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
	if stopped != nil && s.OnStop != nil {
		s.OnStop(*stopped)
	}
}

func writeError(w http.ResponseWriter, e apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", e.code)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.msg})
}

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", fmt.Sprintf(format, args...)}
}

var clusterNotFound = &apiError{http.StatusBadRequest, "ClusterNotFoundException", "Cluster not found."}

// cluster is the ARN of the cluster a request names (name or ARN, default
// "default"), "" if it does not exist.
func (s *Server) cluster(requested any) string {
	for arn := range s.clusters {
		if clusterMatches(requested, arn) {
			return arn
		}
	}
	return ""
}

// clusterMatches reports whether the request's cluster (name or ARN, default
// "default") names clusterARN.
func clusterMatches(requested any, clusterARN string) bool {
	name, _ := requested.(string)
	if name == "" {
		name = "default"
	}
	return name == clusterARN || strings.HasSuffix(clusterARN, ":cluster/"+name)
}

func (s *Server) listTasks(body map[string]any) (any, *apiError) {
	limit := 100
	if v, ok := body["maxResults"].(float64); ok {
		if v < 1 || v > 100 {
			return nil, invalid("maxResults must be between 1 and 100")
		}
		limit = int(v)
	}
	if s.cluster(body["cluster"]) == "" {
		return nil, clusterNotFound
	}
	desired, _ := body["desiredStatus"].(string)
	if desired == "" {
		desired = "RUNNING"
	}
	// The token is a position in the list of matching tasks as it is now:
	// a task stopped between two pages shifts the later pages, and a caller
	// that stops while paging skips tasks. Tokens are opaque; this one
	// takes the meaning that punishes relying on them.
	var matching []string
	for _, arn := range s.order {
		if t := s.tasks[arn]; clusterMatches(body["cluster"], t.ClusterARN) && t.DesiredStatus == desired {
			matching = append(matching, arn)
		}
	}
	start := 0
	if tok, ok := body["nextToken"].(string); ok && tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			return nil, invalid("invalid nextToken")
		}
		start = min(n, len(matching))
	}
	end := min(start+limit, len(matching))
	out := map[string]any{"taskArns": append([]string{}, matching[start:end]...)}
	if end < len(matching) {
		out["nextToken"] = strconv.Itoa(end)
	}
	return out, nil
}

func (s *Server) describeTasks(body map[string]any) (any, *apiError) {
	ids, _ := body["tasks"].([]any)
	if len(ids) == 0 || len(ids) > 100 {
		return nil, invalid("tasks must hold 1 to 100 tasks, got %d", len(ids))
	}
	if s.cluster(body["cluster"]) == "" {
		return nil, clusterNotFound
	}
	include, _ := body["include"].([]any)
	withTags := slices.Contains(include, any("TAGS"))
	tasks := []map[string]any{}
	failures := []map[string]any{}
	for _, id := range ids {
		ref, _ := id.(string)
		t := s.find(body["cluster"], ref)
		if t == nil {
			failures = append(failures, map[string]any{"arn": ref, "reason": "MISSING"})
			continue
		}
		if t.DescribeFailure != "" {
			failures = append(failures, map[string]any{"arn": t.ARN, "reason": t.DescribeFailure})
			continue
		}
		tasks = append(tasks, t.wire(withTags))
	}
	return map[string]any{"tasks": tasks, "failures": failures}, nil
}

// describeClusters describes the clusters that exist, all ACTIVE.
func (s *Server) describeClusters(body map[string]any) (any, *apiError) {
	names, _ := body["clusters"].([]any)
	clusters, failures := []map[string]any{}, []map[string]any{}
	for _, n := range names {
		found := s.cluster(n)
		if found == "" {
			failures = append(failures, map[string]any{"arn": n, "reason": "MISSING"})
			continue
		}
		clusters = append(clusters, map[string]any{"clusterArn": found, "clusterName": ecsarn.ClusterName(found), "status": "ACTIVE"})
	}
	return map[string]any{"clusters": clusters, "failures": failures}, nil
}

func (s *Server) stopTask(body map[string]any) (any, *Task, *apiError) {
	if s.cluster(body["cluster"]) == "" {
		return nil, nil, clusterNotFound
	}
	ref, _ := body["task"].(string)
	t := s.find(body["cluster"], ref)
	if t == nil {
		return nil, nil, invalid("The referenced task was not found.")
	}
	reason, _ := body["reason"].(string)
	if len(reason) > 1024 {
		return nil, nil, invalid("reason is too long")
	}
	if t.DesiredStatus != "STOPPED" {
		t.DesiredStatus = "STOPPED"
		t.LastStatus = "STOPPED"
		t.StoppedReason = reason
	}
	c := t.copy() // OnStop reads it after the lock is released
	return map[string]any{"task": t.wire(false)}, &c, nil
}

func (s *Server) listTags(body map[string]any) (any, *apiError) {
	arn, _ := body["resourceArn"].(string)
	t, ok := s.tasks[arn]
	if !ok {
		return nil, invalid("The referenced task was not found.")
	}
	return map[string]any{"tags": t.wire(true)["tags"]}, nil
}

func (s *Server) tagResource(body map[string]any) (any, *apiError) {
	arn, _ := body["resourceArn"].(string)
	t, ok := s.tasks[arn]
	if !ok {
		return nil, invalid("The referenced task was not found.")
	}
	tags, _ := body["tags"].([]any)
	if len(tags) == 0 {
		return nil, invalid("tags must hold at least one tag")
	}
	if t.Tags == nil {
		t.Tags = map[string]string{}
	}
	for _, tag := range tags {
		kv, _ := tag.(map[string]any)
		k, _ := kv["key"].(string)
		v, _ := kv["value"].(string)
		if k == "" {
			return nil, invalid("a tag has no key")
		}
		t.Tags[k] = v
	}
	return map[string]any{}, nil
}

// find looks a task up by ARN or ID within the request's cluster.
func (s *Server) find(cluster any, ref string) *Task {
	if t, ok := s.tasks[ref]; ok && clusterMatches(cluster, t.ClusterARN) {
		return t
	}
	for _, arn := range s.order {
		if t := s.tasks[arn]; strings.HasSuffix(arn, "/"+ref) && clusterMatches(cluster, t.ClusterARN) {
			return t
		}
	}
	return nil
}

func (t *Task) wire(withTags bool) map[string]any {
	m := map[string]any{
		"taskArn":       t.ARN,
		"clusterArn":    t.ClusterARN,
		"lastStatus":    t.LastStatus,
		"desiredStatus": t.DesiredStatus,
	}
	if !t.StartedAt.IsZero() {
		m["startedAt"] = float64(t.StartedAt.UnixMilli()) / 1000
	}
	if t.StoppedReason != "" {
		m["stoppedReason"] = t.StoppedReason
	}
	if t.TaskDefinitionARN != "" {
		m["taskDefinitionArn"] = t.TaskDefinitionARN
	}
	if t.ExecuteCommand {
		m["enableExecuteCommand"] = true
	}
	if t.CPU != "" {
		m["cpu"], m["memory"] = t.CPU, t.Memory
	}
	if len(t.Containers) > 0 {
		var cs []map[string]any
		for _, name := range t.Containers {
			c := map[string]any{"name": name, "lastStatus": t.LastStatus, "runtimeId": RuntimeID(t.ARN, name)}
			if t.ExecuteCommand {
				c["managedAgents"] = []map[string]any{{"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}}
			}
			cs = append(cs, c)
		}
		m["containers"] = cs
	}
	if withTags {
		tags := []map[string]string{}
		for k, v := range t.Tags {
			tags = append(tags, map[string]string{"key": k, "value": v})
		}
		slices.SortFunc(tags, func(a, b map[string]string) int { return strings.Compare(a["key"], b["key"]) })
		m["tags"] = tags
	}
	return m
}
