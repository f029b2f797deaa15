package metadata

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseSearch(t *testing.T) {
	for _, tc := range []struct {
		in     string
		terms  []string
		prefix string
		bad    bool
	}{
		{"", nil, "", false},
		{"  Nginx  ALPINE nginx ", []string{"nginx", "alpine"}, "", false},
		{"abc\x00def\tghi", []string{"abc", "def", "ghi"}, "", false},
		{"abc\x00b\tcde", nil, "", true}, // "b" is shorter than a trigram
		{"db", nil, "", true},
		{"db postgres", nil, "", true},
		{"éèà", []string{"éèà"}, "", false}, // characters, not bytes
		{"éè", nil, "", true},
		{"sha256:ABCDEF12", nil, "sha256:abcdef12", false},
		{"sha512:abcd", nil, "sha512:abcd", false},
		{"3f2a9c1", nil, "sha256:3f2a9c1", false},
		{"3f2a9c", []string{"3f2a9c"}, "", false}, // six hex digits: a word
		{"sha256:abc", nil, "", true},
		{"sha256:xyz12", nil, "", true},
		{"md5:abcd", []string{"md5:abcd"}, "", false},
		{strings.Repeat("word ", 20), []string{"word"}, "", false},
		{"aaa bbb ccc ddd eee fff ggg hhh iii jjj", []string{"aaa", "bbb", "ccc", "ddd", "eee", "fff", "ggg", "hhh"}, "", false},
		{"aaa bbb ccc ddd eee fff ggg hhh i", []string{"aaa", "bbb", "ccc", "ddd", "eee", "fff", "ggg", "hhh"}, "", false}, // the ninth term is dropped
	} {
		p, err := ParseSearch(tc.in)
		if tc.bad != errors.Is(err, ErrInvalidSearch) || !slices.Equal(p.Terms, tc.terms) || p.DigestPrefix != tc.prefix {
			t.Errorf("ParseSearch(%q) = %+v, %v", tc.in, p, err)
		}
	}
}

func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{"", "nginx alpine", "sha256:abcd", "deadbeef00", "é\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSearch(s)
		if err != nil {
			return
		}
		if len(p.Terms) > MaxSearchTerms || (p.DigestPrefix != "" && len(p.Terms) > 0) {
			t.Fatalf("%q: %+v", s, p)
		}
		for _, term := range p.Terms {
			// Lower-casing may grow a term (invalid bytes become U+FFFD), never past
			// three bytes a byte; PostgreSQL refuses invalid UTF-8 in text.
			if term == "" || len(term) > 3*MaxSearchQuery || strings.ContainsAny(term, " \x00\t\n") || !utf8.ValidString(term) {
				t.Fatalf("%q: term %q", s, term)
			}
		}
	})
}
