package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

// FormatSummary returns the one-line account of a finished operation, for example
// "copied 3 blobs (12.3 MiB), skipped 2, mounted 1, 2 manifests in 1.2s". verb is the
// command's verb ("copy", "push", "pull", "mirror"); an empty verb reads as "moved".
func FormatSummary(verb string, s progress.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)", pastTense(verb), plural(s.Moved, "blob"), FormatBytes(s.Bytes))
	// Zero counts are left out so the common case stays short; the order of the parts
	// never changes, so scripts and golden files can rely on it.
	if s.Skipped > 0 {
		fmt.Fprintf(&b, ", skipped %d", s.Skipped)
	}
	if s.Mounted > 0 {
		fmt.Fprintf(&b, ", mounted %d", s.Mounted)
	}
	if s.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", s.Failed)
	}
	fmt.Fprintf(&b, ", %s", plural(s.Manifests, "manifest"))
	switch images := s.Images + s.ImagesFailed; {
	case s.ImagesFailed > 0:
		fmt.Fprintf(&b, ", %d of %s failed", s.ImagesFailed, plural(images, "image"))
	case images > 1:
		fmt.Fprintf(&b, ", %s", plural(images, "image"))
	}
	fmt.Fprintf(&b, " in %s", formatDuration(s.Elapsed))
	return b.String()
}

// FormatBytes renders a byte count in binary units with one decimal ("512 B",
// "1.5 KiB", "12.3 MiB"), the form every view and command output uses for sizes.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		// Negative counts never come from a well-behaved producer; show them as they
		// are rather than pretend they are large.
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / unit
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		// Switch unit before rounding would print "1024.0 KiB".
		if v < unit-0.05 {
			return fmt.Sprintf("%.1f %s", v, u)
		}
		v /= unit
	}
	return fmt.Sprintf("%.1f PiB", v)
}

// formatDuration renders an elapsed time or ETA compactly: "350ms", "1.2s", "2m03s",
// "1h02m".
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}

// formatETA renders a time left in whole seconds: tenths would only flicker.
func formatETA(d time.Duration) string {
	if d = d.Round(time.Second); d < time.Minute {
		return fmt.Sprintf("%ds", max(0, int(d/time.Second)))
	}
	return formatDuration(d)
}

// formatRate renders a speed in bytes per second.
func formatRate(bps float64) string {
	return FormatBytes(int64(bps)) + "/s"
}

// ShortDigest keeps the algorithm and the first 12 hex digits, enough to tell the
// blobs of one image apart, as docker does.
func ShortDigest(d string) string {
	const n = 12
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		if len(d) > n {
			return d[:n]
		}
		return d
	}
	if len(hex) > n {
		hex = hex[:n]
	}
	return algo + ":" + hex
}

// pastTense turns a command verb into the word the summary starts with.
func pastTense(verb string) string {
	switch verb = strings.ToLower(strings.TrimSpace(verb)); {
	case verb == "":
		return "moved"
	case verb == "build":
		return "built"
	case strings.HasSuffix(verb, "e"):
		return verb + "d"
	case strings.HasSuffix(verb, "y") && len(verb) > 1 && !strings.ContainsRune("aeiou", rune(verb[len(verb)-2])):
		return verb[:len(verb)-1] + "ied"
	default:
		return verb + "ed"
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
