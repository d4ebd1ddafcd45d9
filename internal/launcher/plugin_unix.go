//go:build unix

package launcher

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a process group of its own: signals the
// terminal sends its foreground group (Ctrl-C) do not reach it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
