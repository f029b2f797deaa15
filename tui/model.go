package tui

import (
	"math"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/hubctl/hubctl/internal/progress"
)

// The messages the tty model receives besides bubbletea's own.
type (
	// eventMsg carries one progress event from the feeding goroutine.
	eventMsg struct{ progress.Event }
	// closedMsg says the event channel is closed: flush and quit.
	closedMsg struct{}
	// ctxDoneMsg says the operation's context ended without our Ctrl-C, so the view
	// should show that it is winding down.
	ctxDoneMsg struct{}
	// interruptMsg is a SIGINT or SIGTERM; it acts like Ctrl-C instead of killing the
	// view while transfers still report.
	interruptMsg struct{}
	// printedMsg says the last batch of lines above the view has been queued.
	printedMsg struct{}
	// tickMsg refreshes speeds so a stalled transfer shows its rate falling.
	tickMsg time.Time
)

const tickEvery = 500 * time.Millisecond

// blob is one blob the view has seen, keyed by image and digest because a mirror may
// move the same blob for two images at once.
type blob struct {
	image, digest string
	size, bytes   int64
	finished      bool
	rate          rate
}

type blobKey struct{ image, digest string }

// model is the bubbletea model of the tty view: the active blobs with bars, a
// totals line, and everything finished printed once above it.
type model struct {
	width, height int
	st            styles
	cancel        func()

	blobs  map[blobKey]*blob
	active []*blob // in the order they started, so lines do not jump around
	// images are in flight between image-started and image-done/failed; seen and
	// ended count each image once even if a producer reports it twice.
	images, seen, ended map[string]bool

	blobsSeen, blobsFinished int
	bytesDone, bytesTotal    int64
	// sent only grows (a blob restarted by a retry does not take bytes back), so the
	// overall speed never turns negative.
	sent    int64
	overall rate

	errs shownErrors // failures already spelt out, per image

	cancelled bool // we called cancel (Ctrl-C, q, a signal)
	stopping  bool // cancelled by us or by the context: show "cancelling…"
	abandoned bool // second Ctrl-C: stop drawing even though the channel is open
	closed    bool // the event channel is closed
	quitting  bool

	// pending lines wait for the previous batch to reach the renderer: bubbletea runs
	// each command in its own goroutine, so only one batch may be in flight for the
	// lines to keep their order and none to be lost at quit.
	pending  []string
	printing bool
	inflight string // the batch being printed, kept for tests to read
}

func newModel(width int, st styles, cancel func()) *model {
	return &model{
		width:  width,
		st:     st,
		cancel: cancel,
		blobs:  map[blobKey]*blob{},
		images: map[string]bool{},
		seen:   map[string]bool{},
		ended:  map[string]bool{},
	}
}

func tick() tea.Cmd {
	return tea.Tick(tickEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts the speed refresh.
func (m *model) Init() tea.Cmd { return tick() }

// Update applies one message and returns what to print and whether to quit.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case eventMsg:
		m.apply(msg.Event)
	case closedMsg:
		m.closed = true
	case ctxDoneMsg:
		m.stopping = true
	case interruptMsg:
		m.interrupt()
	case tea.KeyMsg:
		switch msg.String() {
		case "ctrl+c", "q":
			m.interrupt()
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case printedMsg:
		m.printing = false
	case tickMsg:
		m.refresh(time.Time(msg))
		if !m.quitting {
			cmd = tick()
		}
	}
	return m, tea.Batch(cmd, m.next())
}

// interrupt cancels the operation once; a second request stops the view so a
// producer that never closes the channel cannot hold the terminal in raw mode.
func (m *model) interrupt() {
	if m.closed {
		return
	}
	if m.cancelled {
		m.abandoned = true
		return
	}
	m.cancelled, m.stopping = true, true
	m.cancel()
}

// next sends pending lines to be printed, one batch at a time, and quits once the
// view is finished and everything is printed.
func (m *model) next() tea.Cmd {
	if m.printing || m.quitting {
		return nil
	}
	if len(m.pending) > 0 {
		lines := strings.Join(m.pending, "\n")
		m.pending, m.printing, m.inflight = nil, true, lines
		return tea.Sequence(tea.Println(lines), func() tea.Msg { return printedMsg{} })
	}
	if m.closed || m.abandoned {
		m.quitting = true
		return tea.Quit
	}
	return nil
}

// apply folds one event into the state and queues the line it prints, if any.
func (m *model) apply(e progress.Event) {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	if e.Image != "" {
		m.seen[e.Image] = true
	}
	e.Error = m.errs.text(e)
	switch e.Kind {
	case progress.ImageStarted:
		if !m.ended[e.Image] {
			m.images[e.Image] = true
		}
		m.print(m.imageLine("→", m.st.bold, e.Image, fromSource(e.Source)))
	case progress.ImageDone, progress.ImageFailed:
		delete(m.images, e.Image)
		m.ended[e.Image] = true
		if e.Kind == progress.ImageDone {
			m.print(m.imageLine("✓", m.st.ok, e.Image, e.Digest))
		} else {
			m.print(m.imageLine("✗", m.st.fail, e.Image, m.st.fail.Render(e.Error)))
		}
	case progress.BlobStarted, progress.BlobProgress:
		b := m.blob(e)
		m.sized(b, e.Size)
		if e.Kind == progress.BlobProgress {
			m.progress(b, e.Bytes, t)
		}
	case progress.BlobDone:
		b := m.blob(e)
		m.sized(b, e.Size)
		m.progress(b, e.Bytes, t)
		m.finish(b)
		m.print(m.blobLine("✓", m.st.ok, e.Image, e.Digest, FormatBytes(e.Bytes)))
	case progress.BlobExists:
		m.finish(m.blob(e))
		m.print(m.blobLine("=", m.st.faint, e.Image, e.Digest, m.st.faint.Render("exists")))
	case progress.BlobMounted:
		m.finish(m.blob(e))
		m.print(m.blobLine("↗", m.st.mount, e.Image, e.Digest, "mounted from "+e.From))
	case progress.BlobFailed:
		m.finish(m.blob(e))
		m.print(m.blobLine("✗", m.st.fail, e.Image, e.Digest, m.st.fail.Render(e.Error)))
	case progress.Retry:
		msg := "retry " + strconv.Itoa(e.Attempt) + " in " + formatDuration(e.Wait) + ": " + e.Error
		if e.Digest != "" {
			m.print(m.blobLine("↻", m.st.warn, e.Image, e.Digest, m.st.warn.Render(msg)))
		} else {
			m.print(m.imageLine("↻", m.st.warn, e.Image, m.st.warn.Render(msg)))
		}
	case progress.ManifestPushed:
		s := "manifest " + ShortDigest(e.Digest)
		if e.Tag != "" {
			s += " (tag " + e.Tag + ")"
		}
		m.print(m.prefixed("✓", m.st.ok, e.Image, s))
	case progress.ManifestExists:
		m.print(m.prefixed("=", m.st.faint, e.Image, m.st.faint.Render("manifest "+ShortDigest(e.Digest)+" exists")))
	case progress.Info:
		m.print(m.prefixed("•", m.st.faint, e.Image, e.Message))
	}
}

// blob returns the state of e's blob, counting it the first time it is seen.
func (m *model) blob(e progress.Event) *blob {
	k := blobKey{e.Image, e.Digest}
	if b, ok := m.blobs[k]; ok {
		return b
	}
	b := &blob{image: e.Image, digest: e.Digest}
	m.blobs[k] = b
	m.blobsSeen++
	// Only blobs that move bytes get a bar; exists and mounted finish at once.
	switch e.Kind {
	case progress.BlobStarted, progress.BlobProgress:
		m.active = append(m.active, b)
	}
	return b
}

// sized learns b's full length from the first event that carries it.
func (m *model) sized(b *blob, size int64) {
	if size > 0 && b.size == 0 {
		b.size = size
		m.bytesTotal += size
	}
}

// progress records that b has moved n bytes in total by time t.
func (m *model) progress(b *blob, n int64, t time.Time) {
	if n < b.bytes {
		// A retry restarted the upload: the bar goes back, the speed starts over.
		b.rate = rate{}
	} else {
		m.sent += n - b.bytes
	}
	m.bytesDone += n - b.bytes
	b.bytes = n
	b.rate.observe(t, n)
	m.overall.observe(t, m.sent)
}

func (m *model) finish(b *blob) {
	if b.finished {
		return
	}
	b.finished = true
	m.blobsFinished++
	for i, a := range m.active {
		if a == b {
			m.active = append(m.active[:i], m.active[i+1:]...)
			break
		}
	}
}

// refresh lets the speeds of transfers that have gone quiet fall towards zero.
func (m *model) refresh(t time.Time) {
	for _, b := range m.active {
		if t.Sub(b.rate.last) >= time.Second {
			b.rate.observe(t, b.bytes)
		}
	}
	if t.Sub(m.overall.last) >= time.Second && len(m.active) > 0 {
		m.overall.observe(t, m.sent)
	}
}

// print queues a line for above the view. Such lines are not cut to the width: they
// stay in the scrollback, and an error message is worth its wrapped lines.
func (m *model) print(line string) { m.pending = append(m.pending, line) }

// rate is a speed in bytes per second, smoothed with an exponential moving average
// weighted by time, so irregular sampling neither jitters nor biases it.
type rate struct {
	// first and firstBytes are the first sample: until rateWindow has passed since
	// then, the speed is the plain average since it, so a burst in the first moments
	// (a socket buffer filling, a read ahead of the rate limiter) does not stand for
	// seconds in a slowly decaying average.
	first      time.Time
	firstBytes int64
	last       time.Time
	lastBytes  int64
	bps        float64
	known      bool
}

// rateWindow is how far back the smoothed speed mostly looks.
const rateWindow = 3 * time.Second

// observe records that the counter stood at n at time t.
func (r *rate) observe(t time.Time, n int64) {
	if r.last.IsZero() {
		r.first, r.firstBytes = t, n
		r.last, r.lastBytes = t, n
		return
	}
	dt := t.Sub(r.last)
	// Samples closer together than this say more about scheduling than about the
	// network; let the bytes accumulate into the next one.
	if dt < 50*time.Millisecond {
		return
	}
	inst := float64(n-r.lastBytes) / dt.Seconds()
	if since := t.Sub(r.first); since < rateWindow {
		r.bps, r.known = float64(n-r.firstBytes)/since.Seconds(), true
	} else {
		a := 1 - math.Exp(-dt.Seconds()/rateWindow.Seconds())
		r.bps += a * (inst - r.bps)
	}
	r.last, r.lastBytes = t, n
}
