package engine

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Mask replaces a secret in a job's log and outputs.
const Mask = "***"

// MinMasked is the shortest value masked: shorter ones would hide every "true" or
// "1" of a log and protect nothing.
const MinMasked = 4

// masker hides secret values (and their base64 and URL-encoded forms, and each line
// of a multi-line value) in a step's log before a chunk is stored. A value may arrive
// split across two reads, so the last bytes that could begin one are held back until
// the next read or the end (Flush).
type masker struct {
	// mu guards the fields: a renewed token is added (Add) while a step's log is read.
	mu    sync.Mutex
	forms [][]byte // longest first, so a form inside a longer one never leaves a part
	hold  int      // most bytes held back: the longest form, less one
	pend  []byte   // read, not yet emitted
}

// newMasker returns a masker of values; nil when nothing is to be masked.
func newMasker(values []string) *masker {
	forms := maskForms(values)
	if len(forms) == 0 {
		return nil
	}
	m := &masker{}
	m.setForms(forms)
	return m
}

// setForms sets the forms masked, longest first.
func (m *masker) setForms(forms []string) {
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	m.forms = make([][]byte, 0, len(forms))
	for _, f := range forms {
		m.forms = append(m.forms, []byte(f))
	}
	m.hold = len(m.forms[0]) - 1
}

// Add masks values too from now on (a renewed token). What was emitted before stays.
func (m *masker) Add(values ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	forms := maskForms(values)
	for _, f := range m.forms {
		if !slices.Contains(forms, string(f)) {
			forms = append(forms, string(f))
		}
	}
	if len(forms) > 0 {
		m.setForms(forms)
	}
}

// maskForms are the forms of values that a masker hides.
func maskForms(values []string) []string {
	var forms []string
	add := func(s string) {
		if len(s) >= MinMasked && !slices.Contains(forms, s) {
			forms = append(forms, s)
		}
	}
	for _, v := range values {
		if len(strings.TrimSpace(v)) < MinMasked {
			continue // nor its encodings, which would be as weak
		}
		for _, s := range []string{v, strings.TrimSpace(v)} {
			add(s)
			add(base64.StdEncoding.EncodeToString([]byte(s)))
			add(base64.RawStdEncoding.EncodeToString([]byte(s)))
			add(base64.URLEncoding.EncodeToString([]byte(s)))
			add(base64.RawURLEncoding.EncodeToString([]byte(s)))
			add(url.QueryEscape(s))
			add(url.PathEscape(s))
		}
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				add(strings.TrimSpace(line))
			}
		}
	}
	return forms
}

// match returns the length of the form b starts with, or 0.
func (m *masker) match(b []byte) int {
	for _, f := range m.forms {
		if bytes.HasPrefix(b, f) {
			return len(f)
		}
	}
	return 0
}

// Write takes p, read from the step, and returns what may be stored now and how many
// bytes of the step's output that stands for (the offset a re-attach resumes at).
func (m *masker) Write(p []byte) (out []byte, consumed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pend = append(m.pend, p...)
	// Hold back from the first of the last bytes that could begin a value.
	limit := len(m.pend)
	for i := max(0, len(m.pend)-m.hold); i < len(m.pend); i++ {
		if m.couldBegin(m.pend[i:]) {
			limit = i
			break
		}
	}
	return m.emit(limit)
}

// couldBegin reports whether b is the beginning of a form, not all of it.
func (m *masker) couldBegin(b []byte) bool {
	for _, f := range m.forms {
		if len(b) < len(f) && bytes.HasPrefix(f, b) {
			return true
		}
	}
	return false
}

// Flush returns the rest, at the end of the step's log.
func (m *masker) Flush() (out []byte, consumed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.emit(len(m.pend))
}

// emit masks and returns pend up to limit: a form starting before limit is complete in
// pend (limit leaves behind it every tail that could begin one).
func (m *masker) emit(limit int) ([]byte, int) {
	var out []byte
	i := 0
	for i < limit {
		if n := m.match(m.pend[i:]); n > 0 {
			out = append(out, Mask...)
			i += n
			continue
		}
		// Copy up to the next byte that begins any form.
		j := i + 1
		for j < limit && !m.begins(m.pend[j]) {
			j++
		}
		out = append(out, m.pend[i:j]...)
		i = j
	}
	m.pend = append(m.pend[:0], m.pend[i:]...)
	return out, i
}

// begins reports whether some form starts with c.
func (m *masker) begins(c byte) bool {
	for _, f := range m.forms {
		if f[0] == c {
			return true
		}
	}
	return false
}

// String masks s whole (an output value, an error message).
func (m *masker) String(s string) string {
	if m == nil {
		return s
	}
	m.mu.Lock()
	mm := &masker{forms: slices.Clone(m.forms), hold: m.hold}
	m.mu.Unlock()
	out, _ := mm.Write([]byte(s))
	rest, _ := mm.Flush()
	return string(append(out, rest...))
}
