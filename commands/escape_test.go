package commands

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/server/servertest"
	"github.com/opencontainers/go-digest"
)

// TestTablesEscapeWhatTheServerSends: a value holding newlines, tabs and terminal
// escapes (stored before the server refused them, or by a server that does not) cannot
// add rows or columns to a table or reach the terminal raw.
func TestTablesEscapeWhatTheServerSends(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	o := &HubOptions{IO: ios}
	forged := "eve\n2  2026-01-01T00:00:00Z  admin  login  -  10.0.0.1  -"
	err := o.print(nil, []string{"ID", "ACTOR", "DETAIL"}, func(row func(...string)) {
		row("1", forged, "\x1b]0;pwned\x07\x1b[2J")
		row("3", "alice\tadmin", "ok \u202egpj.exe")
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), out.String())
	}
	if strings.ContainsFunc(out.String(), func(r rune) bool { return r != '\n' && safetext.Unsafe(r) }) {
		t.Fatalf("raw control characters in the table: %q", out.String())
	}
	if !strings.Contains(lines[1], `eve\n2`) || !strings.Contains(lines[1], `\x1b]0;pwned\x07`) || !strings.Contains(lines[2], `alice\tadmin`) {
		t.Fatalf("table:\n%s", out.String())
	}
	if err := o.done(nil, "User %s created", "x\x1b[31m"); err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); got != "User x\\x1b[31m created\n" {
		t.Fatalf("done wrote %q", got)
	}
}

// TestInspectEscapesWhatTheImageSays: an image's author writes its config; hubctl
// inspect shows its command and user escaped, so they cannot add lines or send terminal
// escapes.
func TestInspectEscapesWhatTheImageSays(t *testing.T) {
	host := servertest.Start(t, "none", "")
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["sh","-c","\u001b]0;pwned\u0007\nFAKE: line"],"User":"root\t\u001b[2J"}}`)
	put := func(method, path, ctype string, body []byte, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+host+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s %s: %v %v", method, path, err, resp)
		}
		resp.Body.Close()
	}
	cd := digest.FromBytes(cfg)
	put("POST", "/v2/evil/app/blobs/uploads/?digest="+cd.String(), "application/octet-stream", cfg, 201)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, cd, len(cfg))
	put("PUT", "/v2/evil/app/manifests/v1", "application/vnd.oci.image.manifest.v1+json", []byte(m), 201)

	ios, _, out, errOut := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(string) (string, bool) { return "", false }
	if code := Execute(context.Background(), f, []string{"inspect", host + "/evil/app:v1"}); code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errOut.String())
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\t") || strings.Contains(got, "\nFAKE") || !strings.Contains(got, `\x1b]0;pwned\x07\nFAKE: line`) {
		t.Fatalf("inspect printed the image's control characters raw:\n%q", got)
	}
}
