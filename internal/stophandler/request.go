package stophandler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bastion-ttl/bastion-ttl/internal/ecsarn"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/termtext"
)

// ReasonPrefix starts every stop reason the function gives ECS.
const ReasonPrefix = "bastion-ttl: "

// target is a valid request: the task and cluster it is about, and for a
// stop why, for an extension the TTL wanted.
type target struct {
	task    ecsarn.Task
	cluster string // name, from the ARN or the request's cluster field
	reason  string
	ttl     time.Duration
	usage   *stopapi.Usage // the task's usage, when the request carries one
	started time.Time      // POST /extend's startedAt; zero when not sent
}

// parseTerminate validates a POST /terminate request for this function's region.
func parseTerminate(method, body string, isBase64 bool, region string) (target, *errorAnswer) {
	var req stopapi.Request
	if err := decodeBody(method, body, isBase64, &req, "taskArn, cluster, reason and usage"); err != nil {
		return target{}, err
	}
	t, err := parseTask(req.TaskARN, req.Cluster, region)
	if err != nil {
		return target{}, err
	}
	if err := checkReason(req.Reason); err != nil {
		return target{}, err
	}
	if err := checkUsage(req.Usage); err != nil {
		return target{}, err
	}
	t.reason, t.usage = req.Reason, req.Usage
	return t, nil
}

// parseExtend validates a POST /extend request for this function's region.
func parseExtend(method, body string, isBase64 bool, region string) (target, *errorAnswer) {
	var req stopapi.ExtendRequest
	if err := decodeBody(method, body, isBase64, &req, "taskArn, cluster, ttl, startedAt and usage"); err != nil {
		return target{}, err
	}
	t, err := parseTask(req.TaskARN, req.Cluster, region)
	if err != nil {
		return target{}, err
	}
	// ECS tags only long-format ARNs, and only they carry the cluster that
	// authorization checked (TagResource takes no cluster).
	if t.task.Cluster == "" {
		return target{}, reject(http.StatusBadRequest, "taskArn is an old-format ARN (task/<id>); extension needs the long format (task/<cluster>/<id>)")
	}
	ttl, perr := time.ParseDuration(req.TTL)
	if perr != nil || ttl <= 0 {
		return target{}, reject(http.StatusBadRequest, "ttl is not a positive Go duration such as 2h30m (the whole TTL wanted, not an increment)")
	}
	if err := checkUsage(req.Usage); err != nil {
		return target{}, err
	}
	t.ttl, t.usage = ttl, req.Usage
	if req.StartedAt != "" {
		started, serr := time.Parse(time.RFC3339Nano, req.StartedAt)
		if serr != nil {
			return target{}, reject(http.StatusBadRequest, "startedAt is not an RFC 3339 time")
		}
		t.started = started
	}
	return t, nil
}

// parseUsage validates a POST /usage request for this function's region.
func parseUsage(method, body string, isBase64 bool, region string) (target, *errorAnswer) {
	var req stopapi.UsageRequest
	if err := decodeBody(method, body, isBase64, &req, "taskArn, cluster and usage"); err != nil {
		return target{}, err
	}
	t, err := parseTask(req.TaskARN, req.Cluster, region)
	if err != nil {
		return target{}, err
	}
	if err := checkUsage(&req.Usage); err != nil {
		return target{}, err
	}
	t.usage = &req.Usage
	return t, nil
}

// checkUsage checks a request's usage, if any, against the contract's
// bounds (stopapi.CheckUsage, which the supervisor applies before sending).
func checkUsage(u *stopapi.Usage) *errorAnswer {
	if u == nil {
		return nil
	}
	if err := stopapi.CheckUsage(*u); err != nil {
		return reject(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), stopapi.ErrBadUsage.Error()+": "))
	}
	return nil
}

// decodeBody checks the method and size and decodes the JSON body into v,
// refusing unknown fields; fields names them for the error message.
func decodeBody(method, body string, isBase64 bool, v any, fields string) *errorAnswer {
	if method != http.MethodPost {
		return reject(http.StatusMethodNotAllowed, "method %s not allowed; use POST", method)
	}
	raw := []byte(body)
	if isBase64 {
		if len(body) > base64.StdEncoding.EncodedLen(stopapi.MaxBodyBytes) {
			return reject(http.StatusRequestEntityTooLarge, "body larger than %d bytes", stopapi.MaxBodyBytes)
		}
		var err error
		if raw, err = base64.StdEncoding.DecodeString(body); err != nil {
			return reject(http.StatusBadRequest, "body is not valid base64")
		}
	}
	if len(raw) > stopapi.MaxBodyBytes {
		return reject(http.StatusRequestEntityTooLarge, "body larger than %d bytes", stopapi.MaxBodyBytes)
	}
	// Checked on the raw bytes: encoding/json would silently turn invalid
	// UTF-8 into U+FFFD.
	if !utf8.Valid(raw) {
		return reject(http.StatusBadRequest, "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return reject(http.StatusBadRequest, "body is not a JSON object of %s", fields)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return reject(http.StatusBadRequest, "body has data after the JSON object")
	}
	return nil
}

// bodyBytes is the body as the caller sent it; nil when it is not valid
// base64 (decodeBody refuses it first).
func bodyBytes(body string, isBase64 bool) []byte {
	if !isBase64 {
		return []byte(body)
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil
	}
	return raw
}

// parseTask checks the task ARN and cluster of a request.
func parseTask(taskARN, clusterField, region string) (target, *errorAnswer) {
	if taskARN == "" {
		return target{}, reject(http.StatusBadRequest, "taskArn is required")
	}
	task, err := ecsarn.ParseTask(taskARN)
	if err != nil {
		return target{}, reject(http.StatusBadRequest, "taskArn is not a task ARN (arn:<partition>:ecs:<region>:<account>:task/<cluster>/<id>)")
	}
	if task.Region != region {
		return target{}, reject(http.StatusBadRequest, "taskArn is in region %s; this endpoint serves %s", task.Region, region)
	}
	cluster, rerr := clusterOf(task, clusterField)
	if rerr != nil {
		return target{}, rerr
	}
	return target{task: task, cluster: cluster}, nil
}

// clusterOf is the task's cluster name: from a new-format ARN (a cluster
// field must then agree), else from the cluster field, required for old ARNs.
func clusterOf(task ecsarn.Task, field string) (string, *errorAnswer) {
	if field == "" {
		if task.Cluster == "" {
			return "", reject(http.StatusBadRequest, "cluster is required with an old-format taskArn (task/<id>)")
		}
		return task.Cluster, nil
	}
	c, err := ecsarn.ParseCluster(field)
	if err != nil {
		return "", reject(http.StatusBadRequest, "cluster is not a cluster name or ARN")
	}
	if c.Account != "" && (c.Account != task.Account || c.Region != task.Region || c.Partition != task.Partition) {
		return "", reject(http.StatusBadRequest, "cluster ARN is not in the task's partition, region and account")
	}
	if task.Cluster != "" && task.Cluster != c.Name {
		return "", reject(http.StatusBadRequest, "cluster does not match the taskArn's cluster")
	}
	return c.Name, nil
}

func checkReason(r string) *errorAnswer {
	if n := utf8.RuneCountInString(r); n > stopapi.MaxReasonLen {
		return reject(http.StatusBadRequest, "reason is %d characters; at most %d", n, stopapi.MaxReasonLen)
	}
	// Control and format characters (bidi overrides, zero-width joiners)
	// could hide or disguise text in the console, the logs and the
	// launcher's terminal.
	if termtext.HasUnsafe(r) {
		return reject(http.StatusBadRequest, "reason contains control or format characters")
	}
	return nil
}

// stopReason is what ECS records: the prefix and the caller's reason, cut to
// ECS's limit without splitting a character.
func stopReason(callerReason string) string {
	if callerReason == "" {
		callerReason = "stop requested by the task"
	}
	return lifetime.CutStopReason(ReasonPrefix + callerReason)
}
