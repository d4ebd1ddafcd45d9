package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/bastion-ttl/bastion-ttl/internal/cli"
	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
	"github.com/bastion-ttl/bastion-ttl/internal/controlclient"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
)

// extendCommand is supervisor extend [--json] DURATION: a client of the
// sidecar's POST /extend, for a person on the bastion.
type extendCommand struct {
	addr    string
	sidecar *controlclient.Client // nil: BASTION_CONTROL_ADDR is off
	log     *slog.Logger
	stdout  io.Writer
}

func newExtendCommand(environ map[string]string, stdout, logTo io.Writer) (*extendCommand, error) {
	cfg, err := loadConfig(environ, false)
	if err != nil {
		return nil, err
	}
	e := &extendCommand{addr: cfg.ControlAddr, log: logging.New(logTo, cfg.LogFormat, cfg.level), stdout: stdout}
	if cfg.ControlAddr != controlOff {
		e.sidecar = &controlclient.Client{Addr: cfg.ControlAddr}
	}
	return e, nil
}

func (e *extendCommand) run(ctx context.Context, duration string, asJSON bool) error {
	by, err := controlapi.ParseBy(duration)
	if err != nil {
		return cli.Usagef("extend: %q is not a duration of at least %s, such as 30m or 1h", duration, controlapi.MinExtension)
	}
	if e.sidecar == nil {
		return fmt.Errorf("cannot extend: BASTION_CONTROL_ADDR is off, and extension goes through the sidecar's control endpoint")
	}
	ans, err := e.sidecar.Extend(ctx, by)
	var refused *controlclient.RefusedError
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("cannot extend: %s", refused)
	case errors.Is(err, controlclient.ErrNoSidecar):
		e.log.Debug("no sidecar answers", "err", err.Error())
		return fmt.Errorf("cannot extend: no sidecar answers at %s (extension needs this task's supervisor watch)", e.addr)
	case err != nil:
		e.log.Debug("not a sidecar's answer", "err", err.Error())
		return fmt.Errorf("cannot extend: the answer at %s is not a sidecar's extension", e.addr)
	}
	if asJSON {
		return printJSON(e.stdout, ans)
	}
	return printExtended(e.stdout, ans)
}

// printExtended is the one line that says what an extension did.
func printExtended(w io.Writer, ans controlapi.Extended) error {
	line := fmt.Sprintf("extended: TTL %s, %s left, stops at %s (%s)", *ans.TTL, *ans.Remaining, ans.Deadline.UTC().Format("15:04:05Z"), *ans.Reason)
	if ans.Capped {
		line += fmt.Sprintf("; capped at %s, the most the API allows", ans.MaxTTL)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
