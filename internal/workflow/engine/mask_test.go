package engine

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// feed writes chunks through m and returns what would be stored and the bytes it
// stands for.
func feed(m *masker, chunks ...string) (string, int) {
	var out bytes.Buffer
	total := 0
	for _, c := range chunks {
		b, n := m.Write([]byte(c))
		out.Write(b)
		total += n
	}
	b, n := m.Flush()
	out.Write(b)
	return out.String(), total + n
}

func TestMaskForms(t *testing.T) {
	secret := "s3cr3t/v@lue+x"
	multi := "-----BEGIN KEY-----\nline-one-of-key\nline-two-of-key\n-----END KEY-----"
	for name, tc := range map[string]struct{ in, want string }{
		"plain":          {"token=" + secret + " end", "token=*** end"},
		"twice":          {secret + secret, "******"},
		"base64":         {"b64 " + base64.StdEncoding.EncodeToString([]byte(secret)), "b64 ***"},
		"base64 url raw": {base64.RawURLEncoding.EncodeToString([]byte(secret)) + ".", "***."},
		"query escaped":  {"?p=" + url.QueryEscape(secret), "?p=***"},
		"path escaped":   {"/" + url.PathEscape(secret) + "/", "/***/"},
		"multi-line":     {"key:\n" + multi + "\n", "key:\n***\n"},
		"one line of it": {"oops line-two-of-key here", "oops *** here"},
		"short ignored":  {"abc is fine", "abc is fine"},
		"prefix only":    {"s3cr3t/v@lu", "s3cr3t/v@lu"},
		"nothing":        {"hello\n", "hello\n"},
	} {
		m := newMasker([]string{secret, multi, "abc"})
		got, n := feed(m, tc.in)
		if got != tc.want || n != len(tc.in) {
			t.Errorf("%s: %q (%d bytes consumed of %d), want %q", name, got, n, len(tc.in), tc.want)
		}
	}
	if newMasker([]string{"abc", ""}) != nil {
		t.Error("a masker of short values only")
	}
}

// TestMaskSplit: a value split across reads at any point, or fed a byte at a time or
// in random pieces, is masked all the same, and the bytes consumed add up to the
// input (the offset a re-attached tail resumes at).
func TestMaskSplit(t *testing.T) {
	secret := "hunter2-correct-horse"
	in := "before " + secret + " middle " + base64.StdEncoding.EncodeToString([]byte(secret)) + " after\n"
	want := "before *** middle *** after\n"
	for i := 0; i <= len(in); i++ {
		got, n := feed(newMasker([]string{secret}), in[:i], in[i:])
		if got != want || n != len(in) {
			t.Fatalf("split at %d: %q, %d consumed", i, got, n)
		}
	}
	got, n := feed(newMasker([]string{secret}), strings.Split(in, "")...)
	if got != want || n != len(in) {
		t.Fatalf("byte at a time: %q, %d consumed", got, n)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var chunks []string
		for rest := in; rest != ""; {
			k := 1 + r.IntN(min(len(rest), 12))
			chunks = append(chunks, rest[:k])
			rest = rest[k:]
		}
		if got, n := feed(newMasker([]string{secret}), chunks...); got != want || n != len(in) {
			t.Fatalf("chunks %q: %q, %d consumed", chunks, got, n)
		}
	}
	// What is held back is only what could begin a value: the rest goes out at once.
	m := newMasker([]string{secret})
	out, n := m.Write([]byte(strings.Repeat("x", 100) + "hunter"))
	if n < 100 || strings.Contains(string(out), "hunter") {
		t.Fatalf("first write stored %q (%d consumed)", out, n)
	}
	if got := m.String("a " + secret); got != "a ***" {
		t.Fatalf("String: %q", got)
	}
}

func FuzzMask(f *testing.F) {
	f.Add("pre s3cret-value post", 3)
	f.Fuzz(func(t *testing.T, in string, cut int) {
		secret := "s3cret-value"
		m := newMasker([]string{secret})
		if cut < 0 || cut > len(in) {
			cut = len(in) / 2
		}
		got, n := feed(m, in[:cut], in[cut:])
		if n != len(in) || strings.Contains(got, secret) {
			t.Fatalf("%q → %q (%d consumed)", in, got, n)
		}
	})
}
