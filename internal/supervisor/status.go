package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// statusReport is the output of status --json. Without a sidecar and
// without BASTION_TTL here, only the start is known: the TTL, the deadline
// and the time left are null, and Unknown says why.
type statusReport struct {
	TaskARN   string     `json:"taskArn"`
	StartedAt time.Time  `json:"startedAt"`
	TTL       *string    `json:"ttl"`
	Deadline  *time.Time `json:"deadline"`
	Left      *string    `json:"left"`
	LeftSecs  *float64   `json:"leftSeconds"`
	Expired   bool       `json:"expired"`
	Unknown   string     `json:"unknown,omitempty"`
}

// status prints the bastion's start, TTL, deadline and time left for a person.
func (a *app) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	short := fs.Bool("short", false, "print one line, for a prompt")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || (*asJSON && *short) {
		return usagef("status takes only --json or --short, got %q", args)
	}
	// A person on the bastion has none of the sidecar's environment: ask
	// the sidecar first, and read the metadata only when none answers.
	if s, ok := a.askSidecar(ctx); ok {
		if *short {
			return a.printShort(s.Remaining, s.Deadline, s.Reason, s.Warning != "")
		}
		return a.printSidecarStatus(s, *asJSON)
	}
	// Outside a task (a laptop, a shell with none of the task's
	// environment) say so in a second, rather than after 5 s of retries:
	// without the v4 or v3 variable only the v2 address is left (old EC2
	// agents), which is asked once.
	if a.endpoint.Version == 2 {
		probe, cancel := context.WithTimeout(ctx, time.Second)
		_, err := (&taskmeta.Client{URL: a.endpoint.TaskURL}).Fetch(probe)
		cancel()
		if err != nil {
			return fmt.Errorf("no task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4 is not set) and no sidecar answers at %s: run this inside a bastion task", a.cfg.ControlAddr)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start, err := a.waiter(backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}).Wait(ctx)
	if err != nil {
		return err
	}
	now := a.clock.Now()
	r := statusReport{TaskARN: start.TaskARN, StartedAt: start.Time.UTC()}
	// A login shell has none of the supervisor's environment: BASTION_TTL's
	// default would be a deadline nobody set. Only the sidecar or this
	// environment knows the TTL.
	_, ttlHere := a.environ["BASTION_TTL"]
	var lt lifetime.Lifetime
	if ttlHere {
		lt = lifetime.Lifetime{Start: start.Time, TTL: a.cfg.TTL}
		ttl, deadline, left, secs := a.cfg.TTL.String(), lt.Deadline().UTC(), lt.Left(now).Round(time.Second).String(), lt.Left(now).Seconds()
		r.TTL, r.Deadline, r.Left, r.LeftSecs, r.Expired = &ttl, &deadline, &left, &secs, lt.Expired(now)
	} else {
		r.Unknown = fmt.Sprintf("no sidecar answers at %s, and BASTION_TTL is not set here", a.cfg.ControlAddr)
	}
	if *asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	if *short {
		if !ttlHere {
			_, err := fmt.Fprintf(a.stdout, "deadline unknown: %s\n", r.Unknown)
			return err
		}
		warn := len(a.cfg.WarnBefore) > 0 && lt.Left(now) <= slices.Max(a.cfg.WarnBefore)
		return a.printShort(*r.Left, *r.Deadline, string(lifetime.LimitTTL), warn)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "task\t%s\n", r.TaskARN)
	fmt.Fprintf(tw, "started\t%s\n", r.StartedAt.Format(time.RFC3339))
	if !ttlHere {
		fmt.Fprintf(tw, "deadline\tunknown: %s\n", r.Unknown)
		return tw.Flush()
	}
	left := *r.Left
	if r.Expired {
		left = fmt.Sprintf("none: expired %s ago", now.Sub(lt.Deadline()).Round(time.Second))
	}
	fmt.Fprintf(tw, "ttl\t%s\n", *r.TTL)
	fmt.Fprintf(tw, "deadline\t%s\n", r.Deadline.Format(time.RFC3339))
	fmt.Fprintf(tw, "left\t%s\n", left)
	return tw.Flush()
}

// askSidecar gets the sidecar's status from its control endpoint.
func (a *app) askSidecar(ctx context.Context) (Status, bool) {
	if a.cfg.ControlAddr == controlOff {
		return Status{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.cfg.ControlAddr+"/status", nil)
	if err != nil {
		return Status{}, false
	}
	hc := &http.Client{CheckRedirect: noRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		a.log.Debug("no sidecar answers; reading the task metadata", "addr", a.cfg.ControlAddr, "err", err.Error())
		return Status{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.log.Debug("the sidecar has no status yet; reading the task metadata", "addr", a.cfg.ControlAddr, "status", resp.StatusCode)
		return Status{}, false
	}
	var s Status
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&s)
	if err == nil {
		err = s.check()
	}
	if err != nil {
		a.log.Warn("the answer at the control address is not a sidecar's; reading the task metadata", "addr", a.cfg.ControlAddr, "err", err.Error())
		return Status{}, false
	}
	return s, true
}

// check refuses a Status that the sidecar would not send: whatever holds
// the control port answers a login shell's status, and its text reaches
// the terminals of everyone who logs in.
func (s Status) check() error {
	// Not ecsarn.ParseTask: its patterns, compiled at package init, would
	// be paid at every health check.
	if !strings.HasPrefix(s.TaskARN, "arn:") || !strings.Contains(s.TaskARN, ":task/") || len(s.TaskARN) > 256 ||
		strings.ContainsFunc(s.TaskARN, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return fmt.Errorf("taskArn %q", s.TaskARN)
	}
	if s.Reason != string(lifetime.LimitTTL) && s.Reason != string(lifetime.LimitIdle) {
		return fmt.Errorf("reason %q", s.Reason)
	}
	if s.Reason == string(lifetime.LimitIdle) && s.IdleDeadline == nil {
		return errors.New("an idle limit without idleDeadline")
	}
	for name, d := range map[string]string{"ttl": s.TTL, "remaining": s.Remaining, "idleTimeout": s.IdleTimeout} {
		if _, err := time.ParseDuration(d); err != nil {
			return fmt.Errorf("%s %q", name, d)
		}
	}
	if _, err := time.ParseDuration(s.MaxTTL); s.MaxTTL != "" && err != nil {
		return fmt.Errorf("maxTtl %q", s.MaxTTL)
	}
	if s.Warning != "" && !strings.HasPrefix(s.Warning, "this bastion stops in ") || len(s.Warning) > 80 || hasControl(s.Warning) {
		return fmt.Errorf("warning %q", s.Warning)
	}
	return nil
}

// hasControl reports a control or format character: an escape sequence, a
// bidi override.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0
}

func (a *app) printSidecarStatus(s Status, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	limit := "TTL " + s.TTL
	if s.Reason == string(lifetime.LimitIdle) {
		limit = "idle " + s.IdleTimeout + " (no session since " + s.IdleDeadline.Add(-mustDuration(s.IdleTimeout)).Format(time.RFC3339) + ")"
	}
	ttl, maxTTL := s.TTL, s.MaxTTL
	if s.ExtendedTo != nil {
		ttl += " (extended)"
	}
	if maxTTL == "" {
		maxTTL = "not known yet"
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "task\t%s\n", s.TaskARN)
	fmt.Fprintf(tw, "started\t%s\n", s.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "ttl\t%s\n", ttl)
	fmt.Fprintf(tw, "max ttl\t%s (supervisor extend 30m asks for more, up to it)\n", maxTTL)
	if s.Registered {
		fmt.Fprintf(tw, "registered\tyes: the task's bastion-ttl tag holds this TTL, and the sweeper agrees\n")
	} else {
		fmt.Fprintf(tw, "registered\tno: the API has not recorded this TTL yet (the sidecar keeps trying)\n")
	}
	if s.IdleDeadline != nil {
		fmt.Fprintf(tw, "idle timeout\t%s\n", s.IdleTimeout)
	}
	fmt.Fprintf(tw, "stops at\t%s (%s)\n", s.Deadline.Format(time.RFC3339), limit)
	fmt.Fprintf(tw, "left\t%s\n", s.Remaining)
	fmt.Fprintf(tw, "sessions\t%d\n", s.Connections)
	if s.Warning != "" {
		fmt.Fprintf(tw, "warning\t%s\n", s.Warning)
	}
	return tw.Flush()
}

func mustDuration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

// printShort prints one line for a login banner or a prompt:
// "1h12m40s left, stops at 12:00:01Z (ttl)", starting "WARNING: " from the
// first of BASTION_WARN_BEFORE on, for a prompt hook to notice.
func (a *app) printShort(left string, deadline time.Time, limit string, warn bool) error {
	prefix := ""
	if warn {
		prefix = "WARNING: "
	}
	_, err := fmt.Fprintf(a.stdout, "%s%s left, stops at %s (%s)\n", prefix, left, deadline.UTC().Format("15:04:05Z"), limit)
	return err
}
