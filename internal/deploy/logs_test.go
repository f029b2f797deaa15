package deploy

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// TestPrefixWriter: whole lines, each prefixed, never interleaved between writers
// sharing a lock; a partial line waits for its end; an endless line is cut.
func TestPrefixWriter(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	a := &prefixWriter{mu: &mu, out: &out, prefix: "h/a | "}
	b := &prefixWriter{mu: &mu, out: &out, prefix: "h/b | "}
	a.Write([]byte("one\ntw"))
	b.Write([]byte("x\n"))
	a.Write([]byte("o\n"))
	a.Write([]byte("tail"))
	mu.Lock()
	a.flushLocked()
	mu.Unlock()
	if got, want := out.String(), "h/a | one\nh/b | x\nh/a | two\nh/a | tail\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	out.Reset()
	long := strings.Repeat("x", maxLogLine+1)
	a.Write([]byte(long))
	if !strings.HasPrefix(out.String(), "h/a | xxx") || len(a.buf) != 0 {
		t.Fatalf("an endless line is held: wrote %d, held %d", out.Len(), len(a.buf))
	}
}
