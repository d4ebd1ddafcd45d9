// Package stopclient is the supervisor's end of the stop API: a SigV4-signed,
// retrying client of POST /terminate (Stop), POST /extend (Extend) and
// POST /usage (SendUsage), and the checks of its URL.
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
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/identityproof"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// ErrRejected is matched by a final refusal (a 3xx, a 4xx other than 429, a
// 404 without the TaskNotFound code): retrying the same request cannot succeed.
var ErrRejected = errors.New("request rejected")

// RejectedError is a final refusal by the API.
type RejectedError struct {
	Op     string // terminate, extend, usage
	Status int
	Code   stopapi.Code // empty when the answer is not the function's (API Gateway's own)
	Body   string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s: request rejected with status %d: %s", e.Op, e.Status, e.Body)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Client sends SigV4-signed requests to the API and retries what may
// succeed later: network errors, 429 and 5xx. It never follows a redirect:
// that would carry the signed request somewhere the URL check did not approve.
type Client struct {
	URL       string // POST /terminate
	ExtendURL string // POST /extend; empty: Extend fails
	UsageURL  string // POST /usage; empty: SendUsage fails
	Region    string
	// STS is the endpoint the identity proof is made for (package
	// identityproof): every request carries one.
	STS         *url.URL
	Credentials aws.CredentialsProvider
	HTTP        *http.Client // nil: a client that follows no redirect, with the route's attempt timeout
	Clock       clock.Clock
	Backoff     backoff.Policy
	Log         *slog.Logger
	UserAgent   string
}

// route is one of the API's routes, as the client names it to people.
type route struct {
	op      string        // terminate, extend: the prefix of its errors
	what    string        // stop, extend: the request's name in log messages
	urlVar  string        // the variable that sets its URL
	attempt time.Duration // one attempt's timeout
}

// ExtendAttemptTimeout outlasts the function's own timeout (10 s in the
// template): an attempt is never abandoned while its invocation may still
// write the tag, so the next one cannot race it with a stale read.
const ExtendAttemptTimeout = 12 * time.Second

var (
	// A stop retries fast: the deadline has passed.
	terminateRoute = route{"terminate", "stop", "BASTION_TERMINATE_URL", 5 * time.Second}
	extendRoute    = route{"extend", "extend", "BASTION_EXTEND_URL", ExtendAttemptTimeout}
	// A usage report is bounded by its caller (2 s at SIGTERM).
	usageRoute = route{"usage", "usage", "BASTION_TERMINATE_URL", 2 * time.Second}
)

// Stop sends req until the API accepts it (2xx) or says the task is gone
// (404 with code TaskNotFound), both success; it returns a *RejectedError on
// a final refusal and the context's error, with the last failure, when ctx
// ends first.
//
// A usage the contract refuses is left out; a request the API refuses (400)
// while it carries a usage is sent again without: a function older than
// the usage member refuses it as an unknown field, and a usage must never
// cost a stop.
func (c *Client) Stop(ctx context.Context, req stopapi.Request) error {
	req.Usage = c.checkUsage(terminateRoute, req.Usage)
	_, _, err := c.send(ctx, terminateRoute, c.URL, req)
	if req.Usage != nil && usageRefused(err) {
		c.warnUsageRefused(terminateRoute, err)
		req.Usage = nil
		_, _, err = c.send(ctx, terminateRoute, c.URL, req)
	}
	return err
}

// SendUsage reports the task's usage (POST /usage), retrying as Stop does
// until ctx ends: callers bound it.
func (c *Client) SendUsage(ctx context.Context, req stopapi.UsageRequest) error {
	if c.UsageURL == "" {
		return errors.New("usage: no usage URL configured")
	}
	if err := stopapi.CheckUsage(req.Usage); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	_, _, err := c.send(ctx, usageRoute, c.UsageURL, req)
	return err
}

// checkUsage is u, or nil when the contract would refuse it.
func (c *Client) checkUsage(r route, u *stopapi.Usage) *stopapi.Usage {
	if u == nil {
		return nil
	}
	if err := stopapi.CheckUsage(*u); err != nil {
		c.Log.Warn(r.what+" request sent without its usage, which is out of the contract's bounds", "err", err.Error())
		return nil
	}
	return u
}

// usageRefused reports whether err is the API's 400: a request with a usage
// is then sent once more without.
func usageRefused(err error) bool {
	var re *RejectedError
	return errors.As(err, &re) && re.Status == http.StatusBadRequest
}

func (c *Client) warnUsageRefused(r route, err error) {
	c.Log.Warn(r.what+" request refused with its usage; sending it again without (a function older than the usage member refuses it: update the stack)", "err", err.Error())
}

// Extend asks the API to make the task's TTL req.TTL and returns its answer:
// the TTL now, which the cap may have cut. It retries as Stop does until ctx
// ends, so callers bound ctx: a person waits for the answer. A usage is
// handled as Stop handles it.
func (c *Client) Extend(ctx context.Context, req stopapi.ExtendRequest) (stopapi.Extended, error) {
	var e stopapi.Extended
	if c.ExtendURL == "" {
		return e, errors.New("extend: no extend URL configured")
	}
	req.Usage = c.checkUsage(extendRoute, req.Usage)
	status, answer, err := c.send(ctx, extendRoute, c.ExtendURL, req)
	if req.Usage != nil && usageRefused(err) {
		c.warnUsageRefused(extendRoute, err)
		req.Usage = nil
		status, answer, err = c.send(ctx, extendRoute, c.ExtendURL, req)
	}
	if err != nil {
		return e, err
	}
	if status == http.StatusNotFound { // TaskNotFound: nothing left to extend
		return e, &RejectedError{Op: extendRoute.op, Status: status, Code: stopapi.CodeTaskNotFound, Body: string(answer)}
	}
	if err := json.Unmarshal(answer, &e); err != nil || e.TTL == "" {
		return stopapi.Extended{}, fmt.Errorf("extend: status %d with an answer that is not an extension: %.200q", status, answer)
	}
	return e, nil
}

// send posts v to url until the API answers 2xx or 404 TaskNotFound (it
// returns that status and body), refuses for good (*RejectedError) or ctx
// ends.
func (c *Client) send(ctx context.Context, r route, url string, v any) (int, []byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", r.op, err)
	}
	for attempt := 1; ; attempt++ {
		status, answer, err := c.attempt(ctx, r, url, body, attempt)
		switch {
		case err == nil && (status/100 == 2 || status == http.StatusNotFound): // 404: TaskNotFound, checked in attempt
			return status, answer, nil
		case errors.Is(err, ErrRejected):
			return status, answer, err
		case err == nil:
			err = fmt.Errorf("%s: status %d", r.op, status)
		}
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%s: gave up after %d attempts: %w (last error: %v)", r.op, attempt, ctx.Err(), err)
		}
		delay := c.Backoff.Delay(attempt - 1)
		c.Log.Warn(r.what+" request failed, retrying", "attempt", attempt, "retry_in", delay.String(), "err", err.Error())
		if err := c.Clock.Sleep(ctx, delay); err != nil {
			return 0, nil, fmt.Errorf("%s: gave up after %d attempts: %w", r.op, attempt, err)
		}
	}
}

// attempt sends one signed request. It returns the status and body of
// answers worth retrying or counting as success, a *RejectedError for final
// refusals.
func (c *Client) attempt(ctx context.Context, r route, url string, body []byte, attempt int) (int, []byte, error) {
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: credentials: %w", r.op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", r.op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	proof, err := Prove(ctx, creds, c.STS, c.Region, http.MethodPost, identityproof.Route(req.URL.Path), body, c.Clock.Now())
	if err != nil {
		return 0, nil, fmt.Errorf("%s: identity proof: %w", r.op, err)
	}
	req.Header.Set(identityproof.Header, proof)
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), stopapi.SigningName, c.Region, c.Clock.Now()); err != nil {
		return 0, nil, fmt.Errorf("%s: sign: %w", r.op, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: r.attempt, CheckRedirect: noRedirect}
	}
	sent := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: post: %w", r.op, err)
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
		c.Log.Info(r.what+" request answered", attrs...)
	case s == http.StatusNotFound && eb.Code == stopapi.CodeTaskNotFound:
		c.Log.Info(r.what+" request answered: the task is already gone", attrs...)
	case s/100 == 3, s/100 == 4 && s != http.StatusTooManyRequests:
		// Final. A 404 or 403 without a code is API Gateway's own answer:
		// a wrong path or stage, a bad signature, a missing permission.
		c.Log.Error(r.what+" request refused; check "+r.urlVar+" and the task role", attrs...)
		return s, answer, &RejectedError{Op: r.op, Status: s, Code: eb.Code, Body: string(answer)}
	default:
		c.Log.Warn(r.what+" request answered", attrs...)
	}
	return s, answer, nil
}

// noRedirect makes an http.Client return a 3xx answer as it is.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
