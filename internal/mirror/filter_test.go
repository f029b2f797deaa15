package mirror

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSelectTags(t *testing.T) {
	releases := []string{"1.0.0", "1.2.0", "1.2.1", "1.10.0", "2.0.0", "2.0.0-rc.1", "latest"}
	for _, tc := range []struct {
		name string
		tags []string
		f    TagFilter
		want []string
	}{
		{"zero filter keeps all, versions after others in order", releases, TagFilter{},
			[]string{"latest", "1.0.0", "1.2.0", "1.2.1", "1.10.0", "2.0.0-rc.1", "2.0.0"}},
		{"no tags", nil, TagFilter{Newest: 3}, []string{}},
		{"include any match", releases, TagFilter{Include: []string{`^1\.2\.`, `^latest$`}},
			[]string{"latest", "1.2.0", "1.2.1"}},
		{"include is not anchored for you", []string{"3.19", "13.1", "v3"}, TagFilter{Include: []string{`3`}},
			[]string{"v3", "3.19", "13.1"}},
		{"exclude any match", releases, TagFilter{Exclude: []string{`-rc`, `^latest$`}},
			[]string{"1.0.0", "1.2.0", "1.2.1", "1.10.0", "2.0.0"}},
		{"exclude beats include", releases, TagFilter{Include: []string{`^2`}, Exclude: []string{`rc`}},
			[]string{"2.0.0"}},
		{"semver range drops non-versions and pre-releases", releases, TagFilter{Semver: ">=1.2, <2"},
			[]string{"1.2.0", "1.2.1", "1.10.0"}},
		{"semver with pre-release in constraint admits pre-releases",
			releases, TagFilter{Semver: ">=2.0.0-0"}, []string{"2.0.0-rc.1", "2.0.0"}},
		{"semver v prefix", []string{"v1.1.0", "v1.2.3", "v2.0.0", "1.3.0", "main"}, TagFilter{Semver: "^1.2"},
			[]string{"v1.2.3", "1.3.0"}},
		{"semver two-part versions", []string{"3.18", "3.19", "3.20", "3.9", "edge"}, TagFilter{Semver: ">=3.18"},
			[]string{"3.18", "3.19", "3.20"}},
		{"single numbers and dates are not versions", []string{"3", "20240101", "1.0"}, TagFilter{Semver: ">=0"},
			[]string{"1.0"}},
		{"variant suffix is a pre-release to semver", []string{"1.25.3", "1.25.3-alpine", "1.26.0-alpine"},
			TagFilter{Semver: ">=1.25"}, []string{"1.25.3"}},
		{"newest in semver order, not string order", []string{"1.9.0", "1.10.0", "1.2.0", "1.11.0"},
			TagFilter{Newest: 2}, []string{"1.10.0", "1.11.0"}},
		{"newest counts pre-releases below their release", releases, TagFilter{Newest: 3},
			[]string{"1.10.0", "2.0.0-rc.1", "2.0.0"}},
		{"newest applies after semver", releases, TagFilter{Semver: "<2", Newest: 2},
			[]string{"1.2.1", "1.10.0"}},
		{"newest prefers versions over other tags", []string{"zzz", "latest", "0.1", "edge"},
			TagFilter{Newest: 2}, []string{"zzz", "0.1"}},
		{"newest in natural order when nothing is a version",
			[]string{"build-9", "build-10", "build-100", "build-11"}, TagFilter{Newest: 2},
			[]string{"build-11", "build-100"}},
		{"newest larger than the list", []string{"b", "a"}, TagFilter{Newest: 10}, []string{"a", "b"}},
		{"same version, v and no v, ordered by string", []string{"v1.0.0", "1.0.0", "1.0"}, TagFilter{},
			[]string{"1.0", "1.0.0", "v1.0.0"}},
		{"duplicates and invalid tags dropped", []string{"a", "a", "", "../x", "-bad", "b:c"}, TagFilter{},
			[]string{"a"}},
		{"dates in natural order", []string{"2024-10-01", "2024-9-30", "2023-12-31"}, TagFilter{Newest: 1},
			[]string{"2024-10-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SelectTags(tc.tags, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("SelectTags(%q) = %q, want %q", tc.tags, got, tc.want)
			}
		})
	}
}

// The order of SelectTags must not depend on the order the registry lists tags in.
func TestSelectTagsStableOrder(t *testing.T) {
	tags := []string{"latest", "edge", "v1.0.0", "1.0.0", "1.0", "1.0.0-rc.1", "1.0.0-rc.2",
		"1.0.0-beta", "2.1", "10.0.0", "a10", "a9", "a09", "0.0.1"}
	want, err := SelectTags(tags, TagFilter{})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := slices.Clone(tags)
		rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, _ := SelectTags(shuffled, TagFilter{})
		if !slices.Equal(got, want) {
			t.Fatalf("order depends on input:\n got %q\nwant %q", got, want)
		}
	}
	wantOrder := []string{"a09", "a9", "a10", "edge", "latest", "0.0.1", "1.0.0-beta", "1.0.0-rc.1",
		"1.0.0-rc.2", "1.0", "1.0.0", "v1.0.0", "2.1", "10.0.0"}
	if !slices.Equal(want, wantOrder) {
		t.Errorf("order\n got %q\nwant %q", want, wantOrder)
	}
}

func TestSelectTagsInvalidFilter(t *testing.T) {
	for _, tc := range []struct {
		f    TagFilter
		want string
	}{
		{TagFilter{Include: []string{"ok", "("}}, `include[1]: invalid regexp "(": missing closing )`},
		{TagFilter{Exclude: []string{"[z-a]"}}, `exclude[0]: invalid regexp "[z-a]": invalid character class range`},
		{TagFilter{Semver: "nope"}, `semver: invalid semver constraint "nope"`},
		{TagFilter{Newest: -1}, `newest: must be 0 (keep all) or more, not -1`},
	} {
		_, err := SelectTags([]string{"a"}, tc.f)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("SelectTags(%+v) error = %v, want prefix %q", tc.f, err, tc.want)
		}
	}
}

func TestNaturalCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"a", "a", 0},
		{"a", "b", -1},
		{"a2", "a10", -1},
		{"a10", "a2", 1},
		{"1.9", "1.10", -1},
		{"a", "a1", -1},
		{"a01", "a1", -1}, // numerically equal: byte order decides
		{"a001", "a01", -1},
		{"x10y", "x10z", -1},
		{"99999999999999999999999", "100000000000000000000000", -1}, // no overflow
		{"", "0", -1},
	} {
		if got := naturalCompare(tc.a, tc.b); got != tc.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := naturalCompare(tc.b, tc.a); got != -tc.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}
