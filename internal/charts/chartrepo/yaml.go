package chartrepo

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// The index is written by hand rather than through a YAML library: with 10,000
// versions a generic marshaller (helm's goes through JSON and back) takes most of a
// second, and each entry is rendered once and kept (see index.go). The output is the
// block style helm writes, keys sorted, strings plain where YAML reads them back as the
// same string and double-quoted (JSON escapes, valid in YAML) otherwise.

// writeMapping writes the JSON object m as a YAML block mapping whose keys start at
// column indent. first, when not empty, replaces the indentation of the first line
// (the "- " of a sequence item).
func writeMapping(b *bytes.Buffer, indent int, first string, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pad := strings.Repeat(" ", indent)
	for i, k := range keys {
		if i == 0 && first != "" {
			b.WriteString(first)
		} else {
			b.WriteString(pad)
		}
		writeScalarString(b, k)
		b.WriteByte(':')
		writeValue(b, indent, m[k])
	}
}

// writeValue writes what follows "key:" for v, ending the line.
func writeValue(b *bytes.Buffer, indent int, v any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteByte('\n')
		writeMapping(b, indent+2, "", x)
	case []any:
		if len(x) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteByte('\n')
		writeSequence(b, indent, x)
	default:
		b.WriteByte(' ')
		writeScalar(b, v)
		b.WriteByte('\n')
	}
}

// writeSequence writes items as a block sequence whose dashes start at column indent
// (helm's style: a list under a key is not indented further).
func writeSequence(b *bytes.Buffer, indent int, items []any) {
	pad := strings.Repeat(" ", indent)
	for _, it := range items {
		switch x := it.(type) {
		case map[string]any:
			if len(x) == 0 {
				b.WriteString(pad + "- {}\n")
				continue
			}
			writeMapping(b, indent+2, pad+"- ", x)
		case []any:
			// Rare in Chart.yaml (import-values); flow style is valid YAML.
			raw, _ := json.Marshal(x)
			b.WriteString(pad + "- ")
			b.Write(raw)
			b.WriteByte('\n')
		default:
			b.WriteString(pad + "- ")
			writeScalar(b, it)
			b.WriteByte('\n')
		}
	}
}

func writeScalar(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case json.Number:
		b.WriteString(x.String())
	case string:
		writeScalarString(b, x)
	default:
		raw, _ := json.Marshal(x)
		b.Write(raw)
	}
}

// writeScalarString writes s plain when that reads back as the same string, else
// double-quoted.
func writeScalarString(b *bytes.Buffer, s string) {
	if plainSafe(s) {
		b.WriteString(s)
		return
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}

// plainSafe reports whether s may be written as a plain YAML scalar: letters, digits
// and a few punctuation marks that never start or change a token, not a word YAML
// reads as a boolean or null, and not a number (a leading digit is allowed only with
// two dots, as in a semver "1.2.3", which no YAML number has).
func plainSafe(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '/' || c == '+' || c == ' ':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~":
		return false
	}
	if c := s[0]; (c >= '0' && c <= '9') || c == '.' || c == '+' {
		return strings.Count(s, ".") >= 2
	}
	return true
}
