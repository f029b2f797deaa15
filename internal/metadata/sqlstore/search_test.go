package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/metadata"
)

func hitNames(res metadata.SearchResult) []string {
	var out []string
	for _, h := range res.Hits {
		out = append(out, h.Repository)
	}
	return out
}

// searchStore is a fresh store of b with the users alice and bob, and a must that
// fails the test on an error.
func searchStore(t *testing.T, b backend) (*Store, func(error)) {
	t.Helper()
	s, _ := openFresh(t, b)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"alice", "bob"} {
		_, err := s.CreateUser(context.Background(), accounts.User{Name: u})
		must(err)
	}
	return s, must
}

func TestSearch(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, must := searchStore(t, b)
		pub := putTestManifest(t, s, "alice/web-frontend", "pub", "v1", "")
		secret := putTestManifest(t, s, "alice/secret-service", "secret", "v1", "")
		putTestManifest(t, s, "bob/tools", "tools", "latest", "")
		putTestManifest(t, s, "bob/helm-stuff", "chart", "1.0.0", "")
		must(s.SetRepositoryVisibility(ctx, "alice/web-frontend", accounts.Public))
		must(s.SetRepositoryVisibility(ctx, "bob/tools", accounts.Public))
		must(s.SetSearchDoc(ctx, "alice/web-frontend", metadata.SearchDoc{Kind: metadata.KindImage, Description: "The Storefront UI",
			Labels: map[string]string{"org.opencontainers.image.vendor": "Acme Corp", "xss": "<script>alert(1)</script>"}, Digest: pub}))
		must(s.SetSearchDoc(ctx, "alice/secret-service", metadata.SearchDoc{Kind: metadata.KindImage, Description: "storefront payments",
			Labels: map[string]string{"team": "acme-payments"}, Digest: secret}))
		must(s.SetSearchDoc(ctx, "bob/helm-stuff", metadata.SearchDoc{Kind: metadata.KindChart, Description: "a chart"}))

		anon := metadata.CatalogFilter{Public: true}
		alice := metadata.CatalogFilter{Public: true, Namespaces: []string{"alice"}, Member: "alice"}
		bob := metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob"}
		search := func(f metadata.CatalogFilter, q metadata.SearchQuery) []string {
			t.Helper()
			res, err := s.Search(ctx, f, q)
			must(err)
			names := hitNames(res)
			slices.Sort(names) // newest first; the cases list names in order
			return names
		}
		for _, tc := range []struct {
			name string
			f    metadata.CatalogFilter
			q    metadata.SearchQuery
			want []string
		}{
			{"description, anonymous", anon, metadata.SearchQuery{Text: "storefront"}, []string{"alice/web-frontend"}},
			{"description, bob", bob, metadata.SearchQuery{Text: "STOREFRONT"}, []string{"alice/web-frontend"}},
			{"description, alice", alice, metadata.SearchQuery{Text: "storefront"}, []string{"alice/secret-service", "alice/web-frontend"}},
			{"private label, bob", bob, metadata.SearchQuery{Text: "acme-payments"}, nil},
			{"private label, anonymous", anon, metadata.SearchQuery{Text: "payments"}, nil},
			{"private label, alice", alice, metadata.SearchQuery{Text: "payments"}, []string{"alice/secret-service"}},
			{"private name, anonymous", anon, metadata.SearchQuery{Text: "secret"}, nil},
			{"label value", anon, metadata.SearchQuery{Text: "acme corp"}, []string{"alice/web-frontend"}},
			{"label with markup", anon, metadata.SearchQuery{Text: "<script>"}, []string{"alice/web-frontend"}},
			{"two terms", alice, metadata.SearchQuery{Text: "acme storefront"}, []string{"alice/secret-service", "alice/web-frontend"}},
			{"two terms, one missing", alice, metadata.SearchQuery{Text: "acme nothing"}, nil},
			{"three characters", bob, metadata.SearchQuery{Text: "ool"}, []string{"bob/tools"}},
			{"like wildcards are literal", bob, metadata.SearchQuery{Text: "%%%"}, nil},
			{"like wildcards are literal, long", bob, metadata.SearchQuery{Text: "t%s"}, nil},
			{"namespace and term", bob, metadata.SearchQuery{Namespace: "alice", Text: "front"}, []string{"alice/web-frontend"}},
			{"namespace marker is not a term", bob, metadata.SearchQuery{Text: "/+/"}, nil},
			{"private only, term", alice, metadata.SearchQuery{Visibility: "private", Text: "storefront"}, []string{"alice/secret-service"}},
			{"a granted namespace among many", metadata.CatalogFilter{Namespaces: manyNamespaces("alice")}, metadata.SearchQuery{Text: "secret"}, []string{"alice/secret-service"}},
			{"quote", bob, metadata.SearchQuery{Text: `"tools`}, nil},
			{"namespace", alice, metadata.SearchQuery{Namespace: "alice"}, []string{"alice/secret-service", "alice/web-frontend"}},
			{"namespace of another", bob, metadata.SearchQuery{Namespace: "alice"}, []string{"alice/web-frontend"}},
			{"kind chart", bob, metadata.SearchQuery{Kind: metadata.KindChart}, []string{"bob/helm-stuff"}},
			{"private only", bob, metadata.SearchQuery{Visibility: "private"}, []string{"bob/helm-stuff"}},
			{"private only, anonymous", anon, metadata.SearchQuery{Visibility: "private"}, nil},
			{"public only", alice, metadata.SearchQuery{Visibility: "public"}, []string{"alice/web-frontend", "bob/tools"}},
			{"everything, anonymous", anon, metadata.SearchQuery{}, []string{"alice/web-frontend", "bob/tools"}},
			{"nothing selected", metadata.CatalogFilter{}, metadata.SearchQuery{Text: "storefront"}, nil},
			{"token patterns", metadata.CatalogFilter{All: true, Restricted: true, Patterns: []string{"bob/*"}}, metadata.SearchQuery{}, []string{"bob/helm-stuff", "bob/tools"}},
			{"digest prefix, owner", alice, metadata.SearchQuery{Text: secret.String()[:15]}, []string{"alice/secret-service"}},
			{"digest prefix, bare hex", alice, metadata.SearchQuery{Text: secret.Encoded()[:12]}, []string{"alice/secret-service"}},
			{"digest prefix, another user", bob, metadata.SearchQuery{Text: secret.String()}, nil},
			{"digest prefix, anonymous", anon, metadata.SearchQuery{Text: pub.String()[:13]}, []string{"alice/web-frontend"}},
		} {
			if got := search(tc.f, tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %q finds %q, want %q", tc.name, tc.q.Text, got, tc.want)
			}
		}

		res, err := s.Search(ctx, anon, metadata.SearchQuery{Text: "storefront"})
		must(err)
		h := res.Hits[0]
		if h.Kind != metadata.KindImage || h.Description != "The Storefront UI" || h.Labels["xss"] != "<script>alert(1)</script>" ||
			h.Visibility != "public" || h.IndexedAt.IsZero() {
			t.Errorf("hit = %+v", h)
		}
		res, err = s.Search(ctx, alice, metadata.SearchQuery{Text: pub.String()})
		must(err)
		if len(res.Hits) != 1 || res.Hits[0].Digest != pub {
			t.Errorf("digest hit = %+v", res.Hits)
		}

		for _, bad := range []metadata.SearchQuery{{Text: "oo"}, {Text: "oo tools"}, {Kind: "vm"}, {Visibility: "secret"}, {Text: "sha256:ab"}, {Text: "sha256:xyz0"}, {After: "x"}, {After: "-1"}, {Text: "sha256:abcd", After: "a\xff@b"}, {Namespace: "\xff"}} {
			if _, err := s.Search(ctx, alice, bad); !errors.Is(err, metadata.ErrInvalidSearch) {
				t.Errorf("%+v: err = %v, want ErrInvalidSearch", bad, err)
			}
		}

		// Keyset pages: every public repository once, in name order.
		for i := range 7 {
			repo := fmt.Sprintf("bob/page-%d", i)
			putTestManifest(t, s, repo, repo, "v1", "")
			must(s.SetRepositoryVisibility(ctx, repo, accounts.Public))
		}
		var all []string
		for after, n := "", 0; n < 20; n++ {
			res, err := s.Search(ctx, anon, metadata.SearchQuery{Text: "page", After: after, Limit: 3})
			must(err)
			all = append(all, hitNames(res)...)
			if after = res.Next; after == "" {
				break
			}
		}
		if slices.Sort(all); len(slices.Compact(slices.Clone(all))) != 7 || all[0] != "bob/page-0" {
			t.Errorf("pages = %q", all)
		}

		// PostgreSQL reads a page from the index's candidates when there are at most
		// maxCandidates, else newest first: both give the same pages.
		for _, cap := range []int{1000, 2} {
			maxCandidates = cap
			var got []string
			for after, n := "", 0; n < 20; n++ {
				res, err := s.Search(ctx, anon, metadata.SearchQuery{Text: "page", After: after, Limit: 2})
				must(err)
				got = append(got, hitNames(res)...)
				if after = res.Next; after == "" {
					break
				}
			}
			if want := []string{"bob/page-6", "bob/page-5", "bob/page-4", "bob/page-3", "bob/page-2", "bob/page-1", "bob/page-0"}; !slices.Equal(got, want) {
				t.Errorf("%d candidates: pages = %q, want %q", cap, got, want)
			}
		}
		maxCandidates = 1000

		// A deleted repository leaves the index; a re-created one starts unindexed.
		must(s.DeleteRepository(ctx, "alice/web-frontend"))
		if got := search(alice, metadata.SearchQuery{Text: "storefront"}); !slices.Equal(got, []string{"alice/secret-service"}) {
			t.Errorf("after delete: %q", got)
		}
		if got := search(alice, metadata.SearchQuery{Text: "frontend"}); len(got) != 0 {
			t.Errorf("deleted repository found by name: %q", got)
		}
	})
}

func TestPendingSearchDocs(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, _ := openFresh(t, b)
		putTestManifest(t, s, "a/one", "1", "old", "")
		time.Sleep(2 * time.Millisecond)
		newest := putTestManifest(t, s, "a/one", "2", "new", "")
		if err := s.EnsureRepository(ctx, "a/empty"); err != nil {
			t.Fatal(err)
		}
		putTestManifest(t, s, "a/done", "3", "v", "")
		if err := s.SetSearchDoc(ctx, "a/done", metadata.SearchDoc{Kind: metadata.KindImage}); err != nil {
			t.Fatal(err)
		}
		p, err := s.PendingSearchDocs(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 2 || p[0].Repository != "a/one" || p[0].Manifest == nil || p[0].Manifest.Digest != newest ||
			len(p[0].Manifest.Payload) == 0 || p[1].Repository != "a/empty" || p[1].Manifest != nil {
			t.Fatalf("pending = %+v", p)
		}
		if more, err := s.PendingSearchDocs(ctx, p[0].RepoID, 1); err != nil || len(more) != 1 || more[0].Repository != "a/empty" {
			t.Fatalf("after %d: %+v, %v", p[0].RepoID, more, err)
		}
		// An oversized doc is cut to its bounds, not refused.
		big := map[string]string{}
		for i := range 100 {
			big[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", 2000)
		}
		if err := s.SetSearchDoc(ctx, "a/one", metadata.SearchDoc{Description: strings.Repeat("é", 1000) + "\x00", Labels: big}); err != nil {
			t.Fatal(err)
		}
		res, err := s.Search(ctx, metadata.CatalogFilter{All: true}, metadata.SearchQuery{Text: "a/one"})
		if err != nil || len(res.Hits) != 1 {
			t.Fatal(res, err)
		}
		h := res.Hits[0]
		if len(h.Description) > maxDescription || len(h.Labels) != maxLabels || len(h.Labels["k000"]) != maxLabelValue {
			t.Errorf("bounded doc: description %d bytes, %d labels, value %d bytes", len(h.Description), len(h.Labels), len(h.Labels["k000"]))
		}
		if p, err := s.PendingSearchDocs(ctx, 0, 10); err != nil || len(p) != 1 || p[0].Repository != "a/empty" {
			t.Errorf("pending after indexing = %+v, %v", p, err)
		}
	})
}

func TestTagPage(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, _ := openFresh(t, b)
		for _, tag := range []string{"b", "a", "c", "d"} {
			putTestManifest(t, s, "x/app", tag, tag, "")
			time.Sleep(2 * time.Millisecond)
		}
		names := func(p metadata.TagPage) []string {
			var out []string
			for _, t := range p.Tags {
				out = append(out, t.Name)
			}
			return out
		}
		for _, tc := range []struct {
			sort          metadata.TagSort
			desc          bool
			offset, limit int
			want          []string
		}{
			{metadata.TagSortName, false, 0, 0, []string{"a", "b", "c", "d"}},
			{metadata.TagSortName, true, 1, 2, []string{"c", "b"}},
			{metadata.TagSortPushed, true, 0, 3, []string{"d", "c", "a"}},
			{metadata.TagSortPushed, false, 3, 3, []string{"d"}},
			{metadata.TagSortPulled, false, 0, 0, []string{"a", "b", "c", "d"}},
		} {
			p, err := s.TagPage(ctx, "x/app", tc.sort, tc.desc, tc.offset, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(p); !slices.Equal(got, tc.want) || p.Total != 4 {
				t.Errorf("%s desc=%v %d+%d: %q of %d, want %q of 4", tc.sort, tc.desc, tc.offset, tc.limit, got, p.Total, tc.want)
			}
		}
		if _, err := s.TagPage(ctx, "x/none", metadata.TagSortName, false, 0, 10); !errors.Is(err, metadata.ErrRepositoryNotFound) {
			t.Errorf("missing repository: %v", err)
		}
		if _, err := s.TagPage(ctx, "x/app", "size", false, 0, 10); err == nil {
			t.Error("unknown order accepted")
		}
	})
}

// manyNamespaces is more namespaces than a search narrows its index reads by (they
// are read unnarrowed), with ns among them.
func manyNamespaces(ns string) []string {
	out := []string{ns}
	for i := range maxScopeMarkers + 5 {
		out = append(out, fmt.Sprintf("other%d", i))
	}
	return out
}

// TestSearchVisibilityChange: a repository made private leaves every search of those
// who may no longer pull it at once (the next statement), on both stores, whatever
// the search narrows by; made public again, it is found again. The index's scope
// (migration 0033) follows the repository's visibility in the same transaction.
func TestSearchVisibilityChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, must := searchStore(t, b)
		d := putTestManifest(t, s, "alice/storefront", "store", "v1", "")
		putTestManifest(t, s, "bob/storefront-fork", "fork", "v1", "")
		must(s.SetSearchDoc(ctx, "alice/storefront", metadata.SearchDoc{Kind: metadata.KindImage, Description: "the shop", Digest: d}))
		must(s.SetRepositoryVisibility(ctx, "alice/storefront", accounts.Public))

		anon := metadata.CatalogFilter{Public: true}
		alice := metadata.CatalogFilter{Public: true, Namespaces: []string{"alice"}, Member: "alice"}
		bob := metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob"}
		queries := []metadata.SearchQuery{
			{Text: "storefront"}, {Text: "shop"}, {Text: "the shop"}, {Text: "sho shop"}, {},
			{Namespace: "alice"}, {Visibility: "public"}, {Kind: metadata.KindImage},
			{Text: "shop", Visibility: "public", Namespace: "alice"},
		}
		found := func(f metadata.CatalogFilter, q metadata.SearchQuery) bool {
			t.Helper()
			res, err := s.Search(ctx, f, q)
			must(err)
			return slices.Contains(hitNames(res), "alice/storefront")
		}
		check := func(when string, wantAnon, wantAlicePrivate bool) {
			t.Helper()
			for _, q := range queries {
				for who, f := range map[string]metadata.CatalogFilter{"anonymous": anon, "bob": bob} {
					if got := found(f, q); got != wantAnon {
						t.Errorf("%s: %s, %+v: found %v", when, who, q, got)
					}
				}
				if q.Visibility == "" && !found(alice, q) {
					t.Errorf("%s: the owner does not find it with %+v", when, q)
				}
			}
			q := metadata.SearchQuery{Text: "shop", Visibility: "private"}
			if got := found(alice, q); got != wantAlicePrivate {
				t.Errorf("%s: the owner, %+v: found %v", when, q, got)
			}
		}
		check("public", true, false)
		must(s.SetRepositoryVisibility(ctx, "alice/storefront", accounts.Private))
		check("made private", false, true)
		must(s.SetRepositoryVisibility(ctx, "alice/storefront", accounts.Public))
		check("public again", true, false)
	})
}
