package taskmeta

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
)

// MaxBody bounds the task document read; real ones are a few KiB.
const MaxBody = 1 << 20

// Client fetches the task document.
type Client struct {
	URL  string       // the task document's URL (Endpoint.TaskURL)
	HTTP *http.Client // nil: a client with a 2 s timeout
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
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	resp, err := hc.Do(req)
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
}

// Waiter retries Fetch until the start time is known: the endpoint may lag
// while the task starts, and a container may not have started yet.
type Waiter struct {
	Client    *Client
	Container string // BASTION_CONTAINER; empty for the earliest NORMAL container
	Clock     clock.Clock
	Backoff   backoff.Policy
	Log       *slog.Logger
}

// Wait returns the start, retrying every failure with backoff until ctx is done.
func (w *Waiter) Wait(ctx context.Context) (Start, error) {
	for attempt := 0; ; attempt++ {
		s, err := w.once(ctx)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return Start{}, fmt.Errorf("taskmeta: start time unknown: %w (last error: %v)", ctx.Err(), err)
		}
		delay := w.Backoff.Delay(attempt)
		w.Log.Warn("task metadata not usable yet, retrying", "url", w.Client.URL, "attempt", attempt+1, "retry_in", delay.String(), "err", err.Error())
		if err := w.Clock.Sleep(ctx, delay); err != nil {
			return Start{}, fmt.Errorf("taskmeta: start time unknown: %w", err)
		}
	}
}

func (w *Waiter) once(ctx context.Context) (Start, error) {
	t, err := w.Client.Fetch(ctx)
	if err != nil {
		return Start{}, err
	}
	at, err := t.StartedAt(w.Container)
	if err != nil {
		return Start{}, err
	}
	return Start{TaskARN: t.TaskARN, Cluster: t.Cluster, Time: at}, nil
}
