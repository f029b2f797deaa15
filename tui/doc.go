// Package tui renders the progress events of long client operations (push, pull,
// copy, mirror) that arrive on a channel of progress.Event.
//
// Render shows one event stream in one of four ways (Mode): a bubbletea view on a
// terminal (a bar per active blob with bytes, speed and ETA, a totals line, and a
// line printed above it for every blob or image that finishes), plain lines for logs
// and CI (--progress=plain), nothing (quiet), or NDJSON on stdout (--output json).
// It honours NO_COLOR and the terminal width, turns Ctrl-C into a cancel of the
// operation while the view keeps draining events, and always leaves the terminal as
// it found it. Every mode returns the same progress.Summary, and FormatSummary words
// it as the one line the commands end with.
package tui
