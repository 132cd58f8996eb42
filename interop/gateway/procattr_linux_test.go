//go:build linux

package gateway

import "syscall"

// procAttr puts a child in its own process group (so that stop ends
// everything it started) and kills it if the test binary dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
