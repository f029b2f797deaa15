package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestSecurityStalledUploadsDoNotBlockOthers is issue 12's item 3 end to end: alice
// opens 300 blob uploads that each send one byte and stall (before, they took all 256
// shared upload slots and every other push failed with 429). She holds at most her own
// share, bob pushes meanwhile, and the stalled uploads are cut once the slack of the
// minimum rate is spent, which frees alice's share again.
func TestSecurityStalledUploadsDoNotBlockOthers(t *testing.T) {
	s := startServerEnv(t, t.TempDir(), []string{"HUBCTL_LIMITS_SLOW_TIMEOUT=20s"})
	createUser(t, s, "alice", "alice-password-1")
	createUser(t, s, "bob", "bob-password-1")
	aliceTok := mustToken(t, s, "alice", "alice-password-1", "repository:alice/app:pull,push")
	bobTok := mustToken(t, s, "bob", "bob-password-1", "repository:bob/app:pull,push")

	const attackers = 300
	conns := make([]net.Conn, attackers)
	for i := range conns {
		c, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST /v2/alice/app/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 1048576\r\n\r\nx",
			sha256Digest([]byte("never sent")), s.Addr, aliceTok)
		conns[i] = c
	}
	// status reads a response within wait: its status, or 0 if none came.
	status := func(c net.Conn, wait time.Duration) int {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := make([]int, attackers)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { codes[i] = status(c, 5*time.Second) })
	}
	wg.Wait()
	var held []net.Conn
	for i, code := range codes {
		switch code {
		case 0:
			held = append(held, conns[i])
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a stalled upload was answered %d", code)
		}
	}
	t.Logf("alice's %d stalled uploads: %d held, %d refused with 429", attackers, len(held), attackers-len(held))

	// bob pushes while alice's uploads stall.
	pushImageAs(t, s, bobTok, "bob/app", "v1", newImage(t, "amd64"))
	if len(held) > 32 {
		t.Fatalf("alice holds %d uploads, more than her 32", len(held))
	}

	// The stalled uploads are cut (the hang guard is generous: the slack is 20 s).
	start := time.Now()
	for _, c := range held {
		wg.Go(func() {
			if code := status(c, 2*time.Minute); code != http.StatusBadRequest {
				// A cut body is answered 400; a closed connection reads as 0 too.
				if code != 0 {
					t.Errorf("a cut upload was answered %d, want 400", code)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("the %d held uploads were cut %v after the push", len(held), time.Since(start).Round(100*time.Millisecond))
	if time.Since(start) > 2*time.Minute {
		t.Fatal("stalled uploads were not cut")
	}
	// alice's share is hers again.
	pushImageAs(t, s, aliceTok, "alice/app", "v1", newImage(t, "arm64"))
}
