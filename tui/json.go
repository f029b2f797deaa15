package tui

import (
	"encoding/json"
	"io"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

// jsonWriter writes events as NDJSON for --output json.
type jsonWriter struct {
	enc *json.Encoder
	// failed stops writing after the first error (a closed pipe) while Render keeps
	// draining the channel.
	failed bool
}

func newJSONWriter(w io.Writer) *jsonWriter {
	enc := json.NewEncoder(w)
	// Messages and errors are shown to people; "<" should stay "<".
	enc.SetEscapeHTML(false)
	return &jsonWriter{enc: enc}
}

func (w *jsonWriter) event(e progress.Event) { w.write(e) }

// summary writes the last line, the summary fields beside "event":"summary" so a
// consumer can dispatch every line on the same field.
func (w *jsonWriter) summary(s progress.Summary, at time.Time) {
	w.write(struct {
		Time  time.Time `json:"time"`
		Event string    `json:"event"`
		progress.Summary
	}{at, "summary", s})
}

func (w *jsonWriter) write(v any) {
	if w.failed {
		return
	}
	if err := w.enc.Encode(v); err != nil {
		w.failed = true
	}
}
