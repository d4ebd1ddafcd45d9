package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/backoff"
	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/controlclient"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/taskmeta"
)

// statusCommand is supervisor status [--json|--short], for a person on the
// bastion (and the profile.d hook, and scripts): it asks the sidecar, and
// builds the same controlapi.Status from the task metadata when none
// answers.
type statusCommand struct {
	cfg     config
	ttlHere bool // BASTION_TTL is set here, not only defaulted
	log     *slog.Logger
	clock   clock.Clock
	stdout  io.Writer
	meta    metadata
	sidecar *controlclient.Client // nil: BASTION_CONTROL_ADDR is off
}

func newStatusCommand(environ map[string]string, clk clock.Clock, stdout, logTo io.Writer) (*statusCommand, error) {
	cfg, err := loadConfig(environ, false)
	if err != nil {
		return nil, err
	}
	log := logging.New(logTo, cfg.LogFormat, cfg.level)
	_, ttlHere := environ["BASTION_TTL"]
	s := &statusCommand{cfg: cfg, ttlHere: ttlHere, log: log, clock: clk, stdout: stdout, meta: newMetadata(cfg, environ, clk, log)}
	if cfg.ControlAddr != controlOff {
		s.sidecar = &controlclient.Client{Addr: cfg.ControlAddr}
	}
	return s, nil
}

func (s *statusCommand) run(ctx context.Context, asJSON, short bool) error {
	// A person on the bastion has none of the sidecar's environment: ask
	// the sidecar first, and read the metadata only when none answers.
	st, ok := s.askSidecar(ctx)
	if !ok {
		var err error
		if st, err = s.fromMetadata(ctx); err != nil {
			return err
		}
	}
	switch {
	case asJSON:
		return printJSON(s.stdout, st)
	case short:
		return printShort(s.stdout, st)
	default:
		return printStatus(s.stdout, st, s.clock.Now())
	}
}

// askSidecar gets the sidecar's status from its control endpoint.
func (s *statusCommand) askSidecar(ctx context.Context) (controlapi.Status, bool) {
	if s.sidecar == nil {
		return controlapi.Status{}, false
	}
	st, err := s.sidecar.Status(ctx)
	var refused *controlclient.RefusedError
	switch {
	case errors.As(err, &refused):
		s.log.Debug("the sidecar has no status yet; reading the task metadata", "addr", s.sidecar.Addr, "status", refused.Status)
	case errors.Is(err, controlclient.ErrNoSidecar):
		s.log.Debug("no sidecar answers; reading the task metadata", "addr", s.sidecar.Addr, "err", err.Error())
	case err != nil:
		s.log.Warn("the answer at the control address is not a sidecar's; reading the task metadata", "addr", s.sidecar.Addr, "err", err.Error())
	}
	return st, err == nil
}

// fromMetadata builds the status from the task metadata. A login shell has
// none of the supervisor's environment: BASTION_TTL's default would be a
// deadline nobody set, so without BASTION_TTL here the deadline is null.
func (s *statusCommand) fromMetadata(ctx context.Context) (controlapi.Status, error) {
	// Outside a task (a laptop, a shell with none of the task's
	// environment) say so in a second, rather than after 5 s of retries:
	// without the v4 or v3 variable only the v2 address is left (old EC2
	// agents), which is asked once.
	if s.meta.endpoint.Version == 2 {
		probe, cancel := context.WithTimeout(ctx, time.Second)
		_, err := (&taskmeta.Client{URL: s.meta.endpoint.TaskURL}).Fetch(probe)
		cancel()
		if err != nil {
			return controlapi.Status{}, fmt.Errorf("no task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4 is not set) and no sidecar answers at %s: run this inside a bastion task", s.cfg.ControlAddr)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start, err := s.meta.waiter(backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}).Wait(ctx)
	if err != nil {
		return controlapi.Status{}, err
	}
	return statusFromMetadata(start, s.ttlHere, s.cfg, s.clock.Now()), nil
}

// statusFromMetadata is what the start alone tells at now: with the TTL
// known here, its deadline; otherwise why the deadline is unknown.
func statusFromMetadata(start taskmeta.Start, ttlHere bool, cfg config, now time.Time) controlapi.Status {
	st := controlapi.Status{SchemaVersion: controlapi.SchemaVersion, Source: controlapi.SourceMetadata, TaskARN: start.TaskARN, StartedAt: start.Time.UTC()}
	if !ttlHere {
		st.Unknown = fmt.Sprintf("no sidecar answers at %s, and BASTION_TTL is not set here", cfg.ControlAddr)
		return st
	}
	lt := lifetime.Lifetime{Start: start.Time, TTL: cfg.TTL}
	st.TTL = ptr(cfg.TTL.String())
	setDeadline(&st, lt.Deadline(), lifetime.LimitTTL, now, cfg.WarnBefore)
	return st
}

// printStatus prints st for a person, at now: a row for each thing known.
func printStatus(w io.Writer, st controlapi.Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "task\t%s\n", st.TaskARN)
	fmt.Fprintf(tw, "started\t%s\n", st.StartedAt.Format(time.RFC3339))
	if st.Deadline == nil {
		fmt.Fprintf(tw, "deadline\tunknown: %s\n", st.Unknown)
		return tw.Flush()
	}
	ttl := *st.TTL
	if st.ExtendedTo != nil {
		ttl += " (extended)"
	}
	fmt.Fprintf(tw, "ttl\t%s\n", ttl)
	if st.Source == controlapi.SourceSidecar {
		maxTTL := st.MaxTTL
		if maxTTL == "" {
			maxTTL = "not known yet"
		}
		fmt.Fprintf(tw, "max ttl\t%s (supervisor extend 30m asks for more, up to it)\n", maxTTL)
		if st.Registered {
			fmt.Fprintf(tw, "registered\tyes: the task's bastion-ttl tag holds this TTL, and the sweeper agrees\n")
		} else {
			fmt.Fprintf(tw, "registered\tno: the API has not recorded this TTL yet (the sidecar keeps trying)\n")
		}
	}
	if st.IdleDeadline != nil && st.IdleTimeout != nil {
		fmt.Fprintf(tw, "idle timeout\t%s\n", *st.IdleTimeout)
	}
	limit := "TTL " + *st.TTL
	if *st.Reason == controlapi.ReasonIdle {
		timeout, _ := time.ParseDuration(*st.IdleTimeout)
		limit = "idle " + *st.IdleTimeout + " (no session since " + st.IdleDeadline.Add(-timeout).Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(tw, "stops at\t%s (%s)\n", st.Deadline.Format(time.RFC3339), limit)
	left := *st.Remaining
	if st.Expired {
		left = fmt.Sprintf("none: expired %s ago", max(now.Sub(*st.Deadline), 0).Round(time.Second))
	}
	fmt.Fprintf(tw, "left\t%s\n", left)
	if st.Connections != nil {
		fmt.Fprintf(tw, "sessions\t%d\n", *st.Connections)
	}
	if st.Warning != "" {
		fmt.Fprintf(tw, "warning\t%s\n", st.Warning)
	}
	return tw.Flush()
}

// printJSON is --json's output: indented, for a person reading it too.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printShort prints one line for a login banner or a prompt:
// "1h12m40s left, stops at 12:00:01Z (ttl)", starting "WARNING: " from the
// first of BASTION_WARN_BEFORE on, for a prompt hook to notice; or
// "deadline unknown: " and why (examples/profile.d reads both).
func printShort(w io.Writer, st controlapi.Status) error {
	if st.Deadline == nil {
		_, err := fmt.Fprintf(w, "deadline unknown: %s\n", st.Unknown)
		return err
	}
	prefix := ""
	if st.Warning != "" {
		prefix = "WARNING: "
	}
	_, err := fmt.Fprintf(w, "%s%s left, stops at %s (%s)\n", prefix, *st.Remaining, st.Deadline.UTC().Format("15:04:05Z"), *st.Reason)
	return err
}
