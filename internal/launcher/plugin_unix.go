//go:build unix

package launcher

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a process group of its own: signals the
// terminal sends its foreground group (Ctrl-C, a closed terminal's hangup)
// do not reach it. Where Linux can, it still ends with connect (withParent).
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	withParent(cmd.SysProcAttr)
}
