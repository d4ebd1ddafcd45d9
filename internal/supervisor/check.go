package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/clock"
	"github.com/bastion-ttl/bastion-ttl/internal/envconfig"
	"github.com/bastion-ttl/bastion-ttl/internal/lifetime"
	"github.com/bastion-ttl/bastion-ttl/internal/logging"
	"github.com/bastion-ttl/bastion-ttl/internal/startcache"
	"github.com/bastion-ttl/bastion-ttl/internal/stopclient"
)

// checkBudget keeps a check inside ECS's default health-check timeout (5 s).
const checkBudget = 3 * time.Second

// checker is the health check, supervisor check, run every few seconds
// inside the bastion container: it reads the start (cachedstart.go), and
// past the deadline it stops the task and, at deadline + grace, ends its
// container itself.
type checker struct {
	cfg      config
	log      *slog.Logger
	logOut   io.Writer // where log lines go, and the decision log with them
	clock    clock.Clock
	meta     metadata
	cacheDir string             // the start cache's directory (package startcache)
	stopper  *stopclient.Client // nil in dry run; each check logs through a copy

	// The fail-safe and the log copy; tests swap them.
	containerPID    int
	containerStdout string
	signal          func(pid int) error

	cacheWarned sync.Once // the start cache's directory is refused: said once
}

func newChecker(environ map[string]string, clk clock.Clock, logTo io.Writer) (*checker, error) {
	cfg, err := loadConfig(environ, true)
	if err != nil {
		return nil, err
	}
	log := logging.New(logTo, cfg.LogFormat, cfg.level)
	c := &checker{
		cfg:             cfg,
		log:             log,
		logOut:          logTo,
		clock:           clk,
		meta:            newMetadata(cfg, environ, clk, log),
		cacheDir:        startcache.DirPath(getenvOf(environ)),
		containerPID:    containerPID,
		containerStdout: containerStdout,
		signal:          signalContainer,
	}
	if !cfg.DryRun {
		if c.stopper, err = newStopper(cfg, environ, clk, log); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// run is one health check: healthy (nil) before the deadline; after it,
// send the stop request and report unhealthy (errExpired). At deadline +
// grace, the task still running, it ends its container itself (errFailSafe).
func (c *checker) run(ctx context.Context) error {
	ctx, cancel := c.clock.WithDeadline(ctx, c.clock.Now().Add(checkBudget))
	defer cancel()
	start, err := c.cachedStart(ctx)
	if errors.Is(err, envconfig.ErrInvalid) {
		return err // e.g. a BASTION_CONTAINER the task does not have: exit 2
	}
	if err != nil {
		// Unknown is not expired: never fail a check early. The sweeper and
		// later checks cover a task whose metadata stays unreadable.
		c.log.Warn("start time unknown, reporting healthy", "err", err.Error())
		return nil
	}
	lt := lifetime.Lifetime{Start: start.Time, TTL: c.cfg.TTL}
	now := c.clock.Now()
	if !lt.Expired(now) {
		c.log.Debug("healthy", deadlineAttrs(start, lt.TTL, lt.Deadline(), c.clock.Now())...)
		return nil
	}

	// From here every line is a decision someone will look for later.
	log, closeLog := c.decisionLog()
	defer closeLog()
	attrs := deadlineAttrs(start, lt.TTL, lt.Deadline(), c.clock.Now())
	if c.cfg.DryRun {
		// Healthy on purpose: a dry run must not make ECS act on the result.
		log.Warn("deadline passed; dry run, not stopping the task", attrs...)
		return nil
	}
	giveUp := lt.Deadline().Add(c.cfg.Grace)
	log.Warn("deadline passed, stopping the task", attrs...)
	stopper := *c.stopper // its lines go to the decision log too
	stopper.Log = log
	stopErr := stopper.Stop(ctx, stopRequest(start, lt.StopReason(), c.sampleForStop(ctx)))
	if stopErr != nil {
		log.Error("stop request failed; the next check tries again", append(attrs, "err", stopErr.Error())...)
	} else {
		log.Info("stop accepted", attrs...)
	}
	if now.Before(giveUp) {
		if stopErr != nil {
			return fmt.Errorf("%w: %v", errExpired, stopErr)
		}
		return errExpired
	}
	// Still running at deadline + grace: whatever the API said, the task
	// has not stopped, and ECS will not stop a standalone task for failing
	// its health check.
	if c.cfg.FailSafe == failSafeNone {
		log.Error("fail-safe disabled (BASTION_FAILSAFE=none): the task still runs past deadline + grace", attrs...)
		return fmt.Errorf("%w: the task still runs at %s", errExpired, giveUp.UTC().Format(time.RFC3339))
	}
	log.Error("fail-safe: the task still runs at deadline + grace; sending SIGTERM to the container's PID 1", append(attrs, "pid", c.containerPID)...)
	if err := c.signal(c.containerPID); err != nil {
		log.Error("fail-safe: cannot signal PID 1; the sweeper is the last line", append(attrs, "err", err.Error())...)
		return fmt.Errorf("%w: cannot signal PID %d: %v", errFailSafe, c.containerPID, err)
	}
	return fmt.Errorf("%w: sent SIGTERM to PID %d at %s", errFailSafe, c.containerPID, giveUp.UTC().Format(time.RFC3339))
}

// Where the health check's fail-safe and decisions go. The check runs inside
// the bastion container, in its PID namespace: PID 1 is the container's main
// process, and its stdout is what the awslogs driver ships.
const (
	containerPID    = 1
	containerStdout = "/proc/1/fd/1"
)

// signalContainer ends the container from inside: PID 1 exits on SIGTERM if
// it handles it (sshd and init shims such as tini do; the kernel drops
// signals a namespace's init does not handle), the essential container
// stops, and ECS stops the task. ECS would not stop a standalone task for
// failing its health check.
func signalContainer(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

// decisionLog returns a logger that writes to the check's own output and to
// the container's log stream: ECS keeps only the last health-check output, so
// without the copy nobody could tell later why a bastion stopped. The copy is
// best effort and never blocks: a full pipe drops the line.
func (c *checker) decisionLog() (log *slog.Logger, closeFn func()) {
	same := func() bool {
		mine, err1 := os.Stdout.Stat()
		theirs, err2 := os.Stat(c.containerStdout)
		return err1 == nil && err2 == nil && os.SameFile(mine, theirs)
	}
	if c.containerStdout == "" || same() {
		return c.log, func() {}
	}
	fd, err := syscall.Open(c.containerStdout, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		c.log.Debug("cannot write to the container's log stream", "path", c.containerStdout, "err", err.Error())
		return c.log, func() {}
	}
	w := io.MultiWriter(c.logOut, rawFD(fd))
	return logging.New(w, c.cfg.LogFormat, c.cfg.level), func() { _ = syscall.Close(fd) }
}

// rawFD writes with write(2) itself: an *os.File would wait on the poller
// for a full pipe, and the health check has no time to wait.
type rawFD int

func (fd rawFD) Write(p []byte) (int, error) { return syscall.Write(int(fd), p) }
