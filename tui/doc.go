// Package tui will render the progress events of long client operations (push, pull,
// copy, mirror, build, workflow runs).
//
// Planned contents (a later issue; nothing is implemented yet): one event stream and
// three views of it: a bubbletea view on a terminal (a bar per blob, totals, speed,
// ETA), plain lines when output is not a terminal (--progress=plain), and NDJSON with
// --output json. It will honour NO_COLOR, --quiet and the terminal width, and restore
// the screen on Ctrl-C.
package tui
