// Package chartstoretest is the behavioural suite of chartstore.Store, run on every
// database the store supports (SQLite and PostgreSQL through sqlstore's eachBackend).
package chartstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Store is what the suite needs: the chart records on the same database as the
// registry's manifests and tags, and repository visibility.
type Store interface {
	metadata.Store
	chartstore.Store
	SetRepositoryVisibility(ctx context.Context, repository string, v accounts.Visibility) error
}

// Run runs the suite; open returns a new, empty store per call, closed by Run.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"RecordAndList", testRecordAndList},
		{"OnlyTaggedVersions", testOnlyTaggedVersions},
		{"DeleteRemovesRecord", testDeleteRemovesRecord},
		{"RecordNeedsManifest", testRecordNeedsManifest},
		{"NamespaceScope", testNamespaceScope},
		{"Search", testSearch},
		{"Visibility", testVisibility},
		{"Unrecorded", testUnrecorded},
		{"Settings", testSettings},
		{"IndexGeneration", testIndexGeneration},
		{"IndexGenerationScope", testIndexGenerationScope},
		{"Claim", testClaim},
		{"ClaimRace", testClaimRace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

const configType = "application/vnd.cncf.helm.config.v1+json"

var created = time.Date(2026, 12, 6, 10, 0, 0, 123456000, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// push stores a chart manifest for name@version in repo, tagged with the version's
// tag unless tag is false, and returns its digest.
func push(t *testing.T, s Store, repo, name, version string, tag bool) digest.Digest {
	t.Helper()
	ctx := t.Context()
	cfg := digest.FromString("config " + repo + name + version)
	layer := digest.FromString("layer " + repo + name + version)
	for _, d := range []digest.Digest{cfg, layer} {
		must(t, s.PutBlob(ctx, metadata.Blob{Digest: d, Size: 10}))
		must(t, s.LinkBlob(ctx, repo, d))
	}
	payload := fmt.Appendf(nil, `{"schemaVersion":2,"config":{"digest":%q},"layers":[{"digest":%q}]}`, cfg, layer)
	m := metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload), MediaType: "application/vnd.oci.image.manifest.v1+json",
		ArtifactType: configType, Size: int64(len(payload)), Payload: payload}
	tagName := ""
	if tag {
		tagName = chartstore.Version{Version: version}.Tag()
	}
	_, err := s.PutManifest(ctx, m, metadata.References{Blobs: []digest.Digest{cfg, layer}}, tagName)
	must(t, err)
	return m.Digest
}

func version(repo string, d digest.Digest, name, ver string) chartstore.Version {
	return chartstore.Version{
		Repository: repo, Digest: d, Name: name, Version: ver, AppVersion: "v" + ver,
		Description: "The " + name + " chart", Keywords: []string{"web", "Proxy"},
		Maintainers:  []chartstore.Maintainer{{Name: "Ada", Email: "ada@example.com"}},
		Dependencies: []chartstore.Dependency{{Name: "redis", Version: "~18", Repository: "oci://example.com/charts"}},
		Metadata:     fmt.Appendf(nil, `{"apiVersion":"v2","name":%q,"version":%q}`, name, ver),
		ChartDigest:  digest.FromString("tgz " + repo + ver), ChartSize: 1234, CreatedAt: created,
	}
}

func record(t *testing.T, s Store, repo, name, ver string, tag bool) chartstore.Version {
	t.Helper()
	v := version(repo, push(t, s, repo, name, ver, tag), name, ver)
	must(t, s.RecordChart(t.Context(), v))
	return v
}

func list(t *testing.T, s Store, q chartstore.Query) []string {
	t.Helper()
	vs, err := s.Charts(t.Context(), q)
	must(t, err)
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Repository+":"+v.Version)
	}
	return out
}

func testRecordAndList(t *testing.T, s Store) {
	want := record(t, s, "team/app", "app", "1.2.3+build.7", true)
	want.ProvDigest, want.ProvSize = digest.FromString("prov"), 99
	must(t, s.RecordChart(t.Context(), want)) // a second record of one manifest replaces the first
	record(t, s, "team/app", "app", "1.10.0", true)

	vs, err := s.Charts(t.Context(), chartstore.Query{Namespace: "team", Name: "app", Version: "1.2.3+build.7"})
	must(t, err)
	if len(vs) != 1 {
		t.Fatalf("got %d versions, want 1", len(vs))
	}
	got := vs[0]
	if got.Repository != want.Repository || got.Digest != want.Digest || got.AppVersion != want.AppVersion ||
		got.Description != want.Description || !slices.Equal(got.Keywords, want.Keywords) ||
		!slices.Equal(got.Maintainers, want.Maintainers) || !slices.Equal(got.Dependencies, want.Dependencies) ||
		got.ChartDigest != want.ChartDigest || got.ChartSize != want.ChartSize || got.ProvDigest != want.ProvDigest ||
		got.ProvSize != want.ProvSize || !got.CreatedAt.Equal(created) || got.Public {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if len(got.Metadata) == 0 {
		t.Error("metadata not returned")
	}
	keys, err := s.Charts(t.Context(), chartstore.Query{Namespace: "team", Keys: true})
	must(t, err)
	if len(keys) != 2 || keys[0].Metadata != nil || keys[0].Keywords != nil {
		t.Errorf("keys query: %+v", keys)
	}
}

func testOnlyTaggedVersions(t *testing.T, s Store) {
	ctx := t.Context()
	record(t, s, "team/app", "app", "1.0.0", true)
	untagged := record(t, s, "team/app", "app", "2.0.0", false)
	if got := list(t, s, chartstore.Query{Namespace: "team"}); !slices.Equal(got, []string{"team/app:1.0.0"}) {
		t.Errorf("untagged version listed: %v", got)
	}
	// A tag named after the version but pointing elsewhere does not list it either.
	_, err := s.PutManifest(ctx, metadata.Manifest{Repository: "team/app", Digest: untagged.Digest}, metadata.References{}, "1.0.0")
	if err == nil {
		if got := list(t, s, chartstore.Query{Namespace: "team"}); len(got) != 0 {
			t.Errorf("version 1.0.0 listed though its tag points at another manifest: %v", got)
		}
	}
	_, err = s.DeleteTag(ctx, "team/app", "1.0.0")
	must(t, err)
	if got := list(t, s, chartstore.Query{Namespace: "team"}); len(got) != 0 {
		t.Errorf("after the tag was deleted: %v", got)
	}
}

func testDeleteRemovesRecord(t *testing.T, s Store) {
	ctx := t.Context()
	v := record(t, s, "team/app", "app", "1.0.0", true)
	record(t, s, "team/web", "web", "1.0.0", true)
	_, err := s.DeleteManifest(ctx, "team/app", v.Digest)
	must(t, err)
	if got := list(t, s, chartstore.Query{Namespace: "team"}); !slices.Equal(got, []string{"team/web:1.0.0"}) {
		t.Errorf("after deleting the manifest: %v", got)
	}
	// Pushed again (same bytes), the version is not listed until recorded again.
	push(t, s, "team/app", "app", "1.0.0", true)
	if got := list(t, s, chartstore.Query{Namespace: "team", Name: "app"}); len(got) != 0 {
		t.Errorf("record survived its manifest: %v", got)
	}
	must(t, s.DeleteRepository(ctx, "team/web"))
	if got := list(t, s, chartstore.Query{}); len(got) != 0 {
		t.Errorf("after deleting the repository: %v", got)
	}
}

func testRecordNeedsManifest(t *testing.T, s Store) {
	v := version("team/app", digest.FromString("nothing"), "app", "1.0.0")
	if err := s.RecordChart(t.Context(), v); !errors.Is(err, chartstore.ErrManifestNotFound) {
		t.Errorf("record without a repository: %v, want ErrManifestNotFound", err)
	}
	push(t, s, "team/app", "app", "0.1.0", true)
	if err := s.RecordChart(t.Context(), v); !errors.Is(err, chartstore.ErrManifestNotFound) {
		t.Errorf("record without a manifest: %v, want ErrManifestNotFound", err)
	}
}

func testNamespaceScope(t *testing.T, s Store) {
	record(t, s, "team/app", "app", "1.0.0", true)
	record(t, s, "team/sub/app", "app", "2.0.0", true)
	record(t, s, "team2/app", "app", "3.0.0", true)
	record(t, s, "team_x/app", "app", "4.0.0", true)
	if got := list(t, s, chartstore.Query{Namespace: "team"}); !slices.Equal(got, []string{"team/app:1.0.0"}) {
		t.Errorf("namespace team: %v", got)
	}
	if got := list(t, s, chartstore.Query{}); len(got) != 4 {
		t.Errorf("everything: %v", got)
	}
}

func testSearch(t *testing.T, s Store) {
	record(t, s, "team/nginx", "nginx", "1.0.0", true)
	record(t, s, "team/redis", "redis", "7.0.0", true)
	v := version("other/cache_x", push(t, s, "other/cache_x", "cache_x", "0.1.0", true), "cache_x", "0.1.0")
	v.Description, v.Keywords = "An in-memory STORE", []string{"kv"}
	must(t, s.RecordChart(t.Context(), v))
	for term, want := range map[string][]string{
		"NGINX":  {"team/nginx:1.0.0"},
		"store":  {"other/cache_x:0.1.0"},
		"proxy":  {"team/nginx:1.0.0", "team/redis:7.0.0"}, // a keyword, in another case
		"e_x":    {"other/cache_x:0.1.0"},                  // '_' is not a wildcard
		"%":      {},
		"absent": {},
	} {
		if got := list(t, s, chartstore.Query{Term: term}); !slices.Equal(got, want) {
			t.Errorf("search %q: %v, want %v", term, got, want)
		}
	}
	if got := list(t, s, chartstore.Query{Term: "e", Limit: 1}); len(got) != 1 {
		t.Errorf("limit 1: %v", got)
	}
}

func testVisibility(t *testing.T, s Store) {
	record(t, s, "team/app", "app", "1.0.0", true)
	must(t, s.SetRepositoryVisibility(t.Context(), "team/app", accounts.Public))
	vs, err := s.Charts(t.Context(), chartstore.Query{Keys: true})
	must(t, err)
	if len(vs) != 1 || !vs[0].Public {
		t.Errorf("public repository: %+v", vs)
	}
}

func testUnrecorded(t *testing.T, s Store) {
	ctx := t.Context()
	d := push(t, s, "team/app", "app", "1.0.0", true)
	record(t, s, "team/app", "app", "2.0.0", true)
	us, err := s.UnrecordedCharts(ctx, configType, 10)
	must(t, err)
	if len(us) != 1 || us[0].Digest != d || us[0].Repository != "team/app" || len(us[0].Payload) == 0 {
		t.Fatalf("unrecorded: %+v", us)
	}
	must(t, s.RecordChart(ctx, version("team/app", d, "app", "1.0.0")))
	us, err = s.UnrecordedCharts(ctx, configType, 10)
	must(t, err)
	if len(us) != 0 {
		t.Errorf("after recording: %+v", us)
	}
}

func testSettings(t *testing.T, s Store) {
	ctx := t.Context()
	st, err := s.ChartSettings(ctx, "team")
	must(t, err)
	if st.AllowOverwrite {
		t.Error("overwrite allowed by default")
	}
	must(t, s.SetChartSettings(ctx, "team", chartstore.Settings{AllowOverwrite: true}))
	if st, _ = s.ChartSettings(ctx, "team"); !st.AllowOverwrite {
		t.Error("setting not kept")
	}
	must(t, s.SetChartSettings(ctx, "team", chartstore.Settings{}))
	if st, _ = s.ChartSettings(ctx, "team"); st.AllowOverwrite {
		t.Error("setting not changed back")
	}
}

// generation returns the namespace's index generation, checking that ChartIndex
// returns versions only when asked with another generation.
func generation(t *testing.T, s Store, ns string) int64 {
	t.Helper()
	ix, err := s.ChartIndex(t.Context(), ns, -1, true)
	must(t, err)
	if ix.Versions == nil {
		t.Fatalf("ChartIndex(%s, -1) returned no versions", ns)
	}
	again, err := s.ChartIndex(t.Context(), ns, ix.Generation, true)
	must(t, err)
	if again.Generation != ix.Generation || again.Versions != nil {
		t.Fatalf("ChartIndex(%s, %d) = generation %d with %d versions, want the same generation and none",
			ns, ix.Generation, again.Generation, len(again.Versions))
	}
	return ix.Generation
}

// testIndexGeneration: every change to what an index lists changes the namespace's
// generation, in the transaction of the change, whichever path makes it.
func testIndexGeneration(t *testing.T, s Store) {
	ctx := t.Context()
	if g := generation(t, s, "team"); g != 0 {
		t.Errorf("generation of an empty namespace: %d, want 0", g)
	}
	last := int64(0)
	step := func(what string, change func()) {
		t.Helper()
		change()
		g := generation(t, s, "team")
		if g == last {
			t.Errorf("%s: generation stayed %d", what, g)
		}
		last = g
	}
	same := func(what string, change func()) {
		t.Helper()
		change()
		if g := generation(t, s, "team"); g != last {
			t.Errorf("%s: generation moved from %d to %d", what, last, g)
			last = g
		}
	}
	var v1 chartstore.Version
	step("a version recorded", func() { v1 = record(t, s, "team/app", "app", "1.0.0", true) })
	step("a second version recorded", func() { record(t, s, "team/app", "app", "1.1.0", true) })
	same("an untagged manifest pushed", func() { push(t, s, "team/app", "app", "2.0.0", false) })
	same("an image tag in a chart repository", func() {
		_, err := s.PutManifest(ctx, metadata.Manifest{Repository: "team/app", Digest: v1.Digest}, metadata.References{}, "latest")
		must(t, err)
	})
	same("a chart in another namespace", func() { record(t, s, "other/app", "app", "1.0.0", true) })
	step("the repository made public", func() { must(t, s.SetRepositoryVisibility(ctx, "team/app", accounts.Public)) })
	same("the same visibility again", func() { must(t, s.SetRepositoryVisibility(ctx, "team/app", accounts.Public)) })
	step("a version's tag deleted", func() {
		_, err := s.DeleteTag(ctx, "team/app", "1.1.0")
		must(t, err)
	})
	step("a version's tag moved to another manifest", func() {
		d := push(t, s, "team/app", "app", "3.0.0", false)
		_, err := s.PutManifest(ctx, metadata.Manifest{Repository: "team/app", Digest: d}, metadata.References{}, "1.0.0")
		must(t, err)
	})
	step("the tag moved back", func() {
		_, err := s.PutManifest(ctx, metadata.Manifest{Repository: "team/app", Digest: v1.Digest}, metadata.References{}, "1.0.0")
		must(t, err)
	})
	step("a version's manifest deleted", func() {
		_, err := s.DeleteManifest(ctx, "team/app", v1.Digest)
		must(t, err)
	})
	step("a version in another repository", func() { record(t, s, "team/web", "web", "0.1.0", true) })
	step("the repository deleted", func() { must(t, s.DeleteRepository(ctx, "team/web")) })
	if got := list(t, s, chartstore.Query{Namespace: "team"}); len(got) != 0 {
		t.Errorf("left in the index: %v", got)
	}
}

// testIndexGenerationScope: ChartIndex lists what Charts lists for the namespace, and
// keys only when asked.
func testIndexGenerationScope(t *testing.T, s Store) {
	record(t, s, "team/app", "app", "1.0.0", true)
	record(t, s, "team/app", "app", "1.1.0", true)
	record(t, s, "team/sub/app", "app", "2.0.0", true)
	record(t, s, "team2/app", "app", "3.0.0", true)
	for _, keys := range []bool{false, true} {
		ix, err := s.ChartIndex(t.Context(), "team", -1, keys)
		must(t, err)
		var got []string
		for _, v := range ix.Versions {
			got = append(got, v.Repository+":"+v.Version)
			if keys != (v.Metadata == nil) {
				t.Errorf("keys %v: metadata %q", keys, v.Metadata)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"team/app:1.0.0", "team/app:1.1.0"}) {
			t.Errorf("keys %v: %v", keys, got)
		}
	}
	vs, err := s.Charts(t.Context(), chartstore.Query{Manifests: []digest.Digest{record(t, s, "team/web", "web", "1.0.0", true).Digest}})
	must(t, err)
	if len(vs) != 1 || vs[0].Repository != "team/web" {
		t.Errorf("by manifest: %+v", vs)
	}
}

// testClaim: a claim holds a version for one chart archive until it is recorded or
// expires; the record and the tag hold it afterwards.
func testClaim(t *testing.T, s Store) {
	ctx := t.Context()
	x, y := digest.FromString("archive x"), digest.FromString("archive y")
	claim := func(manifest, chart digest.Digest, ttl time.Duration) chartstore.Claimed {
		t.Helper()
		c, err := s.ClaimChartVersion(ctx, chartstore.Claim{Repository: "team/app", Tag: "1.0.0", Manifest: manifest, Chart: chart, TTL: ttl})
		must(t, err)
		return c
	}
	if c := claim(digest.FromString("m1"), x, 0); c.Holder != "" || c.Current != "" {
		t.Fatalf("first claim: %+v", c)
	}
	if c := claim(digest.FromString("m2"), x, 0); c.Holder != x {
		t.Errorf("the same archive again: %+v, want held by it", c)
	}
	if c := claim(digest.FromString("m3"), y, 0); c.Holder != x {
		t.Errorf("another archive: %+v, want held by %s", c, x)
	}
	// The first push stores and records its version: the tag and the record hold it.
	v := version("team/app", push(t, s, "team/app", "app", "1.0.0", true), "app", "1.0.0")
	v.ChartDigest = x
	if c := claim(digest.FromString("m3"), y, 0); c.Holder != x || c.Current != v.Digest {
		t.Errorf("stored, not recorded: %+v, want held by %s at %s", c, x, v.Digest)
	}
	must(t, s.RecordChart(ctx, v))
	if c := claim(digest.FromString("m3"), y, 0); c.Holder != x || c.Current != v.Digest {
		t.Errorf("recorded: %+v, want held by %s at %s", c, x, v.Digest)
	}
	if c := claim(v.Digest, y, 0); c.Holder != "" || c.Current != v.Digest {
		t.Errorf("its own manifest: %+v", c)
	}
	// Deleted, the version is free again.
	_, err := s.DeleteManifest(ctx, "team/app", v.Digest)
	must(t, err)
	if c := claim(digest.FromString("m4"), y, 50*time.Millisecond); c.Holder != "" || c.Current != "" {
		t.Errorf("after delete: %+v", c)
	}
	// A claim whose push failed expires.
	time.Sleep(120 * time.Millisecond)
	if c := claim(digest.FromString("m5"), x, 0); c.Holder != "" {
		t.Errorf("after the claim expired: %+v", c)
	}
}

// testClaimRace: of pushes of one version with different archives claiming at once,
// exactly one finds it free.
func testClaimRace(t *testing.T, s Store) {
	const n = 6
	for round := range 5 {
		tag := fmt.Sprintf("1.0.%d", round)
		var wg sync.WaitGroup
		free := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				c, err := s.ClaimChartVersion(t.Context(), chartstore.Claim{Repository: "team/app", Tag: tag,
					Manifest: digest.FromString(fmt.Sprint("m", i)), Chart: digest.FromString(fmt.Sprint("archive ", i))})
				errs[i], free[i] = err, err == nil && c.Holder == ""
			})
		}
		wg.Wait()
		winners := 0
		for i := range n {
			must(t, errs[i])
			if free[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Errorf("round %d: %d pushes found version %s free, want 1", round, winners, tag)
		}
	}
}
