//go:build unix && !linux

package launcher

import "syscall"

// withParent does nothing where the kernel has no parent-death signal: a
// forward of a connect killed outright lives on until its session's
// idle timeout, or a kill of its process group.
func withParent(*syscall.SysProcAttr) {}
