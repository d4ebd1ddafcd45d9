// Package controlclient is the client end of the sidecar's control endpoint
// (package controlapi): GET /status and POST /extend, for supervisor status
// and supervisor extend, run by a person on the bastion with none of the
// sidecar's environment. Every answer is checked before it is returned:
// whatever holds the port answers, and its text reaches a terminal.
package controlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
)

var (
	// ErrNoSidecar is matched when nothing answers at the address.
	ErrNoSidecar = errors.New("no sidecar answers")
	// ErrNotASidecar is matched when the 200 answer is not one a sidecar
	// sends (controlapi's checks).
	ErrNotASidecar = errors.New("the answer is not a sidecar's")
)

// RefusedError is an answer other than 200.
type RefusedError struct {
	Status int
	// Body is the sidecar's error body; its Error is "" unless it was one
	// that may be shown to a person (controlapi.ErrorBody.Printable).
	Body controlapi.ErrorBody
}

func (e *RefusedError) Error() string {
	if e.Body.Error == "" {
		return fmt.Sprintf("the sidecar answered %d", e.Status)
	}
	return e.Body.Error
}

// Client asks the sidecar at Addr (host:port).
type Client struct {
	Addr string
	HTTP *http.Client // nil: a client that follows no redirect
}

// Status asks GET /status, within controlapi.StatusTimeout.
func (c *Client) Status(ctx context.Context) (controlapi.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, controlapi.StatusTimeout)
	defer cancel()
	var s controlapi.Status
	raw, err := c.do(ctx, http.MethodGet, controlapi.StatusPath, nil)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return controlapi.Status{}, fmt.Errorf("%w: %v", ErrNotASidecar, err)
	}
	if err := s.Validate(); err != nil {
		return controlapi.Status{}, fmt.Errorf("%w: %v", ErrNotASidecar, err)
	}
	return s, nil
}

// Extend asks POST /extend for by more, waiting as long as the sidecar may
// take (controlapi.ExtendAnswerTimeout) and a little more.
func (c *Client) Extend(ctx context.Context, by time.Duration) (controlapi.Extended, error) {
	ctx, cancel := context.WithTimeout(ctx, controlapi.ExtendAnswerTimeout+5*time.Second)
	defer cancel()
	body, _ := json.Marshal(controlapi.ExtendRequest{By: by.String()})
	var ans controlapi.Extended
	raw, err := c.do(ctx, http.MethodPost, controlapi.ExtendPath, body)
	if err != nil {
		return ans, err
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return controlapi.Extended{}, fmt.Errorf("%w: %v", ErrNotASidecar, err)
	}
	if err := ans.Validate(); err != nil {
		return controlapi.Extended{}, fmt.Errorf("%w: %v", ErrNotASidecar, err)
	}
	return ans, nil
}

// do sends one request and returns a 200 answer's body (at most
// controlapi.MaxAnswerBytes), a *RefusedError for any other status, or an
// ErrNoSidecar error.
func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSidecar, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", controlapi.ContentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{CheckRedirect: noRedirect}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSidecar, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, controlapi.MaxAnswerBytes))
	if resp.StatusCode != http.StatusOK {
		refused := &RefusedError{Status: resp.StatusCode}
		var eb controlapi.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Printable() {
			refused.Body = eb
		}
		return nil, refused
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrNotASidecar, err)
	}
	return raw, nil
}

// noRedirect makes an http.Client return a 3xx answer as it is.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
