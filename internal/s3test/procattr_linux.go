package s3test

import (
	"os/exec"
	"syscall"
)

// startProcess makes the kernel kill the gateway when the test binary dies, so a test
// that times out or panics leaves no server behind. Pdeathsig follows the thread that
// forked, which the Go runtime keeps alive for an ordinary goroutine.
func startProcess(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
