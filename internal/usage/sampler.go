package usage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// MaxBody bounds a stats answer read: a container's stats are a few KiB.
const MaxBody = 1 << 20

// DefaultTimeout bounds one read when the Sampler's HTTP client sets none.
const DefaultTimeout = 2 * time.Second

// mib is a MiB in bytes.
const mib = 1 << 20

// Sampler reads the task's stats on a clock and keeps their Summary. One
// sample is one GET of the stats (and, until the task's memory size is
// known, one GET of the task document). Reads that fail are logged and
// skipped: they never end or delay anything.
type Sampler struct {
	StatsURL string // taskmeta.Endpoint.StatsURL
	TaskURL  string // taskmeta.Endpoint.TaskURL: the task's Limits; empty: no limit
	// HTTP is the client to use; nil: one with DefaultTimeout. A read
	// never follows a redirect, and gets DefaultTimeout when the client
	// has no timeout.
	HTTP  *http.Client
	Clock clock.Clock
	Log   *slog.Logger

	// readMu serializes reads; mu guards the summary alone, so that Usage
	// never waits for a read in flight (the stop request asks for it).
	readMu  sync.Mutex
	sample  Sample       // reused: one read's figures
	buf     bytes.Buffer // reused: one read's body
	client  *http.Client // built once, so that its connection is reused
	failed  int          // reads failed in a row, for the log's level
	limitOK bool         // the task document was read (with or without Limits)
	mu      sync.Mutex
	sum     Summary
}

// Run samples at once and then every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context, interval time.Duration) {
	for {
		_ = s.SampleOnce(ctx)
		if s.Clock.Sleep(ctx, interval) != nil {
			return
		}
	}
}

// SampleOnce reads the stats once and adds them to the summary; a failure
// is logged and returned, and changes nothing.
func (s *Sampler) SampleOnce(ctx context.Context) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	err := s.read(ctx)
	if err == nil {
		s.mu.Lock()
		s.sum.Add(s.Clock.Now(), &s.sample)
		s.mu.Unlock()
		s.failed = 0
		if !s.limitOK {
			s.readLimit(ctx)
		}
		return nil
	}
	if ctx.Err() != nil { // the sidecar is ending: nothing to tell
		return err
	}
	// Over a day of an endpoint that cannot be read: the first lines, then
	// one in sixty.
	level := slog.LevelDebug
	if s.failed < 3 || s.failed%60 == 0 {
		level = slog.LevelWarn
	}
	s.failed++
	s.Log.Log(ctx, level, "cannot read the task's stats; this sample is skipped", "url", s.StatsURL, "failed", s.failed, "err", err.Error())
	return err
}

// Usage is the summary so far, nil before any sample.
func (s *Sampler) Usage() *stopapi.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.sum.Usage()
	if !ok {
		return nil
	}
	return &u
}

func (s *Sampler) read(ctx context.Context) error {
	if err := s.get(ctx, s.StatsURL); err != nil {
		return fmt.Errorf("usage: get stats: %w", err)
	}
	return Decode(s.buf.Bytes(), &s.sample)
}

// readLimit sets the summary's memory limit from the task document's
// Limits; a failure is logged and the next sample tries again.
func (s *Sampler) readLimit(ctx context.Context) {
	if s.TaskURL == "" {
		s.limitOK = true
		return
	}
	err := s.get(ctx, s.TaskURL)
	var t *taskmeta.Task
	if err == nil {
		t, err = taskmeta.Decode(&s.buf)
	}
	if err != nil {
		s.Log.Debug("cannot read the task's memory size; the next sample tries again", "url", s.TaskURL, "err", err.Error())
		return
	}
	s.limitOK = true
	if t.Limits != nil && t.Limits.Memory > 0 {
		s.mu.Lock()
		s.sum.SetMemoryLimit(uint64(t.Limits.Memory) * mib)
		s.mu.Unlock()
	}
}

// get reads url's body into s.buf: 200 only, at most MaxBody bytes. The
// connection is kept for the next sample: a new one each sample made 12 KiB
// of garbage more and grew the waiting sidecar's heap (docs/performance.md).
func (s *Sampler) get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	s.buf.Reset()
	if _, err := s.buf.ReadFrom(io.LimitReader(resp.Body, MaxBody+1)); err != nil {
		return err
	}
	if s.buf.Len() > MaxBody {
		return fmt.Errorf("answer larger than %d bytes", MaxBody)
	}
	return nil
}

// httpClient is s.HTTP (or a default one), copied once so that it follows
// no redirect and has a timeout.
func (s *Sampler) httpClient() *http.Client {
	if s.client != nil {
		return s.client
	}
	var hc http.Client
	if s.HTTP != nil {
		hc = *s.HTTP
	}
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultTimeout
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &hc
	return s.client
}
