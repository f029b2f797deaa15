package hubapi_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata"
)

func (f *fixture) search(a auth, query string) hubtypes.SearchPage {
	f.t.Helper()
	return decodeAs[hubtypes.SearchPage](f.t, f.want(f.do(a, "GET", "/api/v1/search?"+query, nil), 200, ""))
}

func hitRepos(p hubtypes.SearchPage) []string {
	var out []string
	for _, h := range p.Results {
		out = append(out, h.Repository)
	}
	slices.Sort(out) // newest first; the cases list names in order
	return out
}

// TestSearch is the attacker's test of GET /api/v1/search: whatever bob or an
// anonymous caller asks (a name, a label, a digest, a filter), alice's private
// repository is never in the answer; an access token searches only its scopes.
func TestSearch(t *testing.T) {
	f := newFixture(t, func(o *hubapi.Options) { o.Search = o.Accounts.(hubapi.Searcher) })
	ctx := context.Background()
	f.push("alice", "alice/private", "v1", "a")
	f.push("alice", "alice/open", "v1", "b")
	f.push("bob", "bob/app", "v1", "c")
	must(t, f.store.SetRepositoryVisibility(ctx, "alice/open", accounts.Public))
	must(t, f.store.SetSearchDoc(ctx, "alice/private", metadata.SearchDoc{Kind: metadata.KindImage, Description: "the vault",
		Labels: map[string]string{"team": "zebra"}}))
	must(t, f.store.SetSearchDoc(ctx, "alice/open", metadata.SearchDoc{Kind: metadata.KindImage, Description: "open zebra",
		Labels: map[string]string{"tier": "<script>x</script>"}}))
	priv, err := f.store.ResolveTag(ctx, "alice/private", "v1")
	must(t, err)

	tok := f.token(asAlice, "narrow", "repository:alice/open:pull")
	for _, tc := range []struct {
		name  string
		who   auth
		query string
		want  []string
	}{
		{"anonymous, all", anon, "", []string{"alice/open"}},
		{"anonymous, label", anon, "q=zebra", []string{"alice/open"}},
		{"anonymous, private filter", anon, "visibility=private", nil},
		{"anonymous, digest", anon, "q=" + url.QueryEscape(priv.String()), nil},
		{"bob, label", asBob, "q=zebra", []string{"alice/open"}},
		{"bob, name", asBob, "q=private", nil},
		{"bob, namespace", asBob, "namespace=alice", []string{"alice/open"}},
		{"bob, own", asBob, "visibility=private", []string{"bob/app"}},
		{"alice, label", asAlice, "q=zebra", []string{"alice/open", "alice/private"}},
		{"alice, digest", asAlice, "q=" + url.QueryEscape(priv.String()[:12]), []string{"alice/private"}},
		{"alice's narrow token", bearer(tok), "q=zebra", []string{"alice/open"}},
		{"admin, kind", asAdmin, "kind=image", []string{"alice/open", "alice/private"}},
	} {
		if got := hitRepos(f.search(tc.who, tc.query)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q finds %q, want %q", tc.name, tc.query, got, tc.want)
		}
	}
	p := f.search(anon, "q=open")
	if len(p.Results) != 1 || p.Results[0].Labels["tier"] != "<script>x</script>" || p.Results[0].Visibility != "public" || p.Results[0].Kind != "image" {
		t.Errorf("hit = %+v", p.Results)
	}
	p = f.search(asAlice, "q="+url.QueryEscape(priv.String()))
	if len(p.Results) != 1 || p.Results[0].Digest != priv.String() {
		t.Errorf("digest hit = %+v", p.Results)
	}
	// Pages.
	p = f.search(asAdmin, "limit=2")
	if len(p.Results) != 2 || p.Next == "" {
		t.Fatalf("page 1 = %+v", p)
	}
	if p2 := f.search(asAdmin, "limit=2&after="+url.QueryEscape(p.Next)); !slices.Equal(hitRepos(p2), []string{"alice/private"}) || p2.Next != "" ||
		!slices.Equal(hitRepos(p), []string{"alice/open", "bob/app"}) {
		t.Errorf("page 2 = %+v", p2)
	}

	for _, q := range []string{"kind=vm", "visibility=hidden", "limit=0", "limit=101", "q=sha256:ab", "after=alice", "namespace=" + url.QueryEscape("../x"), "q=db", "q=a+b"} {
		f.want(f.do(asBob, "GET", "/api/v1/search?"+q, nil), 400, "INVALID_REQUEST")
	}
	// A term shorter than the trigram length is refused with a message that says
	// what to type; three characters are enough.
	if r := f.want(f.do(anon, "GET", "/api/v1/search?q=open+op", nil), 400, "INVALID_REQUEST"); !strings.Contains(string(r.body), "at least 3 characters") {
		t.Errorf("short term: %s", r.body)
	}
	if got := hitRepos(f.search(anon, "q=ope")); !slices.Equal(got, hitRepos(f.search(anon, "q=open"))) || len(got) == 0 {
		t.Errorf("q=ope finds %q", got)
	}
	// Credentials that fail are refused, not taken as anonymous.
	f.want(f.do(basic("bob", "wrong"), "GET", "/api/v1/search", nil), 401, "UNAUTHORIZED")
	f.want(f.do(anon, "POST", "/api/v1/search", nil), 405, "UNSUPPORTED")
}
