// Package servertest runs a real hubctl registry (server.Run) in-process on 127.0.0.1
// for the tests of client packages: the same server as `hubctl serve`, on a random port
// with its data in a temp dir, stopped when the test ends.
package servertest

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/server"
)

// Start runs a registry with auth mode "token" or "none" and the given admin password,
// and returns its host:port.
func Start(t testing.TB, authMode, adminPassword string) string {
	t.Helper()
	addr, _ := StartConfig(t, authMode, adminPassword)
	return addr
}

// StartConfig is Start that also returns the hub's configuration, for a test that
// looks into its database or blob store beside the running hub.
func StartConfig(t testing.TB, authMode, adminPassword string) (string, config.Config) {
	t.Helper()
	return StartFlags(t, map[string]string{"auth.mode": authMode}, adminPassword)
}

// StartFlags is StartConfig with more configuration flags (`hubctl serve`'s, by
// their config keys, such as "workflows.executor"): the address, data directory and
// shutdown timeout are the test's unless flags names them.
func StartFlags(t testing.TB, flags map[string]string, adminPassword string) (string, config.Config) {
	t.Helper()
	all := map[string]string{
		"addr": "127.0.0.1:0",
		"data": t.TempDir(),
		// Idle connections a client dialled ahead would hold Shutdown back.
		"shutdown_timeout": "200ms",
	}
	for k, v := range flags {
		all[k] = v
	}
	cfg, err := config.Load(config.Sources{
		Flags: all,
		LookupEnv: func(k string) (string, bool) {
			if k == config.EnvAdminPassword {
				return adminPassword, true
			}
			return "", false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := server.Run(ctx, cfg, slog.New(slog.DiscardHandler), pw)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server.Run: %v", err)
		}
	})
	// The admin account line comes first; the address line is the one that counts.
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return addr, cfg
		}
	}
	t.Fatalf("server exited without a listening line: %v", sc.Err())
	return "", cfg
}
