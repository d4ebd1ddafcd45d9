package taskroles

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
)

// RoleIDsAttribute is the attribute (Fn::GetAtt) holding the comma-separated IDs.
const RoleIDsAttribute = "RoleIds"

// maxReason keeps the answer under CloudFormation's 4 KiB response limit.
const maxReason = 1000

// Handler answers CloudFormation's requests for the custom resource whose
// RoleNames property lists the extra task roles. Create and Update resolve
// them (FAILED, naming the role, fails the deployment); Delete has nothing
// to undo and always succeeds. Every request is answered at its response
// URL, also when resolving runs out of time.
type Handler struct {
	IAM IAM
	// HTTP PUTs the answer to the presigned response URL.
	HTTP *http.Client
	// Reserve is kept before the invocation's deadline to send the answer.
	Reserve time.Duration
	// Patience is how long a GetRole answered AccessDenied is asked again.
	Patience time.Duration
	// Clock times the waits between attempts; nil: the system's.
	Clock clock.Clock
	Log   *slog.Logger
}

func (h *Handler) clock() clock.Clock {
	if h.Clock == nil {
		return clock.System{}
	}
	return h.Clock
}

// Handle answers one request. Its error says only that the answer could
// not be delivered (Lambda then retries the invocation).
func (h *Handler) Handle(ctx context.Context, e cfn.Event) error {
	// Whoever may invoke the function writes the event: answer only at a
	// URL CloudFormation could have given, and do nothing for any other.
	if err := checkResponseURL(e.ResponseURL); err != nil {
		h.Log.Error("request refused: not CloudFormation's response URL", "request", e.RequestType, "err", err)
		return err
	}
	r := cfn.NewResponse(&e)
	work, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		work, cancel = context.WithDeadline(ctx, deadline.Add(-h.Reserve))
	}
	physical, data, err := h.act(work, e)
	cancel()
	r.PhysicalResourceID, r.Data = physical, data
	if err != nil {
		r.Status, r.Reason = cfn.StatusFailed, cut(err.Error(), maxReason)
		h.Log.Error("request failed", "request", e.RequestType, "logical_id", e.LogicalResourceID, "err", err)
	} else {
		r.Status = cfn.StatusSuccess
		h.Log.Info("request done", "request", e.RequestType, "logical_id", e.LogicalResourceID, "physical_id", physical, "data", data)
	}
	if err := h.send(ctx, e.ResponseURL, r); err != nil {
		h.Log.Error("answer not delivered", "request", e.RequestType, "err", err)
		return err
	}
	return nil
}

// act does what e asks and returns the resource's physical ID (the
// previous one on a failed update, so CloudFormation rolls back to it).
func (h *Handler) act(ctx context.Context, e cfn.Event) (physical string, data map[string]any, err error) {
	physical = e.PhysicalResourceID
	if physical == "" {
		physical = "bastion-ttl-task-roles-unresolved"
	}
	defer func() {
		if p := recover(); p != nil {
			h.Log.Error("panic", "panic", fmt.Sprint(p))
			err = errors.New("internal error; see the function's log")
		}
	}()
	switch e.RequestType {
	case cfn.RequestDelete:
		return physical, nil, nil
	case cfn.RequestCreate, cfn.RequestUpdate:
	default:
		return physical, nil, fmt.Errorf("unknown request type %q", e.RequestType)
	}
	names, err := Names(e.ResourceProperties["RoleNames"])
	if err != nil {
		return physical, nil, err
	}
	if len(names) == 0 {
		return physical, nil, errors.New("RoleNames lists no role")
	}
	ids, err := Resolve(ctx, h.IAM, names, h.Patience, h.clock())
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("IAM did not answer in time: %w", err)
		}
		return physical, nil, err
	}
	joined := strings.Join(ids, ",")
	h.Log.Info("roles resolved", "roles", strings.Join(names, ","), "role_ids", joined)
	// The same roles keep the same ID; a role created again gives a new one.
	sum := sha256.Sum256([]byte(joined))
	return "bastion-ttl-task-roles-" + hex.EncodeToString(sum[:8]), map[string]any{RoleIDsAttribute: joined}, nil
}

// send PUTs r to the presigned URL, as CloudFormation expects it: no
// Content-Type (the signature covers an empty one). A failed attempt is
// tried again while ctx lasts.
func (h *Handler) send(ctx context.Context, url string, r *cfn.Response) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("taskroles: encode answer: %w", err)
	}
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			if err := h.clock().Sleep(ctx, time.Duration(attempt)*500*time.Millisecond); err != nil {
				return fmt.Errorf("taskroles: put answer: %w (last: %v)", err, last)
			}
		}
		if last = h.put(ctx, url, body); last == nil {
			return nil
		}
	}
	return fmt.Errorf("taskroles: put answer: %w", last)
}

// checkResponseURL accepts CloudFormation's presigned S3 URLs (https, an
// amazonaws.com host) and, for tests, http to a loopback host.
func checkResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return errors.New("taskroles: the response URL is not a URL")
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "https" && (strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")):
		return nil
	case (u.Scheme == "http" || u.Scheme == "https") && (host == "localhost" || net.ParseIP(host).IsLoopback()):
		return nil
	}
	return fmt.Errorf("taskroles: the response URL's host %q is not CloudFormation's (https, amazonaws.com)", host)
}

func (h *Handler) put(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// NewHTTPClient is the client Handler needs: a timeout, no redirects.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
