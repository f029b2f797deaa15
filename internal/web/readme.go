package web

import (
	"bytes"
	"html/template"
	"net/url"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Readmes are Markdown from image labels and artifacts: anyone who may push writes
// them, anyone who may pull reads them. goldmark renders them without raw HTML (its
// default: raw HTML is dropped, dangerous link schemes emptied), then sanitize keeps
// only an allow-list of elements and attributes, so a readme cannot run script, style
// the page, frame another site or send a form, whatever goldmark lets through.

// markdown renders GitHub-flavoured tables, strikethrough, autolinks and task lists.
var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

// allowedTags are the elements a readme may hold; others are dropped, their text kept
// (their content too, but for dropWhole).
var allowedTags = map[atom.Atom]bool{
	atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Ul: true, atom.Ol: true, atom.Li: true, atom.A: true, atom.Code: true, atom.Pre: true, atom.Em: true,
	atom.Strong: true, atom.Del: true, atom.Blockquote: true, atom.Hr: true, atom.Br: true, atom.Table: true,
	atom.Thead: true, atom.Tbody: true, atom.Tr: true, atom.Th: true, atom.Td: true, atom.Input: true,
}

// dropWhole are elements dropped with everything inside them.
var dropWhole = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Iframe: true, atom.Object: true, atom.Embed: true, atom.Template: true,
	atom.Noscript: true, atom.Textarea: true, atom.Select: true, atom.Svg: true, atom.Math: true, atom.Title: true,
	atom.Head: true, atom.Frame: true, atom.Frameset: true, atom.Noembed: true, atom.Xmp: true, atom.Plaintext: true,
}

// maxReadmeOutput bounds the HTML a readme renders to.
const maxReadmeOutput = 1 << 20

// renderMarkdown renders src and sanitises the result.
func renderMarkdown(src string) template.HTML {
	var buf bytes.Buffer
	if err := markdown.Convert([]byte(src), &buf); err != nil || buf.Len() > maxReadmeOutput {
		return template.HTML("<pre>" + html.EscapeString(truncate(src, 64<<10)) + "</pre>")
	}
	return template.HTML(sanitize(buf.String()))
}

// sanitize re-writes an HTML fragment keeping only allowed elements with their safe
// attributes; all text is escaped again.
func sanitize(fragment string) string {
	z := html.NewTokenizer(strings.NewReader(fragment))
	var out strings.Builder
	skip := 0 // depth inside a dropWhole element
	var skipAtom atom.Atom
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return out.String()
		case html.TextToken:
			if skip == 0 {
				out.WriteString(html.EscapeString(string(z.Text())))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			if skip > 0 {
				if a == skipAtom && tt == html.StartTagToken {
					skip++
				}
				continue
			}
			if dropWhole[a] || a == 0 {
				if dropWhole[a] && tt == html.StartTagToken {
					skip, skipAtom = 1, a
				}
				continue
			}
			if !allowedTags[a] {
				continue
			}
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				attrs[strings.ToLower(string(k))] = string(v)
			}
			out.WriteString(startTag(a, attrs))
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skip > 0 {
				if a == skipAtom {
					skip--
				}
				continue
			}
			if allowedTags[a] && a != atom.Br && a != atom.Hr && a != atom.Input {
				out.WriteString("</" + a.String() + ">")
			}
		}
	}
}

// startTag writes an allowed element's start tag with the attributes it may keep:
// a link's href when it is http(s), mailto or relative (never javascript:, data: or
// any other scheme), a table cell's alignment, a task list's checkbox.
func startTag(a atom.Atom, attrs map[string]string) string {
	var b strings.Builder
	b.WriteString("<" + a.String())
	switch a {
	case atom.A:
		if href, ok := safeURL(attrs["href"]); ok {
			b.WriteString(` href="` + html.EscapeString(href) + `" rel="nofollow noopener noreferrer"`)
		}
	case atom.Th, atom.Td:
		al := attrs["align"]
		if st := strings.ReplaceAll(strings.TrimSuffix(strings.TrimSpace(attrs["style"]), ";"), " ", ""); strings.HasPrefix(st, "text-align:") {
			// goldmark writes alignment as a style, which the CSP would refuse: a class.
			al = strings.TrimPrefix(st, "text-align:")
		}
		switch al {
		case "left", "right", "center":
			b.WriteString(` class="align-` + al + `"`)
		}
	case atom.Input:
		if attrs["type"] != "checkbox" {
			return ""
		}
		b.WriteString(` type="checkbox" disabled`)
		if _, ok := attrs["checked"]; ok {
			b.WriteString(" checked")
		}
	case atom.Code:
		if c := attrs["class"]; strings.HasPrefix(c, "language-") && validClass(c) {
			b.WriteString(` class="` + c + `"`)
		}
	}
	b.WriteString(">")
	return b.String()
}

func validClass(c string) bool {
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '+') {
			return false
		}
	}
	return len(c) < 64
}

// safeURL returns u when a link to it is harmless: http, https or mailto, or a
// relative reference (no scheme at all).
func safeURL(u string) (string, bool) {
	u = strings.TrimSpace(u)
	if u == "" || strings.ContainsAny(u, "\x00\r\n\t") {
		return "", false
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(p.Scheme) {
	case "http", "https", "mailto":
		return p.String(), true
	case "":
		// "//host" (and the backslash forms browsers read alike) is another site.
		if strings.HasPrefix(u, "//") || strings.HasPrefix(u, `\\`) || strings.HasPrefix(u, `/\`) {
			return "", false
		}
		return p.String(), true
	}
	return "", false
}

// containsAny reports whether s contains any of subs (case-insensitively).
func containsAny(s string, subs ...string) bool {
	s = strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
