package tui

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/hubctl/hubctl/internal/progress"
)

// syncBuffer is a bytes.Buffer the bubbletea renderer and the test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// renderWithin runs Render in a goroutine and fails the test rather than hang.
func renderWithin(t *testing.T, d time.Duration, ctx context.Context, opts Options, events <-chan progress.Event, cancel context.CancelFunc) progress.Summary {
	t.Helper()
	done := make(chan progress.Summary, 1)
	go func() { done <- Render(ctx, opts, events, cancel) }()
	select {
	case s := <-done:
		return s
	case <-time.After(d):
		t.Fatalf("Render did not return within %v", d)
		return progress.Summary{}
	}
}

// TestTTYRender runs the bubbletea view on buffers: every finished blob is printed
// once, and the summary line comes last.
func TestTTYRender(t *testing.T) {
	var errOut syncBuffer
	var out bytes.Buffer
	opts := Options{Mode: ModeTTY, Out: &out, Err: &errOut, Width: 100, Verb: "push",
		Input: strings.NewReader(""), now: fixedClock(1500 * time.Millisecond)}
	s := renderWithin(t, 20*time.Second, context.Background(), opts, feed(pushEvents()), func() { t.Error("cancel called") })

	got := strings.ReplaceAll(ansi.Strip(errOut.String()), "\r\n", "\n")
	if out.Len() != 0 {
		t.Errorf("tty mode wrote to Out: %q", out.String())
	}
	for _, want := range []string{
		"✓ " + ShortDigest(digestOf("layer")) + " 4.0 MiB",
		"↗ " + ShortDigest(digestOf("shared")) + " mounted from library/base",
		"✓ 127.0.0.1:5000/app:1 " + digestOf("manifest"),
	} {
		if n := strings.Count(got, want); n != 1 {
			t.Errorf("output has %q %d times, want once:\n%s", want, n, got)
		}
	}
	want := "pushed 2 blobs (4.0 MiB), skipped 1, mounted 1, 1 failed, 1 manifest in 1.5s\n"
	if !strings.HasSuffix(got, want) {
		t.Errorf("output does not end with the summary %q:\n%q", want, got)
	}
	// The printed lines come in the order of the events.
	if i, j := strings.Index(got, "exists"), strings.Index(got, "DIGEST_INVALID"); i < 0 || j < i {
		t.Errorf("printed lines out of order:\n%s", got)
	}
	if s.Moved != 2 || s.Elapsed != 1500*time.Millisecond {
		t.Errorf("summary = %+v", s)
	}
}

// TestTTYCancel presses Ctrl-C in the view: cancel is called once, the view keeps
// draining until the producer closes the channel, and Render returns.
func TestTTYCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	events := make(chan progress.Event)
	go func() {
		defer close(events)
		layer := digestOf("layer")
		events <- progress.Event{Kind: progress.BlobStarted, Image: "a", Digest: layer, Size: mib}
		select {
		case <-ctx.Done():
		case <-time.After(15 * time.Second):
			t.Error("Ctrl-C did not cancel the context")
		}
		events <- progress.Event{Kind: progress.BlobFailed, Image: "a", Digest: layer, Error: "context canceled"}
		events <- progress.Event{Kind: progress.ImageFailed, Image: "a", Error: "context canceled"}
	}()
	var errOut syncBuffer
	opts := Options{Mode: ModeTTY, Err: &errOut, Width: 80, NoColor: true, Verb: "copy", Input: strings.NewReader("\x03")}
	s := renderWithin(t, 20*time.Second, ctx, opts, events, func() { calls.Add(1); cancel() })

	if n := calls.Load(); n != 1 {
		t.Errorf("cancel called %d times, want 1", n)
	}
	got := errOut.String()
	if !strings.Contains(got, "✗ "+ShortDigest(digestOf("layer"))+" context canceled") {
		t.Errorf("events after the cancel were not shown:\n%s", got)
	}
	if s.ImagesFailed != 1 || s.Failed != 1 {
		t.Errorf("summary = %+v", s)
	}
}

// TestTTYAbandon checks that a producer which ignores cancel cannot keep the view
// (and the terminal's raw mode) forever: a second Ctrl-C ends the view while
// Render goes on draining.
func TestTTYAbandon(t *testing.T) {
	events := make(chan progress.Event)
	keys, press := io.Pipe()
	defer press.Close()
	var errOut syncBuffer
	opts := Options{Mode: ModeTTY, Err: &errOut, Width: 80, NoColor: true, Input: keys}
	done := make(chan progress.Summary, 1)
	go func() { done <- Render(context.Background(), opts, events, func() {}) }()

	events <- progress.Event{Kind: progress.BlobStarted, Digest: digestOf("layer"), Size: mib}
	press.Write([]byte{3})
	press.Write([]byte{3})
	deadline := time.After(20 * time.Second)
	for !strings.Contains(errOut.String(), "stopped showing progress") {
		select {
		case <-deadline:
			t.Fatalf("view did not stop after two Ctrl-C:\n%q", errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Still draining: these sends would block forever otherwise.
	events <- progress.Event{Kind: progress.BlobDone, Digest: digestOf("layer"), Size: mib, Bytes: mib}
	close(events)
	select {
	case s := <-done:
		if s.Moved != 1 {
			t.Errorf("summary = %+v, want the late event tallied", s)
		}
	case <-deadline:
		t.Fatal("Render did not return after the channel closed")
	}
}

// TestTTYSignal sends SIGINT, as a terminal does when stdin is not in raw mode: it
// cancels instead of killing the view.
func TestTTYSignal(t *testing.T) {
	self, err := os.FindProcess(os.Getpid())
	if err != nil || runtime.GOOS == "windows" {
		t.Skip("cannot send SIGINT to ourselves here")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan progress.Event)
	var errOut syncBuffer
	opts := Options{Mode: ModeTTY, Err: &errOut, Width: 80, NoColor: true, Input: strings.NewReader("")}
	done := make(chan progress.Summary, 1)
	go func() { done <- Render(ctx, opts, events, cancel) }()

	layer := digestOf("layer")
	events <- progress.Event{Kind: progress.BlobStarted, Digest: layer, Size: mib}
	// Once the first frame is out the view runs, and Render has taken SIGINT over.
	deadline := time.After(20 * time.Second)
	for !strings.Contains(errOut.String(), ShortDigest(layer)) {
		select {
		case <-deadline:
			t.Fatalf("no frame drawn:\n%q", errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := self.Signal(os.Interrupt); err != nil {
		t.Skipf("cannot send SIGINT to ourselves: %v", err)
	}
	select {
	case <-ctx.Done():
	case <-deadline:
		t.Fatal("SIGINT did not cancel")
	}
	events <- progress.Event{Kind: progress.BlobFailed, Digest: layer, Error: "context canceled"}
	close(events)
	select {
	case s := <-done:
		if s.Failed != 1 {
			t.Errorf("summary = %+v", s)
		}
	case <-deadline:
		t.Fatal("Render did not return after the channel closed")
	}
}

// TestInputNotATerminal: a file that is not a terminal (/dev/null, as scripts give)
// is never handed to bubbletea, which cannot poll it; readers that are not files are.
func TestInputNotATerminal(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if in := (Options{Input: devnull}).input(); in != nil {
		t.Errorf("input() = %v for /dev/null, want nil", in)
	}
	r := strings.NewReader("q")
	if in := (Options{Input: r}).input(); in != r {
		t.Errorf("input() = %v for a reader, want the reader", in)
	}
}
