package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// The extension path: POST /extend's request (checked in control.go) and
// the TTL's registration at start both ask the stop API's POST /extend,
// one at a time, and adopt its answer into the live state.

// registerBudget bounds the TTL's registration at start, which nobody
// waits for: long enough to ride out a cold or throttled API.
const registerBudget = time.Minute

// extendOnRequest asks the API for the TTL plus by and moves the deadline
// to the API's answer. ctx is the sidecar's own: the API call runs on it,
// not on the request's, so a client that hangs up neither abandons the call
// (which would keep the token until the invocation has surely ended) nor
// loses its answer.
func (w *watcher) extendOnRequest(ctx context.Context, r *http.Request, state *live, by time.Duration) (int, any) {
	if w.stopper == nil {
		return fail(http.StatusServiceUnavailable, controlapi.CodeUnavailable, "this sidecar runs in dry run: there is no API to extend with")
	}
	// One extension at a time: the second one asks from the first's answer.
	// A queue is not kept: whoever waits too long is told to ask again.
	waitCtx, cancelWait := context.WithTimeout(r.Context(), controlapi.ExtendQueueWait)
	defer cancelWait()
	if !w.takeExtension(waitCtx) {
		return fail(http.StatusServiceUnavailable, controlapi.CodeUnavailable, "another extension is being asked; try again in a moment")
	}
	type answer struct {
		status int
		body   any
	}
	done := make(chan answer, 1)
	go func() {
		status, body := w.extendHoldingToken(ctx, state, by)
		done <- answer{status, body}
	}()
	select {
	case ans := <-done:
		return ans.status, ans.body
	case <-r.Context().Done():
		w.log.Info("the client of an extension hung up; the extension is still asked", "by", by.String())
		return fail(http.StatusServiceUnavailable, controlapi.CodeUnavailable, "the client hung up")
	}
}

// extendHoldingToken asks the API for the TTL plus by, holding the
// extension token, which it gives back.
func (w *watcher) extendHoldingToken(ctx context.Context, state *live, by time.Duration) (int, any) {
	var apiErr error
	defer func() { w.releaseExtension(apiErr) }()
	snap, known := state.snapshot()
	ceiling := w.cfg.MaxTTL
	switch {
	case !known:
		return fail(http.StatusServiceUnavailable, controlapi.CodeUnavailable, "the start time is not known yet; try again in a moment")
	case snap.stopping:
		return fail(http.StatusConflict, controlapi.CodeExpired, "the deadline has passed: the bastion is being stopped")
	case snap.maxTTL > 0 && snap.lt.TTL >= snap.maxTTL, snap.lt.TTL >= ceiling:
		return fail(http.StatusConflict, controlapi.CodeCapReached, "the TTL is already at its cap of %s, which only the API's operator can raise", snap.lt.TTL)
	}
	wanted := snap.lt.TTL + by
	if wanted < snap.lt.TTL {
		return fail(http.StatusBadRequest, controlapi.CodeBadRequest, "by is too large")
	}
	// Never ask for more than this sidecar would believe: the tag would
	// then promise the sweeper a TTL the sidecar refuses.
	asked := min(wanted, ceiling)
	ctx, cancel := context.WithTimeout(ctx, controlapi.ExtendBudget)
	defer cancel()
	ans, err := w.stopper.Extend(ctx, extendRequest(snap.start, asked, w.usageNow()))
	if err != nil {
		apiErr = err
		w.log.Warn("extension failed; the deadline is unchanged", "ttl", snap.lt.TTL.String(), "ttl_wanted", asked.String(), "err", err.Error())
		return fail(http.StatusBadGateway, controlapi.CodeUnreachable, "the API did not extend the TTL (the sidecar's log says why); the deadline is unchanged")
	}
	ttl, maxTTL, err := parseExtended(ans, snap.start.TaskARN)
	if err == nil && ttl > asked {
		err = fmt.Errorf("ttl %s is longer than the %s asked", ttl, asked)
	}
	if err != nil {
		w.log.Error("extension answer refused; the deadline is unchanged", "ttl", snap.lt.TTL.String(), "ttl_wanted", asked.String(), "err", err.Error())
		return fail(http.StatusBadGateway, controlapi.CodeUnreachable, "the API's answer was not understood; the deadline is unchanged")
	}
	if !state.adopt(ttl, maxTTL) {
		return fail(http.StatusConflict, controlapi.CodeExpired, "the deadline passed while the API answered: the bastion is being stopped")
	}
	switch {
	case ttl < snap.lt.TTL:
		lt := state.lifetime()
		w.log.Error("the stack's cap is below this sidecar's TTL: the deadline moves earlier, to the cap the sweeper enforces",
			"ttl_before", snap.lt.TTL.String(), "ttl", ttl.String(), "bastion_ttl", w.cfg.TTL.String(), "max_ttl", ans.MaxTTL,
			"deadline", lt.Deadline().UTC().Format(time.RFC3339))
		return fail(http.StatusConflict, controlapi.CodeCapReached, "the API's cap is %s, below the TTL this sidecar had (%s): the bastion now stops at %s",
			ttl, snap.lt.TTL, lt.Deadline().UTC().Format(time.RFC3339))
	case ttl == snap.lt.TTL:
		return fail(http.StatusConflict, controlapi.CodeCapReached, "the TTL is already at its cap of %s, which only the API's operator can raise", max(min(maxTTL, ceiling), ttl))
	}
	now := w.clock.Now()
	s, _ := state.status(now, w.cfg.WarnBefore)
	capped := ans.Capped || asked < wanted
	w.log.Info("TTL extended", "ttl_before", snap.lt.TTL.String(), "ttl", ttl.String(), "by", by.String(), "capped", capped,
		"ttl_deadline", state.lifetime().Deadline().UTC().Format(time.RFC3339), "deadline", s.Deadline.Format(time.RFC3339), "limit", *s.Reason)
	return http.StatusOK, controlapi.Extended{Status: s, Capped: capped}
}

// takeExtension takes the one extension token, waiting until ctx ends.
func (w *watcher) takeExtension(ctx context.Context) bool {
	select {
	case w.extending <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// releaseExtension gives the token back, after a call that ended with err.
// When the call may have abandoned an invocation (no answer: a timeout, a
// network error), only once that invocation has surely ended: it read the
// tag before the next one would write it, and its late write would lower
// the tag under the deadline people were told.
func (w *watcher) releaseExtension(err error) {
	if err != nil && !errors.Is(err, stopclient.ErrRejected) {
		time.AfterFunc(stopclient.ExtendAttemptTimeout, func() { <-w.extending })
		return
	}
	<-w.extending
}

// extendRequest asks for ttl, with the task's usage so far (nil: none).
func extendRequest(start taskmeta.Start, ttl time.Duration, u *stopapi.Usage) stopapi.ExtendRequest {
	return stopapi.ExtendRequest{
		TaskARN: start.TaskARN,
		Cluster: stopclient.ClusterForRequest(start.TaskARN, start.Cluster),
		TTL:     ttl.String(),
		Usage:   u,
		// The ledger's deadline is the supervisor's own: this start + TTL.
		StartedAt: start.Time.UTC().Format(time.RFC3339Nano),
	}
}

// parseExtended reads the API's answer for taskARN: the TTL now and the
// cap, the one within the other.
func parseExtended(e stopapi.Extended, taskARN string) (ttl, maxTTL time.Duration, err error) {
	if e.TaskARN != taskARN {
		return 0, 0, fmt.Errorf("the answer is for task %q", e.TaskARN)
	}
	if ttl, err = time.ParseDuration(e.TTL); err != nil || ttl <= 0 {
		return 0, 0, fmt.Errorf("ttl %q is not a positive duration", e.TTL)
	}
	if e.MaxTTL != "" {
		if maxTTL, err = time.ParseDuration(e.MaxTTL); err != nil || maxTTL <= 0 || ttl > maxTTL {
			return 0, 0, fmt.Errorf("maxTtl %q is not a positive duration of at least ttl %q", e.MaxTTL, e.TTL)
		}
	}
	return ttl, maxTTL, nil
}

// registerBackoff spaces the registration's attempts: a failed one is
// asked again until it is written (the sweeper reads the tag) or the
// deadline comes.
var registerBackoff = backoff.Policy{Base: 500 * time.Millisecond, Max: time.Minute}

// registerTTL tells the API this sidecar's TTL (POST /extend with it),
// retrying in the background until the API records it, and adopts the
// answer: longer when the task's tag holds an earlier sidecar's extension,
// which a restart must not lose, up to BASTION_MAX_TTL; shorter when the
// stack's cap is below BASTION_TTL, since the sweeper enforces that cap.
func (w *watcher) registerTTL(ctx context.Context, state *live, start taskmeta.Start) {
	for attempt := 0; ; attempt++ {
		settled, err := w.registerOnce(ctx, state, start)
		if settled {
			return
		}
		snap, _ := state.snapshot()
		if snap.registered || snap.stopping { // an extension recorded it meanwhile
			return
		}
		left := snap.lt.Deadline().Sub(w.clock.Now())
		if left <= 0 {
			return
		}
		delay := min(w.registerBackoff.Delay(attempt), left)
		// Over hours of an API that cannot be reached: the first lines,
		// then one in ten.
		level := slog.LevelDebug
		if attempt < 3 || attempt%10 == 0 {
			level = slog.LevelWarn
		}
		w.log.Log(ctx, level, "could not register the TTL with the API, retrying: until then the sweeper has no tag to go by, and an earlier extension of this task, if any, is not known",
			"attempt", attempt+1, "retry_in", delay.String(), "err", err.Error())
		if w.clock.Sleep(ctx, delay) != nil {
			return
		}
	}
}

// registerOnce makes one registration; it reports whether it is settled
// (recorded, refused for good, or the bastion ending), else why not.
func (w *watcher) registerOnce(ctx context.Context, state *live, start taskmeta.Start) (bool, error) {
	if !w.takeExtension(ctx) {
		return true, nil
	}
	if snap, _ := state.snapshot(); snap.registered || snap.stopping {
		w.releaseExtension(nil)
		return true, nil
	}
	callCtx, cancel := context.WithTimeout(ctx, registerBudget)
	ans, err := w.stopper.Extend(callCtx, extendRequest(start, w.cfg.TTL, w.usageNow()))
	cancel()
	w.releaseExtension(err)
	if err != nil {
		return ctx.Err() != nil, err // canceled: the sidecar is ending
	}
	ttl, maxTTL, err := parseExtended(ans, start.TaskARN)
	if err == nil && ttl > w.cfg.MaxTTL {
		err = fmt.Errorf("ttl %s is above BASTION_MAX_TTL %s", ttl, w.cfg.MaxTTL)
	}
	if err != nil {
		// A wrong or hostile BASTION_TERMINATE_URL, or a bug: believing it
		// would move the deadline and the fail-safe with it.
		w.log.Error("registration answer refused; the deadline stays BASTION_TTL's", "bastion_ttl", w.cfg.TTL.String(),
			"bastion_max_ttl", w.cfg.MaxTTL.String(), "err", err.Error())
		return true, nil
	}
	if !state.adopt(ttl, maxTTL) {
		return true, nil
	}
	lt := state.lifetime()
	switch {
	case ttl > w.cfg.TTL:
		// An earlier sidecar's extension, or a launch tag that disagrees
		// with BASTION_TTL: the tag is the record.
		w.log.Warn("TTL taken from the task's bastion-ttl tag, longer than BASTION_TTL (an earlier extension, or a launch tag that disagrees)",
			"ttl", lt.TTL.String(), "bastion_ttl", w.cfg.TTL.String(), "deadline", lt.Deadline().UTC().Format(time.RFC3339))
	case ttl < w.cfg.TTL:
		w.log.Error("BASTION_TTL is above the stack's cap: the deadline moves earlier, to the cap the sweeper enforces",
			"ttl", lt.TTL.String(), "bastion_ttl", w.cfg.TTL.String(), "max_ttl", ans.MaxTTL, "deadline", lt.Deadline().UTC().Format(time.RFC3339))
	default:
		w.log.Info("TTL registered with the API", "ttl", lt.TTL.String(), "max_ttl", ans.MaxTTL)
	}
	if maxTTL > w.cfg.MaxTTL {
		w.log.Warn("the stack's cap is above BASTION_MAX_TTL: extensions stop at BASTION_MAX_TTL", "max_ttl", ans.MaxTTL, "bastion_max_ttl", w.cfg.MaxTTL.String())
	}
	return true, nil
}
