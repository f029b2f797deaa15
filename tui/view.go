package tui

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// styles are the colours of the tty view. They come from a renderer of their own
// with a fixed profile: lipgloss would otherwise probe os.Stdout (not our stream)
// and might query the terminal while bubbletea reads keys from it.
type styles struct {
	ok, mount, fail, warn, faint, bold, barFull, barEmpty lipgloss.Style
}

func newStyles(w io.Writer, noColor bool) styles {
	r := lipgloss.NewRenderer(w)
	// The 16 basic colours look right on every terminal and theme we might meet.
	r.SetColorProfile(termenv.ANSI)
	if noColor {
		r.SetColorProfile(termenv.Ascii)
	}
	c := func(n string) lipgloss.Style { return r.NewStyle().Foreground(lipgloss.Color(n)) }
	return styles{
		ok:       c("2"),
		mount:    c("6"),
		fail:     c("1"),
		warn:     c("3"),
		faint:    r.NewStyle().Faint(true),
		bold:     r.NewStyle().Bold(true),
		barFull:  c("6"),
		barEmpty: c("8"),
	}
}

// Column widths of a blob line, wide enough for the largest values they hold
// ("1023.9 MiB / 1023.9 MiB", "1023.9 MiB/s", "ETA 59m59s") so columns line up.
const (
	sizeCol  = 23
	speedCol = 12
	etaCol   = 10
	imageMax = 30
	barMin   = 10
	barMax   = 40
	// linesMax caps the blob lines when the terminal height is unknown.
	linesMax = 20
)

// View draws the active blobs, a cancelling note and the totals line. It is empty
// once the view quits, so only the printed lines and the summary stay on screen.
func (m *model) View() string {
	if m.quitting {
		return ""
	}
	var lines []string
	limit := linesMax
	if m.height > 0 {
		// Keep the totals and cancelling lines and one spare row on screen; the
		// renderer drops lines from the top when the view is taller.
		limit = max(1, m.height-3)
	}
	shown := m.active
	more := 0
	if len(shown) > limit {
		shown, more = shown[:limit-1], len(shown)-(limit-1)
	}
	imgW := 0
	if m.multi() {
		// The image may take a quarter of a narrow terminal; its end tells them apart.
		limit := min(imageMax, max(8, m.width/4))
		for _, b := range shown {
			imgW = max(imgW, min(ansi.StringWidth(b.image), limit))
		}
	}
	for _, b := range shown {
		lines = append(lines, m.fit(m.barLine(b, imgW)))
	}
	if more > 0 {
		lines = append(lines, m.st.faint.Render(fmt.Sprintf("… and %d more", more)))
	}
	if m.stopping {
		note := "cancelling… waiting for transfers to stop"
		if m.cancelled {
			note += " (Ctrl-C again to stop showing progress)"
		}
		lines = append(lines, m.fit(m.st.warn.Render(note)))
	}
	lines = append(lines, m.fit(m.totalsLine()))
	return strings.Join(lines, "\n")
}

// barLine is one active blob: [image] digest, bar, bytes, speed, ETA. On a narrow
// terminal the ETA goes first, then the speed, then the bar; the columns have fixed
// widths so that every line drops the same ones and they stay aligned.
func (m *model) barLine(b *blob, imgW int) string {
	left := ShortDigest(b.digest)
	if imgW > 0 {
		left = padRight(clipLeft(b.image, imgW), imgW) + " " + left
	}
	sizes := FormatBytes(b.bytes)
	if b.size > 0 {
		sizes += " / " + FormatBytes(b.size)
	}
	var speed, eta string
	if b.rate.known {
		speed = formatRate(b.rate.bps)
		if b.size > 0 && b.rate.bps >= 1 {
			remain := float64(b.size-b.bytes) / b.rate.bps
			eta = "ETA " + formatETA(time.Duration(remain*float64(time.Second)))
		}
	}
	cols := []string{padLeft(sizes, sizeCol), padLeft(speed, speedCol), padRight(eta, etaCol)}
	frac := 0.0
	if b.size > 0 {
		frac = float64(b.bytes) / float64(b.size)
	}
	for n := len(cols); n > 0; n-- {
		// Measured with its padding, so lines with and without a speed agree.
		right := strings.Join(cols[:n], "  ")
		barW := m.width - ansi.StringWidth(left) - ansi.StringWidth(right) - 2
		if barW >= barMin {
			return left + " " + m.bar(frac, min(barW, barMax)) + " " + strings.TrimRight(right, " ")
		}
	}
	return left + " " + strings.TrimSpace(sizes)
}

// totalsLine sums every blob seen so far, finished or not.
func (m *model) totalsLine() string {
	if m.blobsSeen == 0 && len(m.seen) == 0 {
		return m.st.faint.Render("waiting for the first transfer…")
	}
	s := fmt.Sprintf("%s %d/%d blobs  %s", m.st.bold.Render("total"), m.blobsFinished, m.blobsSeen, FormatBytes(m.bytesDone))
	if m.bytesTotal > 0 {
		s += " / " + FormatBytes(m.bytesTotal)
	}
	if m.overall.known {
		s += "  " + formatRate(m.overall.bps)
	}
	if n := len(m.seen); n > 1 {
		s += fmt.Sprintf("  %d/%d images", len(m.ended), n)
	}
	return s
}

// bar draws a progress bar of w cells with the glyphs of bubbles' progress bar.
func (m *model) bar(frac float64, w int) string {
	frac = min(max(frac, 0), 1)
	full := int(frac*float64(w) + 0.5)
	return m.st.barFull.Render(strings.Repeat("█", full)) + m.st.barEmpty.Render(strings.Repeat("░", w-full))
}

// multi reports whether more than one image is in flight, when blob lines need the
// image to be told apart.
func (m *model) multi() bool {
	if len(m.images) > 1 {
		return true
	}
	seen := map[string]bool{}
	for img := range m.images {
		seen[img] = true
	}
	for _, b := range m.active {
		seen[b.image] = true
		if len(seen) > 1 {
			return true
		}
	}
	return false
}

// blobLine is the line printed when a blob finishes.
func (m *model) blobLine(glyph string, st lipgloss.Style, img, digest, detail string) string {
	s := st.Render(glyph) + " "
	if img != "" && m.multi() {
		s += img + " "
	}
	return s + ShortDigest(digest) + " " + detail
}

// imageLine is the line printed when an image starts or ends.
func (m *model) imageLine(glyph string, st lipgloss.Style, img, detail string) string {
	if img == "" {
		img = "image"
	}
	s := st.Render(glyph) + " " + m.st.bold.Render(img)
	if detail != "" {
		s += " " + detail
	}
	return s
}

// prefixed is a printed line that names its image only when that is ambiguous.
func (m *model) prefixed(glyph string, st lipgloss.Style, img, text string) string {
	s := st.Render(glyph) + " "
	if img != "" && m.multi() {
		s += img + ": "
	}
	return s + text
}

// fit cuts a view line to the terminal width: a wrapped line would throw off
// bubbletea's count of lines to redraw.
func (m *model) fit(s string) string {
	if m.width <= 0 {
		return s
	}
	return ansi.Truncate(s, m.width, "…")
}

func fromSource(src string) string {
	if src == "" {
		return ""
	}
	return "from " + src
}

// clipLeft keeps the end of s, where a reference's repository name and tag are.
func clipLeft(s string, w int) string {
	if n := ansi.StringWidth(s); n > w {
		return ansi.TruncateLeft(s, n-w+1, "…")
	}
	return s
}

func padLeft(s string, w int) string {
	return strings.Repeat(" ", max(0, w-ansi.StringWidth(s))) + s
}

func padRight(s string, w int) string {
	return s + strings.Repeat(" ", max(0, w-ansi.StringWidth(s)))
}
