package ecsapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
)

// ExecLayer stands in front of another ECS endpoint (moto, which knows
// nothing of ECS Exec) and adds what a real ECS answers for a task run
// with ECS Exec: DescribeTasks shows the task's start time, its
// enableExecuteCommand, and each container's runtimeId and a RUNNING
// ExecuteCommandAgent; ExecuteCommand opens a session through Open. It
// remembers what RunTask asked for; every other call passes through.
type ExecLayer struct {
	Next http.Handler
	// Open opens a session to target (the SSM stand-in's Open) and returns
	// its ID, stream URL and token.
	Open func(target string) (id, streamURL, token string)
	Now  func() time.Time
	// NoAgent leaves the ExecuteCommandAgent out: a task whose role lacks
	// ssmmessages:*, as ECS shows it.
	NoAgent bool

	mu    sync.Mutex
	tasks map[string]*execTask // by task ARN
}

type execTask struct {
	exec    bool
	started time.Time
}

// StartedAt sets when a task started, as DescribeTasks will say.
func (l *ExecLayer) StartedAt(arn string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.tasks[arn]; ok {
		t.started = at
	}
}

// RuntimeID is the runtime ID the layer gives a task's container.
func RuntimeID(taskARN, container string) string {
	sum := sha256.Sum256([]byte(taskARN + "/" + container))
	return ecsarn.TaskID(taskARN) + "-" + fmt.Sprint(uint32(sum[0])<<24|uint32(sum[1])<<16|uint32(sum[2])<<8|uint32(sum[3]))
}

func (l *ExecLayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, apiError{http.StatusBadRequest, "SerializationException", err.Error()})
		return
	}
	var req map[string]any
	_ = json.Unmarshal(body, &req)
	if action == "ExecuteCommand" {
		l.executeCommand(w, r, req)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	l.Next.ServeHTTP(rec, r)
	out := rec.Body.Bytes()
	if rec.Code == http.StatusOK && (action == "RunTask" || action == "DescribeTasks") {
		var doc map[string]any
		if json.Unmarshal(out, &doc) == nil {
			tasks, _ := doc["tasks"].([]any)
			for _, t := range tasks {
				if t, ok := t.(map[string]any); ok {
					l.mend(action, req, t)
				}
			}
			out, _ = json.Marshal(doc)
		}
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

func (l *ExecLayer) mend(action string, req, t map[string]any) {
	arn, _ := t["taskArn"].(string)
	l.mu.Lock()
	if l.tasks == nil {
		l.tasks = map[string]*execTask{}
	}
	if action == "RunTask" {
		exec, _ := req["enableExecuteCommand"].(bool)
		l.tasks[arn] = &execTask{exec: exec, started: l.Now()}
	}
	et, known := l.tasks[arn]
	var copied execTask
	if known {
		copied = *et
	}
	l.mu.Unlock()
	if !known {
		return
	}
	if _, ok := t["startedAt"].(float64); !ok {
		t["startedAt"] = float64(copied.started.UnixMilli()) / 1000
	}
	t["enableExecuteCommand"] = copied.exec
	cs, _ := t["containers"].([]any)
	for _, c := range cs {
		c, ok := c.(map[string]any)
		if !ok {
			continue
		}
		name, _ := c["name"].(string)
		c["runtimeId"] = RuntimeID(arn, name)
		if copied.exec && !l.NoAgent {
			c["managedAgents"] = []map[string]any{{"name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}}
		}
	}
}

// executeCommand checks the call as ECS does (interactive, a running task
// of the cluster run with ECS Exec, a container of it) and opens the session.
func (l *ExecLayer) executeCommand(w http.ResponseWriter, r *http.Request, req map[string]any) {
	cluster, _ := req["cluster"].(string)
	task, _ := req["task"].(string)
	container, _ := req["container"].(string)
	if interactive, _ := req["interactive"].(bool); !interactive {
		writeError(w, *invalid("Interactive is the only mode supported currently."))
		return
	}
	if cmd, _ := req["command"].(string); cmd == "" {
		writeError(w, *invalid("command is required"))
		return
	}
	// What the task is, from the endpoint behind.
	q, _ := json.Marshal(map[string]any{"cluster": cluster, "tasks": []string{task}})
	dr, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, r.URL.String(), bytes.NewReader(q))
	dr.Header = r.Header.Clone()
	dr.Header.Set("X-Amz-Target", TargetPrefix+"DescribeTasks")
	dr.Header.Del("Content-Length")
	rec := httptest.NewRecorder()
	l.ServeHTTP(rec, dr)
	var d struct {
		Tasks []struct {
			TaskARN, ClusterARN, LastStatus string
			EnableExecuteCommand            bool
			Containers                      []struct{ Name, RuntimeID string }
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil || len(d.Tasks) != 1 {
		writeError(w, *invalid("The referenced task was not found."))
		return
	}
	t := d.Tasks[0]
	if !t.EnableExecuteCommand {
		writeError(w, *invalid("The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running."))
		return
	}
	if t.LastStatus != "RUNNING" {
		writeError(w, *invalid("The execute command failed because the task is not running."))
		return
	}
	runtimeID := ""
	for _, c := range t.Containers {
		if c.Name == container || (container == "" && len(t.Containers) == 1) {
			runtimeID, container = c.RuntimeID, c.Name
		}
	}
	if runtimeID == "" || l.NoAgent {
		writeError(w, *invalid("The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running."))
		return
	}
	target := "ecs:" + ecsarn.ClusterName(t.ClusterARN) + "_" + ecsarn.TaskID(t.TaskARN) + "_" + runtimeID
	id, stream, token := l.Open(target)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"clusterArn": t.ClusterARN, "taskArn": t.TaskARN, "containerName": container, "interactive": true,
		"containerArn": t.TaskARN + "/" + hex.EncodeToString([]byte(container)),
		"session":      map[string]string{"sessionId": id, "streamUrl": stream, "tokenValue": token},
	})
}
