package launcher

import "syscall"

// withParent has the kernel send the plugin SIGTERM when connect dies, so
// that no forward outlives it out of the terminal's reach.
func withParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
