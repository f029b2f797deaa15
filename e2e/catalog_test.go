package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestCatalogForEveryone (issue 13 item 4): `hubctl ls HOST`, `crane catalog` and
// `regctl repo ls` list, for every caller and not only for admins, the repositories
// that caller may pull: anonymous the public ones, a user their own, their teams' and
// the public ones, an access token what its scopes allow, the admin everything.
func TestCatalogForEveryone(t *testing.T) {
	crane := tool(t, "crane")
	regctl := tool(t, "regctl")
	f := newAuthFixture(t)
	s := f.s
	createUser(t, s, "bob", "bob-password-1")
	aliceTok := mustToken(t, s, "alice", f.alicePW, "repository:alice/app:pull,push", "repository:alice/pub:pull,push", "repository:alice/zz:pull,push")
	bobTok := mustToken(t, s, "bob", "bob-password-1", "repository:bob/x:pull,push")
	for _, r := range []string{"alice/app", "alice/pub", "alice/zz"} {
		pushImageAs(t, s, aliceTok, r, "v1", newImage(t, "amd64"))
	}
	pushImageAs(t, s, bobTok, "bob/x", "v1", newImage(t, "amd64"))
	resp, body := apiCall(t, s, http.MethodPatch, "/api/v1/repositories/alice/pub", "alice", f.alicePW, map[string]any{"visibility": "public"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("make alice/pub public: %s %q", resp.Status, truncate(body, 300))
	}
	dir := t.TempDir()
	lines := func(out string) []string {
		var ls []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				ls = append(ls, l)
			}
		}
		slices.Sort(ls)
		return ls
	}
	want := func(who string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("catalog as %s = %q, want %q", who, got, want)
		}
	}

	// Anonymous: crane and regctl see the public repository only.
	anonEnv := clientEnv(t, t.TempDir())
	want("anonymous (crane)", lines(run(t, dir, anonEnv, crane, "--insecure", "catalog", s.Addr)), []string{"alice/pub"})
	want("anonymous (regctl)", lines(run(t, dir, anonEnv, regctl, "--host", "reg="+s.Addr+",tls=disabled", "repo", "ls", s.Addr)), []string{"alice/pub"})

	// bob: his own and the public one, with crane logged in and with regctl.
	bobEnv := clientEnv(t, t.TempDir())
	runStdin(t, dir, bobEnv, "bob-password-1", crane, "auth", "login", s.Addr, "-u", "bob", "--password-stdin")
	want("bob (crane)", lines(run(t, dir, bobEnv, crane, "--insecure", "catalog", s.Addr)), []string{"alice/pub", "bob/x"})
	want("bob (regctl)", lines(run(t, dir, anonEnv, regctl, "--host", "reg="+s.Addr+",tls=disabled,user=bob,pass=bob-password-1", "repo", "ls", s.Addr)),
		[]string{"alice/pub", "bob/x"})

	// alice with hubctl ls: her three, page by page as the server pages them.
	aliceEnv := clientEnv(t, t.TempDir())
	runStdin(t, "", aliceEnv, f.alicePW+"\n", hubctlBin, "login", s.Addr, "-u", "alice", "--password-stdin")
	want("alice (hubctl ls)", lines(run(t, "", aliceEnv, hubctlBin, "ls", s.Addr)),
		[]string{s.Addr + "/alice/app", s.Addr + "/alice/pub", s.Addr + "/alice/zz"})
	want("alice (regctl, pages of 1)", lines(run(t, dir, anonEnv, regctl, "--host", "reg="+s.Addr+",tls=disabled,user=alice,pass="+f.alicePW,
		"repo", "ls", "--limit", "1", "--last", "alice/app", s.Addr)), []string{"alice/pub"})

	// An access token of alice's scoped to one repository lists that one.
	tok := createAccessToken(t, s, "alice", f.alicePW, "ci", "repository:alice/zz:pull")
	tokEnv := clientEnv(t, t.TempDir())
	runStdin(t, dir, tokEnv, tok, crane, "auth", "login", s.Addr, "-u", "ci", "--password-stdin")
	want("alice's token on alice/zz (crane)", lines(run(t, dir, tokEnv, crane, "--insecure", "catalog", s.Addr)), []string{"alice/zz"})

	// The admin: everything.
	want("admin (regctl)", lines(run(t, dir, anonEnv, regctl, "--host", "reg="+s.Addr+",tls=disabled,user=admin,pass="+adminPassword, "repo", "ls", s.Addr)),
		[]string{"alice/app", "alice/pub", "alice/zz", "bob/x"})
}
