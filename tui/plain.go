package tui

import (
	"fmt"
	"io"

	"github.com/hubctl/hubctl/internal/progress"
)

// renderPlain writes one line per event that matters, for logs and CI: no escapes,
// no per-byte progress, no times or speeds, so the output is the same on every run.
func renderPlain(w io.Writer, verb string, events <-chan progress.Event, tally *progress.Tally) {
	var errs shownErrors
	for e := range events {
		tally.Add(e)
		e.Error = errs.text(e)
		if line, ok := plainLine(verb, e); ok {
			// A failed write (closed stderr) must not stop the draining.
			_, _ = fmt.Fprintln(w, line)
		}
	}
}

// plainLine is the log line for e, or false for events plain mode does not show.
func plainLine(verb string, e progress.Event) (string, bool) {
	var prefix string
	if e.Image != "" {
		prefix = e.Image + ": "
	}
	past := pastTense(verb)
	var s string
	switch e.Kind {
	case progress.ImageStarted:
		s = "started"
		if e.Source != "" {
			s += " from " + e.Source
		}
	case progress.BlobDone:
		s = fmt.Sprintf("%s blob %s (%s)", past, ShortDigest(e.Digest), FormatBytes(e.Bytes))
	case progress.BlobExists:
		s = fmt.Sprintf("blob %s exists", ShortDigest(e.Digest))
	case progress.BlobMounted:
		s = fmt.Sprintf("mounted blob %s from %s", ShortDigest(e.Digest), e.From)
	case progress.BlobFailed:
		s = fmt.Sprintf("blob %s failed: %s", ShortDigest(e.Digest), e.Error)
	case progress.Retry:
		s = fmt.Sprintf("retry %d in %s", e.Attempt, formatDuration(e.Wait))
		if e.Digest != "" {
			s += " for " + ShortDigest(e.Digest)
		}
		s += ": " + e.Error
	case progress.ManifestPushed:
		s = fmt.Sprintf("%s manifest %s", past, e.Digest)
		if e.Tag != "" {
			s += " (tag " + e.Tag + ")"
		}
	case progress.ManifestExists:
		s = fmt.Sprintf("manifest %s exists", e.Digest)
	case progress.Info:
		s = e.Message
	case progress.ImageDone:
		s = "done " + e.Digest
	case progress.ImageFailed:
		s = "failed: " + e.Error
	default:
		// Starts and byte counts would flood a log; kinds added later are skipped
		// until a view knows how to word them.
		return "", false
	}
	return prefix + s, true
}

// shownErrors remembers the failures shown for each image, so that one cause (a 403
// that every blob of an image meets) is spelt out once and then only referred to.
type shownErrors struct{ seen map[[2]string]bool }

// text is e.Error as a view shows it: whole the first time for e's image, "the same
// error" after that. Retries keep their text: each is news.
func (s *shownErrors) text(e progress.Event) string {
	if e.Error == "" || (e.Kind != progress.BlobFailed && e.Kind != progress.ImageFailed) {
		return e.Error
	}
	if s.seen == nil {
		s.seen = map[[2]string]bool{}
	}
	k := [2]string{e.Image, e.Error}
	if s.seen[k] {
		return "the same error"
	}
	s.seen[k] = true
	return e.Error
}
