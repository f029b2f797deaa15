package tui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

func TestJSON(t *testing.T) {
	evs := mirrorEvents()
	var out, errOut bytes.Buffer
	opts := Options{Mode: ModeJSON, Out: &out, Err: &errOut, IsTTY: true, Verb: "mirror", now: fixedClock(2 * time.Second)}
	got := Render(context.Background(), opts, feed(evs), nil)

	if errOut.Len() != 0 {
		t.Errorf("json mode wrote to Err: %q", errOut.String())
	}
	var lines [][]byte
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if len(lines) != len(evs)+1 {
		t.Fatalf("got %d lines, want %d events and a summary:\n%s", len(lines), len(evs)+1, out.String())
	}
	for i, line := range lines[:len(evs)] {
		var e progress.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		// Every event is written, blob progress included, and reads back the same.
		if e.Kind != evs[i].Kind || e.Digest != evs[i].Digest || e.Bytes != evs[i].Bytes || !e.Time.Equal(evs[i].Time) {
			t.Errorf("line %d = %+v, want %+v", i+1, e, evs[i])
		}
	}

	var last struct {
		Time  time.Time `json:"time"`
		Event string    `json:"event"`
		progress.Summary
	}
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil {
		t.Fatalf("summary line is not JSON: %v", err)
	}
	if last.Event != "summary" {
		t.Errorf(`last line has event %q, want "summary"`, last.Event)
	}
	// Every line carries its time, the summary too (issue 13).
	if last.Time.IsZero() {
		t.Errorf("summary line has no time: %s", lines[len(lines)-1])
	}
	if last.Images != 1 || last.ImagesFailed != 1 || last.Moved != 1 || last.Elapsed != 2*time.Second ||
		len(last.FailedImages) != 1 || last.FailedImages[0].Image != "registry.example/mirror/db:2" {
		t.Errorf("summary line = %+v", last.Summary)
	}
	assertSummary(t, got, last.Summary)
}

// errWriter fails every write, like a closed pipe.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }

// TestJSONWriteError checks that a failing Out does not stop the draining.
func TestJSONWriteError(t *testing.T) {
	s := Render(context.Background(), Options{Mode: ModeJSON, Out: errWriter{}}, feed(pushEvents()), nil)
	if s.Moved != 2 {
		t.Errorf("summary = %+v, want all events tallied", s)
	}
}
