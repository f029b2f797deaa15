package tui

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestPlainGolden(t *testing.T) {
	tests := []struct {
		name   string
		verb   string
		events []progress.Event
		want   progress.Summary
	}{
		{"push", "push", pushEvents(), progress.Summary{
			Images: 1, Moved: 2, Skipped: 1, Mounted: 1, Failed: 1, Manifests: 1, Bytes: 4*mib + 1536, Elapsed: 1500 * time.Millisecond,
		}},
		{"mirror", "mirror", mirrorEvents(), progress.Summary{
			Images: 1, ImagesFailed: 1, Moved: 1, Skipped: 1, Failed: 1, Manifests: 1, Bytes: 12 * mib, Elapsed: 1500 * time.Millisecond,
			FailedImages: []progress.ImageError{{Image: "registry.example/mirror/db:2", Error: "copy blob sha256:6e1f: unexpected EOF"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			opts := Options{Mode: ModePlain, Out: &out, Err: &errOut, Verb: tt.verb, now: fixedClock(1500 * time.Millisecond)}
			got := Render(context.Background(), opts, feed(tt.events), func() { t.Error("plain mode called cancel") })

			if out.Len() != 0 {
				t.Errorf("plain mode wrote to Out: %q", out.String())
			}
			if s := errOut.String(); strings.ContainsRune(s, '\x1b') {
				t.Errorf("plain output has escape codes: %q", s)
			}
			assertSummary(t, got, tt.want)
			golden(t, filepath.Join("testdata", tt.name+".golden"), errOut.Bytes())
		})
	}
}

// TestPlainAuto checks that auto picks plain lines when Err is not a terminal.
func TestPlainAuto(t *testing.T) {
	var errOut bytes.Buffer
	Render(context.Background(), Options{Err: &errOut, Verb: "push"}, feed(pushEvents()), nil)
	if !strings.Contains(errOut.String(), "127.0.0.1:5000/app:1: pushed blob sha256:") {
		t.Errorf("auto without a terminal did not render plain lines:\n%s", errOut.String())
	}
}

func TestQuiet(t *testing.T) {
	var out, errOut bytes.Buffer
	s := Render(context.Background(), Options{Mode: ModeQuiet, Out: &out, Err: &errOut}, feed(pushEvents()), nil)
	if out.Len()+errOut.Len() != 0 {
		t.Errorf("quiet mode wrote %q and %q", out.String(), errOut.String())
	}
	if s.Moved != 2 || s.Images != 1 {
		t.Errorf("quiet mode summary = %+v, want the events tallied", s)
	}
}

func assertSummary(t *testing.T, got, want progress.Summary) {
	t.Helper()
	if FormatSummary("x", got) != FormatSummary("x", want) || len(got.FailedImages) != len(want.FailedImages) {
		t.Errorf("summary = %+v, want %+v", got, want)
		return
	}
	for i := range want.FailedImages {
		if got.FailedImages[i] != want.FailedImages[i] {
			t.Errorf("FailedImages[%d] = %+v, want %+v", i, got.FailedImages[i], want.FailedImages[i])
		}
	}
}

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test ./tui -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
