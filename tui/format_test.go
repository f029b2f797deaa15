package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Mode
	}{
		{"auto", ModeAuto}, {"tty", ModeTTY}, {"plain", ModePlain}, {"quiet", ModeQuiet}, {"json", ModeJSON},
		{" Plain ", ModePlain}, {"TTY", ModeTTY},
	} {
		got, err := ParseMode(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "fancy", "tty,plain"} {
		_, err := ParseMode(in)
		if err == nil || !strings.Contains(err.Error(), "auto, tty, plain, quiet, json") {
			t.Errorf("ParseMode(%q) error = %v, want one listing the modes", in, err)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{1024*1024 - 1, "1.0 MiB"}, {12*mib + 300*1024, "12.3 MiB"}, {5 << 30, "5.0 GiB"}, {3 << 40, "3.0 TiB"},
	} {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0ms"}, {350 * time.Millisecond, "350ms"}, {1234 * time.Millisecond, "1.2s"},
		{123 * time.Second, "2m03s"}, {3720 * time.Second, "1h02m"},
	} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := formatETA(12400 * time.Millisecond); got != "12s" {
		t.Errorf("formatETA(12.4s) = %q, want 12s", got)
	}
}

func TestFormatSummary(t *testing.T) {
	for _, tt := range []struct {
		verb string
		s    progress.Summary
		want string
	}{
		{"copy", progress.Summary{Moved: 3, Bytes: 12*mib + 300*1024, Skipped: 2, Mounted: 1, Manifests: 2, Images: 1, Elapsed: 1234 * time.Millisecond},
			"copied 3 blobs (12.3 MiB), skipped 2, mounted 1, 2 manifests in 1.2s"},
		{"push", progress.Summary{Moved: 1, Bytes: 100, Manifests: 1, Images: 1, Elapsed: 90 * time.Second},
			"pushed 1 blob (100 B), 1 manifest in 1m30s"},
		{"pull", progress.Summary{Skipped: 4, Manifests: 0, Images: 1},
			"pulled 0 blobs (0 B), skipped 4, 0 manifests in 0ms"},
		{"mirror", progress.Summary{Moved: 10, Bytes: 2 << 30, Failed: 1, Manifests: 3, Images: 3, ImagesFailed: 1, Elapsed: 2 * time.Minute},
			"mirrored 10 blobs (2.0 GiB), 1 failed, 3 manifests, 1 of 4 images failed in 2m00s"},
		{"mirror", progress.Summary{Moved: 2, Bytes: 2048, Manifests: 2, Images: 2, Elapsed: time.Second},
			"mirrored 2 blobs (2.0 KiB), 2 manifests, 2 images in 1.0s"},
		{"", progress.Summary{}, "moved 0 blobs (0 B), 0 manifests in 0ms"},
	} {
		if got := FormatSummary(tt.verb, tt.s); got != tt.want {
			t.Errorf("FormatSummary(%q, %+v)\n got %q\nwant %q", tt.verb, tt.s, got, tt.want)
		}
	}
}

func TestPastTense(t *testing.T) {
	for verb, want := range map[string]string{
		"copy": "copied", "push": "pushed", "pull": "pulled", "mirror": "mirrored", "build": "built",
		"save": "saved", "play": "played", "": "moved",
	} {
		if got := pastTense(verb); got != want {
			t.Errorf("pastTense(%q) = %q, want %q", verb, got, want)
		}
	}
}

func TestShortDigest(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef0123": "sha256:0123456789ab",
		"sha256:abc":                  "sha256:abc",
		"0123456789abcdef":            "0123456789ab",
		"":                            "",
	} {
		if got := ShortDigest(in); got != want {
			t.Errorf("ShortDigest(%q) = %q, want %q", in, got, want)
		}
	}
}
