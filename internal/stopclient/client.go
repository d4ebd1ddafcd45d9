// Package stopclient is the supervisor's end of the stop API: a SigV4-signed,
// retrying POST /terminate client, and the checks of its URL.
package stopclient

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
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// ErrRejected is matched by a final refusal (a 3xx, a 4xx other than 429, a
// 404 without the TaskNotFound code): retrying the same request cannot succeed.
var ErrRejected = errors.New("terminate: request rejected")

// RejectedError is a final refusal by the API.
type RejectedError struct {
	Status int
	Code   stopapi.Code // empty when the answer is not the function's (API Gateway's own)
	Body   string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("terminate: request rejected with status %d: %s", e.Status, e.Body)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Client sends SigV4-signed stop requests and retries what may succeed later:
// network errors, 429 and 5xx. It never follows a redirect: that would carry
// the signed request somewhere the URL check did not approve.
type Client struct {
	URL         string
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        *http.Client // nil: a client with a 5 s timeout that follows no redirect
	Clock       clock.Clock
	Backoff     backoff.Policy
	Log         *slog.Logger
	UserAgent   string
}

// Stop sends req until the API accepts it (2xx) or says the task is gone
// (404 with code TaskNotFound), both success; it returns a *RejectedError on
// a final refusal and the context's error, with the last failure, when ctx
// ends first.
func (c *Client) Stop(ctx context.Context, req stopapi.Request) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("terminate: %w", err)
	}
	for attempt := 1; ; attempt++ {
		status, err := c.attempt(ctx, body, attempt)
		switch {
		case err == nil && (status/100 == 2 || status == http.StatusNotFound): // 404: TaskNotFound, checked in attempt
			return nil
		case errors.Is(err, ErrRejected):
			return err
		case err == nil:
			err = fmt.Errorf("terminate: status %d", status)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("terminate: gave up after %d attempts: %w (last error: %v)", attempt, ctx.Err(), err)
		}
		delay := c.Backoff.Delay(attempt - 1)
		c.Log.Warn("stop request failed, retrying", "attempt", attempt, "retry_in", delay.String(), "err", err.Error())
		if err := c.Clock.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("terminate: gave up after %d attempts: %w", attempt, err)
		}
	}
}

// attempt sends one signed request. It returns the status for answers worth
// retrying or counting as success, a *RejectedError for final refusals.
func (c *Client) attempt(ctx context.Context, body []byte, attempt int) (int, error) {
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return 0, fmt.Errorf("terminate: credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("terminate: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), stopapi.SigningName, c.Region, c.Clock.Now()); err != nil {
		return 0, fmt.Errorf("terminate: sign: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirect}
	}
	sent := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("terminate: post: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var eb stopapi.ErrorBody
	_ = json.Unmarshal(answer, &eb)
	s := resp.StatusCode
	attrs := []any{"attempt", attempt, "status", s, "code", string(eb.Code),
		"duration_ms", time.Since(sent).Milliseconds(), "body", string(answer)}
	switch {
	case s/100 == 2:
		c.Log.Info("stop request answered", attrs...)
	case s == http.StatusNotFound && eb.Code == stopapi.CodeTaskNotFound:
		c.Log.Info("stop request answered: the task is already gone", attrs...)
	case s/100 == 3, s/100 == 4 && s != http.StatusTooManyRequests:
		// Final. A 404 or 403 without a code is API Gateway's own answer:
		// a wrong path or stage, a bad signature, a missing permission.
		c.Log.Error("stop request refused; check BASTION_TERMINATE_URL and the task role", attrs...)
		return s, &RejectedError{Status: s, Code: eb.Code, Body: string(answer)}
	default:
		c.Log.Warn("stop request answered", attrs...)
	}
	return s, nil
}

// noRedirect makes an http.Client return a 3xx answer as it is.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
