package taskmeta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
)

// MaxBody bounds the task document read; real ones are a few KiB.
const MaxBody = 1 << 20

// DefaultTimeout bounds one fetch when the Client's HTTP client sets none.
const DefaultTimeout = 2 * time.Second

// MaxRetryDelay caps the Waiter's wait between attempts, whatever its
// Backoff says: the endpoint is on the task's own link, so asking again costs
// nothing, and a longer wait would only make the stop late.
const MaxRetryDelay = time.Second

// Client fetches the task document.
type Client struct {
	URL string // the task document's URL (Endpoint.TaskURL)
	// HTTP is the client to use; nil: one with DefaultTimeout. Fetch never
	// follows a redirect (the endpoint has no reason to send one) and adds
	// DefaultTimeout to a client that has no timeout.
	HTTP *http.Client
}

// httpClient is c.HTTP (or a default one), copied so that it follows no
// redirect and has a timeout.
func (c *Client) httpClient() *http.Client {
	var hc http.Client
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultTimeout
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// Fetch gets and decodes the task document once.
func (c *Client) Fetch(ctx context.Context) (*Task, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("taskmeta: %w", err)
	}
	// The document is read once: keep no idle connection (and its
	// goroutines) alive through a sleep of hours.
	req.Close = true
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("taskmeta: get task: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("taskmeta: get task: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("taskmeta: read task: %w", err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("taskmeta: task document larger than %d bytes", MaxBody)
	}
	return Decode(bytes.NewReader(body))
}

// Start is a task's identity and the instant its clock started.
type Start struct {
	TaskARN string
	Cluster string
	Time    time.Time
	// After a container restart: which (Task.Restarts), and the start the
	// document shows (later than Time). Restarted is empty otherwise.
	Restarted string
	Shown     time.Time
}

// Waiter retries Fetch until the start time is known: the endpoint may lag
// while the task starts, and a container may not have started yet.
type Waiter struct {
	Client    *Client
	Container string // BASTION_CONTAINER; empty for the earliest NORMAL container
	Clock     clock.Clock
	Backoff   backoff.Policy // its delays are capped at MaxRetryDelay
	// Latest, when set, is the latest the deadline can be: no wait between
	// attempts crosses it, so an endpoint that becomes usable just before it
	// is read at Latest, not up to MaxRetryDelay later.
	Latest time.Time
	Log    *slog.Logger
}

// Wait returns the start, retrying with backoff until ctx is done. A
// container name the task does not have is a configuration error
// (*envconfig.VarError for BASTION_CONTAINER), returned at once: retrying
// cannot fix it.
func (w *Waiter) Wait(ctx context.Context) (Start, error) {
	var lastErr string
	for attempt := 0; ; attempt++ {
		s, err := w.once(ctx)
		if err == nil {
			return s, nil
		}
		var missing *NoSuchContainerError
		if errors.As(err, &missing) {
			return Start{}, envconfig.Invalid("BASTION_CONTAINER", missing.Name,
				"the task has no such container; it has: "+strings.Join(missing.Have, ", "))
		}
		if ctx.Err() != nil {
			return Start{}, fmt.Errorf("taskmeta: start time unknown: %w (last error: %v)", ctx.Err(), err)
		}
		delay := w.delay(attempt)
		// At one attempt a second, an endpoint down for the whole TTL would
		// log thousands of lines: warn on the first failures, on a new
		// error, and then about once a minute.
		level := slog.LevelDebug
		if attempt < 3 || attempt%60 == 0 || err.Error() != lastErr {
			level = slog.LevelWarn
		}
		lastErr = err.Error()
		w.Log.Log(ctx, level, "task metadata not usable yet, retrying", "url", w.Client.URL, "attempt", attempt+1, "retry_in", delay.String(), "err", err.Error())
		if err := w.Clock.Sleep(ctx, delay); err != nil {
			return Start{}, fmt.Errorf("taskmeta: start time unknown: %w (last error: %v)", err, lastErr)
		}
	}
}

// delay is the wait before retry number attempt: the backoff's, at most
// MaxRetryDelay, and never past Latest.
func (w *Waiter) delay(attempt int) time.Duration {
	d := min(w.Backoff.Delay(attempt), MaxRetryDelay)
	if !w.Latest.IsZero() {
		if left := w.Latest.Sub(w.Clock.Now()); left > 0 && d > left {
			d = left
		}
	}
	return d
}

func (w *Waiter) once(ctx context.Context) (Start, error) {
	t, err := w.Client.Fetch(ctx)
	if err != nil {
		return Start{}, err
	}
	at, err := t.StartedAtAsOf(w.Container, w.Clock.Now())
	if err != nil {
		return Start{}, err
	}
	s := Start{TaskARN: t.TaskARN, Cluster: t.Cluster, Time: at, Shown: at}
	if s.Restarted = t.Restarts(w.Container); s.Restarted != "" {
		// StartedAtAsOf checked it: the latest start is no earlier than at.
		s.Shown, _ = t.LatestStartedAt(w.Container)
	}
	return s, nil
}
