// Package moto is a reverse proxy in front of moto_server's ECS API that
// mends the answers aws-sdk-go-v2 cannot read, for tests:
//   - moto writes task and container cpu/memory as JSON numbers where the ECS
//     model says strings ("expected string, got 0"): they become strings;
//   - StopTask, ListTagsForResource and TagResource of a task moto does not
//     know answer an HTML 500; real ECS answers InvalidParameterException
//     "The referenced task was not found".
package moto

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/bastion-ttl/bastion-ttl/internal/localaws/ecsapi"
)

// New returns a proxy to moto at target.
func New(target *url.URL) *httputil.ReverseProxy {
	p := httputil.NewSingleHostReverseProxy(target)
	p.ModifyResponse = mend
	return p
}

// taskActions are the calls on one task whose "not found" moto answers in HTML.
var taskActions = map[string]bool{"StopTask": true, "ListTagsForResource": true, "TagResource": true}

func mend(resp *http.Response) error {
	action := strings.TrimPrefix(resp.Request.Header.Get("X-Amz-Target"), ecsapi.TargetPrefix)
	if taskActions[action] && resp.StatusCode == http.StatusInternalServerError && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		return replace(resp, http.StatusBadRequest, []byte(`{"__type":"InvalidParameterException","message":"The referenced task was not found."}`))
	}
	if resp.StatusCode != http.StatusOK || (action != "DescribeTasks" && action != "StopTask" && action != "RunTask") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return replace(resp, resp.StatusCode, body)
	}
	if t, ok := doc["task"].(map[string]any); ok {
		mendTask(t)
	}
	if ts, ok := doc["tasks"].([]any); ok {
		for _, t := range ts {
			if t, ok := t.(map[string]any); ok {
				mendTask(t)
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return replace(resp, resp.StatusCode, out)
}

func mendTask(t map[string]any) {
	stringify(t)
	if cs, ok := t["containers"].([]any); ok {
		for _, c := range cs {
			if c, ok := c.(map[string]any); ok {
				stringify(c)
			}
		}
	}
}

func stringify(m map[string]any) {
	for _, k := range []string{"cpu", "memory"} {
		if n, ok := m[k].(json.Number); ok {
			m[k] = n.String()
		}
	}
}

func replace(resp *http.Response, status int, body []byte) error {
	resp.StatusCode = status
	resp.Status = strconv.Itoa(status) + " " + http.StatusText(status)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Set("Content-Type", "application/x-amz-json-1.1")
	return nil
}
