//go:build !linux

package s3test

import "os/exec"

// startProcess has no way to tie the gateway's life to the test binary here; Stop (from
// a TestMain) ends it.
func startProcess(cmd *exec.Cmd) {}
