//go:build unix && !linux

package gateway

import "syscall"

// procAttr puts a child in its own process group, so that stop ends
// everything it started.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
