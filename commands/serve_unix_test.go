//go:build unix

package commands

import (
	"context"
	"os"
	"syscall"
	"testing"
)

// TestServeStopsOnSIGTERM sends the test process a real SIGTERM: serve must catch it
// (the process survives) and exit 0 after a graceful shutdown.
func TestServeStopsOnSIGTERM(t *testing.T) {
	_, code := startServe(t, context.Background())
	// "listening on" is printed after signal.NotifyContext is installed, so the signal
	// cannot hit the default handler and kill the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", c)
	}
}
