package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

const (
	// extendBudget bounds one extension: a person waits for the answer.
	extendBudget = 10 * time.Second
	// registerBudget bounds the TTL's registration at start, which nobody
	// waits for: long enough to ride out a cold or throttled API.
	registerBudget = time.Minute
	// minExtension: people extend by minutes; smaller steps would only
	// multiply the calls the box's users can make the API pay for.
	minExtension = time.Minute
	// extendQueueWait is how long a request waits for the extension before
	// it (or the registration at start) to end.
	extendQueueWait = 5 * time.Second
	// controlWriteTimeout bounds an answer of the control endpoint: the
	// longest is an extension's, queue and API included.
	controlWriteTimeout = extendQueueWait + extendBudget + 5*time.Second
	// maxExtendBody bounds POST /extend's body ({"by": "30m"}).
	maxExtendBody = 1024
)

// ExtendAnswer is the control endpoint's 200 answer to POST /extend: the
// status after the extension, and whether the API's cap cut it.
type ExtendAnswer struct {
	Status
	Capped bool `json:"capped"`
}

func fail(status int, code stopapi.Code, format string, args ...any) (int, any) {
	return status, stopapi.ErrorBody{Code: code, Error: fmt.Sprintf(format, args...)}
}

// extendOnRequest serves POST /extend {"by": "30m"}: it asks the API for the
// TTL plus by and moves the deadline to the API's answer. Anyone on the box
// may ask; only the API's cap, which the box cannot lift, bounds the answer.
// ctx is the sidecar's own: the API call runs on it, not on the request's,
// so a client that hangs up neither abandons the call (which would keep the
// token until the invocation has surely ended) nor loses its answer.
func (a *app) extendOnRequest(ctx context.Context, r *http.Request, state *live) (int, any) {
	// A browser's form post cannot send this type without a CORS preflight,
	// which the endpoint never answers.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return fail(http.StatusUnsupportedMediaType, stopapi.CodeBadRequest, `send Content-Type: application/json and a body such as {"by": "30m"}`)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxExtendBody+1))
	if err != nil || len(body) > maxExtendBody {
		return fail(http.StatusRequestEntityTooLarge, stopapi.CodeTooLarge, "the body is larger than %d bytes", maxExtendBody)
	}
	by, err := decodeExtend(body)
	if err != nil {
		return fail(http.StatusBadRequest, stopapi.CodeBadRequest, "%s", err)
	}
	if a.stopper == nil {
		return fail(http.StatusServiceUnavailable, stopapi.CodeUnavailable, "this sidecar runs in dry run: there is no API to extend with")
	}
	// One extension at a time: the second one asks from the first's answer.
	// A queue is not kept: whoever waits too long is told to ask again.
	waitCtx, cancelWait := context.WithTimeout(r.Context(), extendQueueWait)
	defer cancelWait()
	if !a.takeExtension(waitCtx) {
		return fail(http.StatusServiceUnavailable, stopapi.CodeUnavailable, "another extension is being asked; try again in a moment")
	}
	type answer struct {
		status int
		body   any
	}
	done := make(chan answer, 1)
	go func() {
		status, body := a.extendHoldingToken(ctx, state, by)
		done <- answer{status, body}
	}()
	select {
	case ans := <-done:
		return ans.status, ans.body
	case <-r.Context().Done():
		a.log.Info("the client of an extension hung up; the extension is still asked", "by", by.String())
		return fail(http.StatusServiceUnavailable, stopapi.CodeUnavailable, "the client hung up")
	}
}

// extendHoldingToken asks the API for the TTL plus by, holding the
// extension token, which it gives back.
func (a *app) extendHoldingToken(ctx context.Context, state *live, by time.Duration) (int, any) {
	var apiErr error
	defer func() { a.releaseExtension(apiErr) }()
	snap, known := state.snapshot()
	ceiling := a.cfg.MaxTTL
	switch {
	case !known:
		return fail(http.StatusServiceUnavailable, stopapi.CodeUnavailable, "the start time is not known yet; try again in a moment")
	case snap.stopping:
		return fail(http.StatusConflict, stopapi.CodeExpired, "the deadline has passed: the bastion is being stopped")
	case snap.maxTTL > 0 && snap.lt.TTL >= snap.maxTTL, snap.lt.TTL >= ceiling:
		return fail(http.StatusConflict, stopapi.CodeCapReached, "the TTL is already at its cap of %s, which only the API's operator can raise", snap.lt.TTL)
	}
	wanted := snap.lt.TTL + by
	if wanted < snap.lt.TTL {
		return fail(http.StatusBadRequest, stopapi.CodeBadRequest, "by is too large")
	}
	// Never ask for more than this sidecar would believe: the tag would
	// then promise the sweeper a TTL the sidecar refuses.
	asked := min(wanted, ceiling)
	ctx, cancel := context.WithTimeout(ctx, extendBudget)
	defer cancel()
	ans, err := a.stopper.Extend(ctx, extendRequest(snap.start, asked))
	if err != nil {
		apiErr = err
		a.log.Warn("extension failed; the deadline is unchanged", "ttl", snap.lt.TTL.String(), "ttl_wanted", asked.String(), "err", err.Error())
		return fail(http.StatusBadGateway, stopapi.CodeUnreachable, "the API did not extend the TTL (the sidecar's log says why); the deadline is unchanged")
	}
	ttl, maxTTL, err := parseExtended(ans, snap.start.TaskARN)
	if err == nil && ttl > asked {
		err = fmt.Errorf("ttl %s is longer than the %s asked", ttl, asked)
	}
	if err != nil {
		a.log.Error("extension answer refused; the deadline is unchanged", "ttl", snap.lt.TTL.String(), "ttl_wanted", asked.String(), "err", err.Error())
		return fail(http.StatusBadGateway, stopapi.CodeUnreachable, "the API's answer was not understood; the deadline is unchanged")
	}
	if !state.adopt(ttl, maxTTL) {
		return fail(http.StatusConflict, stopapi.CodeExpired, "the deadline passed while the API answered: the bastion is being stopped")
	}
	switch {
	case ttl < snap.lt.TTL:
		lt := state.lifetime()
		a.log.Error("the stack's cap is below this sidecar's TTL: the deadline moves earlier, to the cap the sweeper enforces",
			"ttl_before", snap.lt.TTL.String(), "ttl", ttl.String(), "bastion_ttl", a.cfg.TTL.String(), "max_ttl", ans.MaxTTL,
			"deadline", lt.Deadline().UTC().Format(time.RFC3339))
		return fail(http.StatusConflict, stopapi.CodeCapReached, "the API's cap is %s, below the TTL this sidecar had (%s): the bastion now stops at %s",
			ttl, snap.lt.TTL, lt.Deadline().UTC().Format(time.RFC3339))
	case ttl == snap.lt.TTL:
		return fail(http.StatusConflict, stopapi.CodeCapReached, "the TTL is already at its cap of %s, which only the API's operator can raise", max(min(maxTTL, ceiling), ttl))
	}
	now := a.clock.Now()
	s, _ := state.status(now, a.cfg.WarnBefore)
	capped := ans.Capped || asked < wanted
	a.log.Info("TTL extended", "ttl_before", snap.lt.TTL.String(), "ttl", ttl.String(), "by", by.String(), "capped", capped,
		"ttl_deadline", state.lifetime().Deadline().UTC().Format(time.RFC3339), "deadline", s.Deadline.Format(time.RFC3339), "limit", s.Reason)
	return http.StatusOK, ExtendAnswer{Status: s, Capped: capped}
}

// takeExtension takes the one extension token, waiting until ctx ends.
func (a *app) takeExtension(ctx context.Context) bool {
	select {
	case a.extending <- struct{}{}:
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
func (a *app) releaseExtension(err error) {
	if err != nil && !errors.Is(err, stopclient.ErrRejected) {
		time.AfterFunc(stopclient.ExtendAttemptTimeout, func() { <-a.extending })
		return
	}
	<-a.extending
}

// decodeExtend reads {"by": "30m"}: one object, no other field, by a
// duration of at least minExtension.
func decodeExtend(body []byte) (time.Duration, error) {
	var req struct {
		By string `json:"by"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, errors.New(`the body is not {"by": "<duration>"}`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return 0, errors.New("the body has data after the JSON object")
	}
	by, err := time.ParseDuration(req.By)
	if err != nil || by < minExtension {
		return 0, fmt.Errorf("by is %q: want a duration of at least %s, such as 30m or 1h", req.By, minExtension)
	}
	return by, nil
}

func extendRequest(start taskmeta.Start, ttl time.Duration) stopapi.ExtendRequest {
	return stopapi.ExtendRequest{
		TaskARN: start.TaskARN,
		Cluster: stopclient.ClusterForRequest(start.TaskARN, start.Cluster),
		TTL:     ttl.String(),
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
func (a *app) registerTTL(ctx context.Context, state *live, start taskmeta.Start) {
	for attempt := 0; ; attempt++ {
		settled, err := a.registerOnce(ctx, state, start)
		if settled {
			return
		}
		snap, _ := state.snapshot()
		if snap.registered || snap.stopping { // an extension recorded it meanwhile
			return
		}
		left := snap.lt.Deadline().Sub(a.clock.Now())
		if left <= 0 {
			return
		}
		delay := min(registerBackoff.Delay(attempt), left)
		// Over hours of an API that cannot be reached: the first lines,
		// then one in ten.
		level := slog.LevelDebug
		if attempt < 3 || attempt%10 == 0 {
			level = slog.LevelWarn
		}
		a.log.Log(ctx, level, "could not register the TTL with the API, retrying: until then the sweeper has no tag to go by, and an earlier extension of this task, if any, is not known",
			"attempt", attempt+1, "retry_in", delay.String(), "err", err.Error())
		if a.clock.Sleep(ctx, delay) != nil {
			return
		}
	}
}

// registerOnce makes one registration; it reports whether it is settled
// (recorded, refused for good, or the bastion ending), else why not.
func (a *app) registerOnce(ctx context.Context, state *live, start taskmeta.Start) (bool, error) {
	if !a.takeExtension(ctx) {
		return true, nil
	}
	if snap, _ := state.snapshot(); snap.registered || snap.stopping {
		a.releaseExtension(nil)
		return true, nil
	}
	callCtx, cancel := context.WithTimeout(ctx, registerBudget)
	ans, err := a.stopper.Extend(callCtx, extendRequest(start, a.cfg.TTL))
	cancel()
	a.releaseExtension(err)
	if err != nil {
		return ctx.Err() != nil, err // canceled: the sidecar is ending
	}
	ttl, maxTTL, err := parseExtended(ans, start.TaskARN)
	if err == nil && ttl > a.cfg.MaxTTL {
		err = fmt.Errorf("ttl %s is above BASTION_MAX_TTL %s", ttl, a.cfg.MaxTTL)
	}
	if err != nil {
		// A wrong or hostile BASTION_TERMINATE_URL, or a bug: believing it
		// would move the deadline and the fail-safe with it.
		a.log.Error("registration answer refused; the deadline stays BASTION_TTL's", "bastion_ttl", a.cfg.TTL.String(),
			"bastion_max_ttl", a.cfg.MaxTTL.String(), "err", err.Error())
		return true, nil
	}
	if !state.adopt(ttl, maxTTL) {
		return true, nil
	}
	lt := state.lifetime()
	switch {
	case ttl > a.cfg.TTL:
		// An earlier sidecar's extension, or a launch tag that disagrees
		// with BASTION_TTL: the tag is the record.
		a.log.Warn("TTL taken from the task's bastion-ttl tag, longer than BASTION_TTL (an earlier extension, or a launch tag that disagrees)",
			"ttl", lt.TTL.String(), "bastion_ttl", a.cfg.TTL.String(), "deadline", lt.Deadline().UTC().Format(time.RFC3339))
	case ttl < a.cfg.TTL:
		a.log.Error("BASTION_TTL is above the stack's cap: the deadline moves earlier, to the cap the sweeper enforces",
			"ttl", lt.TTL.String(), "bastion_ttl", a.cfg.TTL.String(), "max_ttl", ans.MaxTTL, "deadline", lt.Deadline().UTC().Format(time.RFC3339))
	default:
		a.log.Info("TTL registered with the API", "ttl", lt.TTL.String(), "max_ttl", ans.MaxTTL)
	}
	if maxTTL > a.cfg.MaxTTL {
		a.log.Warn("the stack's cap is above BASTION_MAX_TTL: extensions stop at BASTION_MAX_TTL", "max_ttl", ans.MaxTTL, "bastion_max_ttl", a.cfg.MaxTTL.String())
	}
	return true, nil
}

// extendCommand is `supervisor extend [--json] DURATION`: a client of the
// sidecar's POST /extend, for a person on the bastion.
func (a *app) extendCommand(ctx context.Context, args []string) error {
	asJSON := false
	var durations []string
	for _, arg := range args { // --json before or after the duration
		switch arg {
		case "--json", "-json":
			asJSON = true
		default:
			durations = append(durations, arg)
		}
	}
	if len(durations) != 1 {
		return usagef("extend takes [--json] and one duration, e.g. supervisor extend 30m; got %q", args)
	}
	by, err := time.ParseDuration(durations[0])
	if err != nil || by < minExtension {
		return usagef("extend: %q is not a duration of at least %s, such as 30m or 1h", durations[0], minExtension)
	}
	if a.cfg.ControlAddr == controlOff {
		return fmt.Errorf("cannot extend: BASTION_CONTROL_ADDR is off, and extension goes through the sidecar's control endpoint")
	}
	body, _ := json.Marshal(map[string]string{"by": by.String()})
	ctx, cancel := context.WithTimeout(ctx, controlWriteTimeout+5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.cfg.ControlAddr+"/extend", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		a.log.Debug("no sidecar answers", "err", err.Error())
		return fmt.Errorf("cannot extend: no sidecar answers at %s (extension needs this task's supervisor watch)", a.cfg.ControlAddr)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var eb stopapi.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error == "" || len(eb.Error) > 300 || hasControl(eb.Error) {
			return fmt.Errorf("cannot extend: the sidecar answered %d", resp.StatusCode)
		}
		return fmt.Errorf("cannot extend: %s", eb.Error)
	}
	var ans ExtendAnswer
	if err := json.Unmarshal(raw, &ans); err != nil || ans.check() != nil {
		return fmt.Errorf("cannot extend: the answer at %s is not a sidecar's extension", a.cfg.ControlAddr)
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ans)
	}
	line := fmt.Sprintf("extended: TTL %s, %s left, stops at %s (%s)", ans.TTL, ans.Remaining, ans.Deadline.UTC().Format("15:04:05Z"), ans.Reason)
	if ans.Capped {
		line += fmt.Sprintf("; capped at %s, the most the API allows", ans.MaxTTL)
	}
	_, err = fmt.Fprintln(a.stdout, line)
	return err
}

// noRedirect makes an http.Client return a 3xx answer as it is.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
