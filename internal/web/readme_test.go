package web

import (
	"strings"
	"testing"
)

// TestRenderMarkdownInert: what a readme's author may write that would run script,
// style the page, frame or embed another site or send a form is rendered inert: no
// script or style element, no event attribute, no javascript: or data: URL, no form.
func TestRenderMarkdownInert(t *testing.T) {
	hostile := []string{
		`<script>alert(1)</script>`,
		`<img src=x onerror=alert(1)>`,
		`[click](javascript:alert(1))`,
		`[click](JaVaScRiPt:alert(1))`,
		`[click](  javascript:alert(1))`,
		`[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)`,
		`[vb](vbscript:msgbox)`,
		`<a href="javascript:alert(1)">x</a>`,
		`<iframe src="https://evil.example"></iframe>`,
		`<style>body{display:none}</style>`,
		`<div style="position:fixed" onclick="alert(1)">x</div>`,
		`<form action="https://evil.example"><input name=p></form>`,
		`<svg><script>alert(1)</script></svg>`,
		`<scr<script>ipt>alert(1)</script>`,
		"```html\n<script>alert(1)</script>\n```",
		`![img](javascript:alert(1))`,
		`<object data="x"></object><embed src="x">`,
		`[x](//evil.example/)`,
		`<a href="/\evil.example">x</a>`,
		`<math><mi xlink:href="javascript:alert(1)">x</mi></math>`,
	}
	bad := []string{"<script", "<style", "<iframe", "<object", "<embed", "<form", "<svg", "<img", "javascript:", "data:", "vbscript:",
		" on", "style=", "//evil.example"}
	for _, src := range hostile {
		out := strings.ToLower(string(renderMarkdown(src)))
		for _, b := range bad {
			if strings.Contains(out, b) {
				t.Errorf("%q rendered %q: contains %q", src, out, b)
			}
		}
	}
}

// TestRenderMarkdownKeeps: ordinary Markdown survives the sanitiser.
func TestRenderMarkdownKeeps(t *testing.T) {
	src := "# Title\n\nSome *text* and **bold**, `code` and a [link](https://example.com/docs?a=1&b=2).\n\n" +
		"- one\n- [x] done\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n```go\nfmt.Println(\"<hi>\")\n```\n\n[rel](docs/more.md) <mailto:me@example.com>\n"
	out := string(renderMarkdown(src))
	for _, want := range []string{"<h1>Title</h1>", "<em>text</em>", "<strong>bold</strong>", "<code>code</code>",
		`<a href="https://example.com/docs?a=1&amp;b=2" rel="nofollow noopener noreferrer">link</a>`, "<li>one</li>",
		`<input type="checkbox" disabled checked>`, `<th class="align-left">a</th>`, `<td class="align-right">2</td>`,
		`<code class="language-go">fmt.Println(&#34;&lt;hi&gt;&#34;)`, `<a href="docs/more.md"`, `href="mailto:me@example.com"`} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered readme lacks %q:\n%s", want, out)
		}
	}
}

func TestFilterTags(t *testing.T) {
	rows := []tagRow{{Name: "v1.0"}, {Name: "v1.1"}, {Name: "v2.0"}, {Name: "latest"}, {Name: "1.0-alpine"}}
	for glob, want := range map[string]string{"": "v1.0 v1.1 v2.0 latest 1.0-alpine", "v1.*": "v1.0 v1.1", "*-alpine": "1.0-alpine",
		"1.0": "v1.0 1.0-alpine", "[": "", "x": "", strings.Repeat("*", 200): ""} {
		var got []string
		for _, r := range filterTags(rows, glob) {
			got = append(got, r.Name)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("filterTags(%q) = %v, want %s", glob, got, want)
		}
	}
}

func TestReferrerKind(t *testing.T) {
	for at, want := range map[string]string{
		"application/vnd.dev.cosign.artifact.sig.v1+json": "Signature", "application/vnd.cncf.notary.signature": "Signature",
		"application/spdx+json": "SBOM", "application/vnd.cyclonedx+json": "SBOM", "application/vnd.in-toto+json": "Attestation",
		"text/markdown": "Readme", "application/vnd.example.thing": "Artifact", "": "Artifact",
	} {
		if got := referrerKind(at); got != want {
			t.Errorf("referrerKind(%q) = %s, want %s", at, got, want)
		}
	}
}
