package tui

import (
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/hubctl/hubctl/internal/progress"
)

// harness drives a tty model without colour the way bubbletea would: each batch
// of lines to print is acknowledged at once and recorded in printed.
type harness struct {
	*model
	cancels int
	printed []string
}

func testModel(t *testing.T, width int) *harness {
	t.Helper()
	h := &harness{}
	h.model = newModel(width, newStyles(io.Discard, true), func() { h.cancels++ })
	return h
}

func (h *harness) send(msgs ...tea.Msg) {
	for _, msg := range msgs {
		h.Update(msg)
		if h.printing {
			h.printed = append(h.printed, strings.Split(h.inflight, "\n")...)
			h.Update(printedMsg{})
		}
	}
}

func ev(e progress.Event) eventMsg { return eventMsg{e} }

func TestModelBars(t *testing.T) {
	m := testModel(t, 120)
	layer, config := digestOf("layer"), digestOf("config")
	m.send(
		ev(progress.Event{Kind: progress.BlobStarted, Digest: layer, Size: 4 * mib, Time: t0}),
		ev(progress.Event{Kind: progress.BlobStarted, Digest: config, Size: 2048, Time: t0}),
		ev(progress.Event{Kind: progress.BlobProgress, Digest: layer, Size: 4 * mib, Bytes: 0, Time: t0}),
		ev(progress.Event{Kind: progress.BlobProgress, Digest: layer, Size: 4 * mib, Bytes: 1 * mib, Time: t0.Add(time.Second)}),
	)
	v := m.View()
	for _, want := range []string{
		ShortDigest(layer), ShortDigest(config), "█", "░",
		"1.0 MiB / 4.0 MiB", "1.0 MiB/s", "ETA 3s",
		"total 0/2 blobs  1.0 MiB / 4.0 MiB  1.0 MiB/s",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	// A quarter done: a quarter of the bar is full.
	for _, line := range strings.Split(v, "\n") {
		if strings.HasPrefix(line, ShortDigest(layer)) {
			full, empty := strings.Count(line, "█"), strings.Count(line, "░")
			if full == 0 || empty != 3*full {
				t.Errorf("bar of a quarter-done blob has %d full and %d empty cells: %q", full, empty, line)
			}
		}
	}
	if strings.ContainsRune(v, '\x1b') {
		t.Errorf("view without colour has escapes: %q", v)
	}

	m.send(ev(progress.Event{Kind: progress.BlobDone, Digest: layer, Size: 4 * mib, Bytes: 4 * mib, Time: t0.Add(2 * time.Second)}))
	v = m.View()
	if strings.Contains(v, ShortDigest(layer)) {
		t.Errorf("finished blob still has a bar:\n%s", v)
	}
	if !strings.Contains(v, "total 1/2 blobs  4.0 MiB / 4.0 MiB") {
		t.Errorf("totals not updated:\n%s", v)
	}
	if want := "✓ " + ShortDigest(layer) + " 4.0 MiB"; !contains(m.printed, want) {
		t.Errorf("pending lines %q lack %q", m.printed, want)
	}
}

func TestModelPrintedLines(t *testing.T) {
	m := testModel(t, 120)
	for _, e := range pushEvents() {
		m.send(ev(e))
	}
	d := ShortDigest
	for _, want := range []string{
		"→ 127.0.0.1:5000/app:1 from oci-layout:./app",
		"= " + d(digestOf("base")) + " exists",
		"↗ " + d(digestOf("shared")) + " mounted from library/base",
		"✓ " + d(digestOf("config")) + " 1.5 KiB",
		"↻ " + d(digestOf("layer")) + " retry 1 in 1.0s: PATCH upload: 503 Service Unavailable",
		"✗ " + d(digestOf("sig")) + " PUT upload: 400 Bad Request: DIGEST_INVALID",
		"• referrers are copied between registries only; skipped",
		"✓ manifest " + d(digestOf("manifest")) + " (tag 1)",
		"✓ 127.0.0.1:5000/app:1 " + digestOf("manifest"),
	} {
		if !contains(m.printed, want) {
			t.Errorf("printed lines lack %q; have:\n%s", want, strings.Join(m.printed, "\n"))
		}
	}
	if v := m.View(); !strings.Contains(v, "total 5/5 blobs") || strings.Contains(v, "█") {
		t.Errorf("view after the image is done:\n%s", v)
	}
}

// TestModelImages checks that blob lines name their image only while more than one
// image is in flight.
func TestModelImages(t *testing.T) {
	m := testModel(t, 120)
	evs := mirrorEvents()
	m.send(ev(evs[0]), ev(evs[1]), ev(evs[2]), ev(evs[3]))
	v := m.View()
	for _, want := range []string{"registry.example/mirror/app:1 " + ShortDigest(digestOf("app-layer")), "registry.example/mirror/db:2  " + ShortDigest(digestOf("db-layer")), "0/2 images"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	for _, e := range evs[4:] {
		m.send(ev(e))
	}
	if !contains(m.printed, "✗ registry.example/mirror/db:2 copy blob sha256:6e1f: unexpected EOF") {
		t.Errorf("printed lines lack the failed image:\n%s", strings.Join(m.printed, "\n"))
	}

	m = testModel(t, 120)
	m.send(ev(evs[0]), ev(evs[2]))
	if v := m.View(); strings.Contains(v, "mirror/app") {
		t.Errorf("one image in flight, but blob lines name it:\n%s", v)
	}
}

func TestModelWidth(t *testing.T) {
	for _, width := range []int{30, 60, 80, 200} {
		m := testModel(t, width)
		evs := mirrorEvents()
		m.send(ev(evs[0]), ev(evs[1]), ev(evs[2]), ev(evs[3]), ev(evs[4]), ev(evs[5]))
		m.send(ctxDoneMsg{})
		for _, line := range strings.Split(m.View(), "\n") {
			if w := ansi.StringWidth(line); w > width {
				t.Errorf("width %d: line is %d cells: %q", width, w, line)
			}
		}
	}
	// The terminal's size wins over the initial width.
	m := testModel(t, 200)
	m.send(tea.WindowSizeMsg{Width: 50, Height: 10}, ev(pushEvents()[3]))
	for _, line := range strings.Split(m.View(), "\n") {
		if w := ansi.StringWidth(line); w > 50 {
			t.Errorf("after resize: line is %d cells: %q", w, line)
		}
	}
}

// TestModelHeight checks that a short terminal shows a count instead of every bar.
func TestModelHeight(t *testing.T) {
	m := testModel(t, 100)
	m.send(tea.WindowSizeMsg{Width: 100, Height: 6})
	for i := range 10 {
		m.send(ev(progress.Event{Kind: progress.BlobStarted, Digest: digestOf(string(rune('a' + i))), Size: mib}))
	}
	v := m.View()
	if lines := strings.Count(v, "\n") + 1; lines > 6 {
		t.Errorf("view has %d lines on a 6-line terminal:\n%s", lines, v)
	}
	if !strings.Contains(v, "… and 8 more") {
		t.Errorf("view does not count the hidden blobs:\n%s", v)
	}
}

func TestModelCancel(t *testing.T) {
	m := testModel(t, 100)
	m.send(ev(pushEvents()[3]))
	m.send(tea.KeyMsg{Type: tea.KeyCtrlC})
	if m.cancels != 1 {
		t.Fatalf("Ctrl-C called cancel %d times, want 1", m.cancels)
	}
	if v := m.View(); !strings.Contains(v, "cancelling…") || !strings.Contains(v, ShortDigest(digestOf("layer"))) {
		t.Errorf("view after Ctrl-C should say cancelling and keep the bars:\n%s", v)
	}
	if m.quitting {
		t.Fatal("the view quit on Ctrl-C; it must keep draining until the channel closes")
	}

	// Events keep being shown while the producer winds down.
	m.send(ev(progress.Event{Kind: progress.BlobFailed, Digest: digestOf("layer"), Error: "context canceled"}))
	if !contains(m.printed, "✗ "+ShortDigest(digestOf("layer"))+" context canceled") {
		t.Errorf("failure after cancel not printed: %q", m.printed)
	}

	// A second Ctrl-C gives up the view but does not cancel again.
	m.send(tea.KeyMsg{Type: tea.KeyCtrlC}, printedMsg{})
	if m.cancels != 1 || !m.abandoned || !m.quitting {
		t.Errorf("second Ctrl-C: cancel calls %d, abandoned %v, quitting %v; want 1, true, true", m.cancels, m.abandoned, m.quitting)
	}
}

func TestModelKeys(t *testing.T) {
	m := testModel(t, 100)
	m.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'x'}})
	if m.cancels != 0 {
		t.Fatal("a key other than q or Ctrl-C cancelled")
	}
	m.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'q'}})
	if m.cancels != 1 {
		t.Fatalf("q called cancel %d times, want 1", m.cancels)
	}

	// A signal cancels like Ctrl-C instead of ending the view.
	m = testModel(t, 100)
	m.send(interruptMsg{})
	if m.cancels != 1 || m.quitting {
		t.Errorf("SIGINT: cancel calls %d, quitting %v; want 1, false", m.cancels, m.quitting)
	}
}

// TestModelContextDone checks that a context cancelled elsewhere shows up in the
// view without a second cancel.
func TestModelContextDone(t *testing.T) {
	m := testModel(t, 100)
	m.send(ctxDoneMsg{})
	if v := m.View(); !strings.Contains(v, "cancelling…") || strings.Contains(v, "Ctrl-C again") {
		t.Errorf("view after the context ended:\n%s", v)
	}
	if m.cancels != 0 {
		t.Errorf("cancel called %d times", m.cancels)
	}
}

// TestModelQuit checks that the model prints its lines one batch at a time and
// quits only after the last batch, with an empty view.
func TestModelQuit(t *testing.T) {
	m := newModel(100, newStyles(io.Discard, true), func() {})
	update := func(msgs ...tea.Msg) {
		for _, msg := range msgs {
			m.Update(msg)
		}
	}
	update(ev(pushEvents()[0]))
	if !m.printing || len(m.pending) != 0 {
		t.Fatalf("first line not sent: printing %v, pending %q", m.printing, m.pending)
	}
	update(ev(pushEvents()[1]), closedMsg{})
	if m.quitting || len(m.pending) != 1 {
		t.Fatalf("quit before the lines were printed: quitting %v, pending %q", m.quitting, m.pending)
	}
	update(printedMsg{})
	if m.quitting || !m.printing {
		t.Fatalf("second batch not sent: quitting %v, printing %v", m.quitting, m.printing)
	}
	update(printedMsg{})
	if !m.quitting {
		t.Fatal("did not quit after the last batch")
	}
	if v := m.View(); v != "" {
		t.Errorf("view after quit = %q, want empty", v)
	}
}

// TestRateStalls checks that a transfer that stops reporting shows its speed fall.
func TestRateStalls(t *testing.T) {
	m := testModel(t, 100)
	d := digestOf("layer")
	m.send(
		ev(progress.Event{Kind: progress.BlobProgress, Digest: d, Size: 10 * mib, Bytes: 0, Time: t0}),
		ev(progress.Event{Kind: progress.BlobProgress, Digest: d, Size: 10 * mib, Bytes: 2 * mib, Time: t0.Add(time.Second)}),
	)
	before := m.active[0].rate.bps
	m.send(tickMsg(t0.Add(5 * time.Second)))
	if after := m.active[0].rate.bps; after >= before/2 || after < 0 {
		t.Errorf("speed after 4 s without progress = %.0f, want well below %.0f", after, before)
	}
}

// TestRateIgnoresStartBurst: a burst in the first moments (a socket buffer filling)
// must not stand for the speed: after it the view shows about the steady rate, within
// 20%, not a slowly decaying average of the burst (issue 13).
func TestRateIgnoresStartBurst(t *testing.T) {
	m := testModel(t, 100)
	d := digestOf("layer")
	const steady = 4 * mib // bytes per second after the burst
	var evs []tea.Msg
	evs = append(evs, ev(progress.Event{Kind: progress.BlobProgress, Digest: d, Size: 40 * mib, Bytes: 64 << 10, Time: t0}))
	// 4 MiB in the first 100 ms, then 4 MiB/s in steps of 100 ms.
	n := int64(4 * mib)
	at := t0.Add(100 * time.Millisecond)
	evs = append(evs, ev(progress.Event{Kind: progress.BlobProgress, Digest: d, Size: 40 * mib, Bytes: n, Time: at}))
	for i := 0; i < 40; i++ {
		n += steady / 10
		at = at.Add(100 * time.Millisecond)
		evs = append(evs, ev(progress.Event{Kind: progress.BlobProgress, Digest: d, Size: 40 * mib, Bytes: n, Time: at}))
		m.send(evs...)
		evs = nil
		elapsed := at.Sub(t0).Seconds()
		real := float64(n) / elapsed
		if elapsed >= 1 {
			if got := m.active[0].rate.bps; got < 0.8*real || got > 1.2*real {
				t.Fatalf("after %.1fs the blob's speed is %.2f MiB/s, %.2f MiB/s arrived on average", elapsed, got/mib, real/mib)
			}
		}
	}
}

func TestColour(t *testing.T) {
	m := newModel(100, newStyles(io.Discard, false), func() {})
	m.Update(ev(pushEvents()[3]))
	if v := m.View(); !strings.Contains(v, "\x1b[") {
		t.Errorf("colour view has no escapes: %q", v)
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		for _, part := range strings.Split(l, "\n") {
			if part == want {
				return true
			}
		}
	}
	return false
}
