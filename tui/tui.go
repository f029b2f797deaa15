package tui

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/hubctl/hubctl/internal/progress"
)

// Mode selects how progress is shown, the value of --progress (and json for
// --output json).
type Mode string

// The modes, named as BuildKit's --progress names them.
const (
	// ModeAuto is tty when Err is a terminal and plain otherwise.
	ModeAuto Mode = "auto"
	// ModeTTY is the live view: a bar per active blob and a totals line.
	ModeTTY Mode = "tty"
	// ModePlain is one line per event that matters, for logs and CI.
	ModePlain Mode = "plain"
	// ModeQuiet shows nothing; the summary is still returned.
	ModeQuiet Mode = "quiet"
	// ModeJSON writes every event and then the summary as NDJSON on Out.
	ModeJSON Mode = "json"
)

var modes = []Mode{ModeAuto, ModeTTY, ModePlain, ModeQuiet, ModeJSON}

// ParseMode reads a --progress value, ignoring case and surrounding space.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	for _, v := range modes {
		if m == v {
			return m, nil
		}
	}
	names := make([]string, len(modes))
	for i, v := range modes {
		names[i] = string(v)
	}
	return "", fmt.Errorf("invalid progress mode %q: want one of %s", s, strings.Join(names, ", "))
}

// Options configure Render. The zero Mode means auto.
type Options struct {
	Mode Mode
	// Out is standard output; only ModeJSON writes to it (NDJSON, one event a line).
	Out io.Writer
	// Err is standard error, where the terminal view and plain lines go.
	Err io.Writer
	// IsTTY reports whether Err is a terminal; ModeAuto picks tty when it is.
	IsTTY bool
	// NoColor drops colour escapes (NO_COLOR, TERM=dumb); tty mode still draws bars.
	NoColor bool
	// Width is the terminal width in cells; 0 asks Err when it is an *os.File, else 80.
	Width int
	// Verb is the command's verb ("copy", "push", "pull", "mirror") for the summary.
	Verb string
	// Input is the keyboard in tty mode; nil means os.Stdin when it is a terminal.
	Input io.Reader

	// now is the clock for the elapsed time of the summary, so golden files are
	// stable; nil means time.Now.
	now func() time.Time
}

// Render shows events until the channel is closed and returns the summary a
// progress.Tally makes of them; tty and plain modes end with its line on Err. It
// always drains the channel so the producer never blocks. In tty mode Ctrl-C, q or
// SIGINT calls cancel once, the view says it is cancelling (as it does when ctx
// ends) and keeps going until the producer closes the channel; the terminal is
// restored before Render returns. An unknown Mode renders as plain.
func Render(ctx context.Context, opts Options, events <-chan progress.Event, cancel context.CancelFunc) progress.Summary {
	now := opts.now
	if now == nil {
		now = time.Now
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Err == nil {
		opts.Err = io.Discard
	}
	if cancel == nil {
		cancel = func() {}
	}
	start := now()
	tally := progress.NewTally()

	mode := opts.Mode
	if mode == "" || mode == ModeAuto {
		mode = ModePlain
		if opts.IsTTY {
			mode = ModeTTY
		}
	}
	switch mode {
	case ModeQuiet:
		for e := range events {
			tally.Add(e)
		}
	case ModeJSON:
		w := newJSONWriter(opts.Out)
		for e := range events {
			tally.Add(e)
			w.event(e)
		}
		s := summarize(tally, start, now)
		w.summary(s, now())
		return s
	case ModeTTY:
		renderTTY(ctx, opts, events, tally, cancel)
	default:
		renderPlain(opts.Err, opts.Verb, events, tally)
	}
	s := summarize(tally, start, now)
	if mode != ModeQuiet {
		fmt.Fprintln(opts.Err, FormatSummary(opts.Verb, s))
	}
	return s
}

// summarize takes the counts from the tally but the elapsed time from Render's own
// clock, which tests replace.
func summarize(t *progress.Tally, start time.Time, now func() time.Time) progress.Summary {
	s := t.Summary()
	s.Elapsed = now().Sub(start)
	return s
}

// width is the number of cells a tty line may use.
func (o Options) width() int {
	if o.Width > 0 {
		return o.Width
	}
	if f, ok := o.Err.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 80
}

// input is where tty mode reads keys: Input (os.Stdin when nil) when it is a
// terminal or not a file at all (tests). A file that is not a terminal (/dev/null, a
// pipe, a regular file) is left alone: it may be data piped to the command, reading
// it would steal that data, and bubbletea cannot poll /dev/null or a regular file
// for keys. Without input, Ctrl-C arrives as SIGINT, which the view handles too.
func (o Options) input() io.Reader {
	in := o.Input
	if in == nil {
		in = os.Stdin
	}
	if f, ok := in.(interface{ Fd() uintptr }); ok && !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return in
}
