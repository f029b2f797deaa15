package charts

import (
	"slices"
	"testing"
)

func TestTagMapping(t *testing.T) {
	for v, tag := range map[string]string{"1.2.3": "1.2.3", "1.2.3+build.1": "1.2.3_build.1", "1.0.0-rc.1+a+b": "1.0.0-rc.1_a_b"} {
		if got := TagOf(v); got != tag {
			t.Errorf("TagOf(%q) = %q, want %q", v, got, tag)
		}
		if got := VersionOf(tag); got != v {
			t.Errorf("VersionOf(%q) = %q, want %q", tag, got, v)
		}
	}
}

func TestSortVersions(t *testing.T) {
	vs := []string{"1.9.0", "1.10.0", "1.2.0", "not-semver", "2.0.0-rc.1", "2.0.0", "1.10.0+build.2"}
	SortVersions(vs)
	// Build metadata does not order in semver; the tie is broken by the string, stably.
	want := []string{"2.0.0", "2.0.0-rc.1", "1.10.0+build.2", "1.10.0", "1.9.0", "1.2.0", "not-semver"}
	if !slices.Equal(vs, want) {
		t.Errorf("SortVersions = %v, want %v", vs, want)
	}
}

func TestSelect(t *testing.T) {
	vs := []string{"1.2.0", "1.2.10", "1.3.0", "1.10.0", "2.0.0-rc.1", "3.1.0+meta"}
	for _, c := range []struct{ want, got string }{
		{"~1.2", "1.2.10"},
		{"^1", "1.10.0"},
		{">=1.0 <1.5", "1.3.0"},
		{"", "3.1.0+meta"},
		{"1.2.0", "1.2.0"},
		{"3.1.0_meta", "3.1.0+meta"}, // a tag names its version
		{"3.1.0+meta", "3.1.0+meta"},
		{"^2.0.0-0", "2.0.0-rc.1"},
	} {
		got, err := Select(vs, c.want)
		if err != nil || got != c.got {
			t.Errorf("Select(%q) = %q, %v; want %q", c.want, got, err, c.got)
		}
	}
	if _, err := Select(vs, "~5"); err == nil {
		t.Error("Select(~5) matched")
	}
	if _, err := Select(vs, "not a range!"); err == nil {
		t.Error("a bad range was accepted")
	}
	if got, err := Select([]string{"1.0.0-alpha"}, ""); err != nil || got != "1.0.0-alpha" {
		t.Errorf("only prereleases: %q %v", got, err)
	}
}

func TestCheckRepository(t *testing.T) {
	if err := CheckRepository("team/app", "app"); err != nil {
		t.Error(err)
	}
	if err := CheckRepository("team/sub/app", "app"); err != nil {
		t.Error(err)
	}
	if err := CheckRepository("team/other", "app"); err == nil {
		t.Error("chart app accepted in team/other")
	}
}

func TestLoadArchiveRefusals(t *testing.T) {
	for name, b := range map[string][]byte{"empty": nil, "not gzip": []byte("hello"), "truncated gzip": {0x1f, 0x8b, 8, 0}} {
		if _, err := LoadArchive(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else if _, ok := err.(*InvalidError); !ok {
			t.Errorf("%s: %T, want *InvalidError", name, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	if _, err := ParseConfig([]byte(`{"apiVersion":"v2","name":"app","version":"1.0.0"}`)); err != nil {
		t.Error(err)
	}
	for _, raw := range []string{`{"apiVersion":"v2","name":"app","version":"one"}`, `{"name":"app","version":"1.0.0"}`, `{} {}`, `[`} {
		if _, err := ParseConfig([]byte(raw)); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
}
