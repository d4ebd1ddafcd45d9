package supervisor

import (
	"io"
	"log/slog"
	"os"
	"syscall"

	"github.com/bastion-ttl/bastion-ttl/internal/logging"
)

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
func (a *app) decisionLog() (log *slog.Logger, closeFn func()) {
	same := func() bool {
		mine, err1 := os.Stdout.Stat()
		theirs, err2 := os.Stat(a.containerStdout)
		return err1 == nil && err2 == nil && os.SameFile(mine, theirs)
	}
	if a.containerStdout == "" || same() {
		return a.log, func() {}
	}
	fd, err := syscall.Open(a.containerStdout, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		a.log.Debug("cannot write to the container's log stream", "path", a.containerStdout, "err", err.Error())
		return a.log, func() {}
	}
	w := io.MultiWriter(a.logOut, rawFD(fd))
	return logging.New(w, a.cfg.LogFormat, a.cfg.level), func() { _ = syscall.Close(fd) }
}

// rawFD writes with write(2) itself: an *os.File would wait on the poller
// for a full pipe, and the health check has no time to wait.
type rawFD int

func (fd rawFD) Write(p []byte) (int, error) { return syscall.Write(int(fd), p) }
