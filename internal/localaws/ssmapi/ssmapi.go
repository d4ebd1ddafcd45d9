// Package ssmapi is a local stand-in for the Systems Manager calls a
// Session Manager session needs, which moto does not serve: StartSession
// and TerminateSession (the SSM JSON protocol, awsJson1.1), and the
// session's data channel as this module's stand-in plugin reaches it (a GET
// of the answer's StreamUrl with its token, answering the session's target,
// document and parameters). ECS Exec's sessions are opened here too
// (Open), so one registry knows every session a test started.
package ssmapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// TargetPrefix starts the X-Amz-Target header of every SSM call.
const TargetPrefix = "AmazonSSM."

// Documents are the documents a port forward may use.
var Documents = []string{"AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost"}

// An ECS target names the cluster (never its ARN), the task ID and the
// container's runtime ID.
var ecsTarget = regexp.MustCompile(`^ecs:[A-Za-z0-9_-]+_[0-9a-f-]{32,36}_[0-9a-f-]{32,36}-[0-9]+$`)

// Session is one session the endpoint opened.
type Session struct {
	ID         string              `json:"sessionId"`
	Target     string              `json:"target"`
	Document   string              `json:"document,omitempty"` // empty for an ECS Exec shell
	Parameters map[string][]string `json:"parameters,omitempty"`
	Token      string              `json:"-"`
	Terminated bool                `json:"terminated"`
}

// Server is the endpoint. Its zero value is ready; set URL to its own base
// URL (the stream URLs it hands out point there).
type Server struct {
	URL string
	// CheckTarget, when set, refuses a session to a target it returns an
	// error for (a task that does not run, say) as SSM does: TargetNotConnected.
	CheckTarget func(target string) error

	mu       sync.Mutex
	sessions []*Session
	calls    map[string]int
}

// Open registers a session to target and returns it; ECS's ExecuteCommand
// stand-in calls it.
func (s *Server) Open(target, document string, params map[string][]string) Session {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	sess := &Session{ID: "session-" + hex.EncodeToString(b), Target: target, Document: document, Parameters: params, Token: hex.EncodeToString(tok)}
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	s.mu.Unlock()
	return *sess
}

// StreamURL is where the stand-in plugin reads a session from.
func (s *Server) StreamURL(id string) string {
	return strings.TrimSuffix(s.URL, "/") + "/v1/data-channel/" + id + "?role=publish_subscribe"
}

// Sessions returns every session opened, in order.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.sessions))
	for _, x := range s.sessions {
		out = append(out, *x)
	}
	return out
}

// Calls returns how many requests each action received.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/data-channel/"); ok && r.Method == http.MethodGet {
		s.dataChannel(w, r, id)
		return
	}
	action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if r.Method != http.MethodPost || !ok {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "not an SSM JSON request")
		return
	}
	var body map[string]any
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[action]++
	s.mu.Unlock()
	switch action {
	case "StartSession":
		s.startSession(w, body)
	case "TerminateSession":
		id, _ := body["SessionId"].(string)
		s.mu.Lock()
		for _, x := range s.sessions {
			if x.ID == id {
				x.Terminated = true
			}
		}
		s.mu.Unlock()
		writeJSON(w, map[string]string{"SessionId": id})
	default:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", action+" is not supported here")
	}
}

func (s *Server) startSession(w http.ResponseWriter, body map[string]any) {
	target, _ := body["Target"].(string)
	doc, _ := body["DocumentName"].(string)
	if !ecsTarget.MatchString(target) {
		writeError(w, http.StatusBadRequest, "InvalidTarget", fmt.Sprintf("target %q is not ecs:<cluster name>_<task id>_<runtime id>", target))
		return
	}
	if !slices.Contains(Documents, doc) {
		writeError(w, http.StatusBadRequest, "InvalidDocument", fmt.Sprintf("document %q is not a port-forwarding document", doc))
		return
	}
	params := map[string][]string{}
	if raw, ok := body["Parameters"].(map[string]any); ok {
		for k, v := range raw {
			list, _ := v.([]any)
			for _, x := range list {
				str, _ := x.(string)
				params[k] = append(params[k], str)
			}
		}
	}
	need := []string{"portNumber", "localPortNumber"}
	if doc == "AWS-StartPortForwardingSessionToRemoteHost" {
		need = append(need, "host")
	}
	for _, k := range need {
		if len(params[k]) != 1 || params[k][0] == "" {
			writeError(w, http.StatusBadRequest, "InvalidDocumentContent", fmt.Sprintf("parameter %s: want one value, got %q", k, params[k]))
			return
		}
	}
	if s.CheckTarget != nil {
		if err := s.CheckTarget(target); err != nil {
			writeError(w, http.StatusBadRequest, "TargetNotConnected", fmt.Sprintf("%s is not connected: %v", target, err))
			return
		}
	}
	sess := s.Open(target, doc, params)
	writeJSON(w, map[string]string{"SessionId": sess.ID, "TokenValue": sess.Token, "StreamUrl": s.StreamURL(sess.ID)})
}

// dataChannel answers the session a stream URL names, to the holder of its
// token, while it is not terminated.
func (s *Server) dataChannel(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	var found *Session
	for _, x := range s.sessions {
		if x.ID == id {
			c := *x
			found = &c
		}
	}
	s.mu.Unlock()
	switch {
	case found == nil:
		http.Error(w, "no such session", http.StatusNotFound)
	case r.Header.Get("Authorization") != found.Token:
		http.Error(w, "bad token", http.StatusForbidden)
	case found.Terminated:
		http.Error(w, "session terminated", http.StatusGone)
	default:
		writeJSON(w, found)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
