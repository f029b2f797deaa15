package mirror

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestLoadMergesDefaults(t *testing.T) {
	spec := `
defaults:
  target: 127.0.0.1:5000/mirror
  platforms: [linux/amd64, linux/arm64]
  referrers: true
  tags:
    include: ['^v?\d+\.\d+\.\d+$']
    exclude: ['-rc']
    semver: '>=1.2, <2'
    newest: 3
mirrors:
  - source: docker.io/library/alpine
    target: 127.0.0.1:5000/lib/alpine
    tags: {include: ['^3\.']}
  - source: ghcr.io/org/app:1.2.3
    target: 127.0.0.1:5000/app
  - source: quay.io/org/tool
    platforms: []
    referrers: false
    tags:
      include: []
      exclude:
      semver: ''
      newest: 0
  - source: localhost:5001/team/app@sha256:` + strings.Repeat("a", 64) + `
    platforms: [linux/s390x]
`
	got, err := Load(strings.NewReader(spec))
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{Mirrors: []Mirror{
		{
			Source: "docker.io/library/alpine", Target: "127.0.0.1:5000/lib/alpine",
			Platforms: []string{"linux/amd64", "linux/arm64"}, Referrers: true,
			// Field by field: include replaced, the rest inherited.
			Tags: TagFilter{Include: []string{`^3\.`}, Exclude: []string{"-rc"}, Semver: ">=1.2, <2", Newest: 3},
		},
		{
			// One reference: the default tag filter does not apply.
			Source: "ghcr.io/org/app:1.2.3", Target: "127.0.0.1:5000/app",
			Platforms: []string{"linux/amd64", "linux/arm64"}, Referrers: true,
		},
		{
			// Empty values clear defaults; a null exclude leaves the default in place.
			Source: "quay.io/org/tool", Target: "127.0.0.1:5000/mirror/org/tool",
			Platforms: []string{}, Referrers: false,
			Tags: TagFilter{Include: []string{}, Exclude: []string{"-rc"}},
		},
		{
			Source: "localhost:5001/team/app@sha256:" + strings.Repeat("a", 64),
			Target: "127.0.0.1:5000/mirror/team/app", Platforms: []string{"linux/s390x"}, Referrers: true,
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %#v\nwant %#v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("a loaded spec does not validate: %v", err)
	}
}

func TestLoadWithoutDefaults(t *testing.T) {
	got, err := Load(strings.NewReader("mirrors:\n- {source: docker.io/library/busybox, target: localhost/busybox}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{Mirrors: []Mirror{{Source: "docker.io/library/busybox", Target: "localhost/busybox"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %#v\nwant %#v", got, want)
	}
}

// TestLoadErrors loads each testdata/errors/*.yaml and compares the error with the
// .golden file next to it. Run with -update to rewrite them.
func TestLoadErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test specs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(strings.NewReader(string(data)))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not *SpecError: %v", err, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestLoadFileNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(path, []byte("mirrors:\n  - source: docker.io/library/alpine\n    target: localhost/a\n    tags: {newest: -2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	want := path + ": line 4: mirrors[0] (docker.io/library/alpine): tags.newest: must be 0 (keep all) or more, not -2"
	if err == nil || err.Error() != want {
		t.Fatalf("LoadFile error:\n got %v\nwant %s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 4 || fe.Entry != 0 || fe.Field != "tags.newest" {
		t.Errorf("FieldError = %+v", fe)
	}

	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadTooLarge(t *testing.T) {
	big := "# " + strings.Repeat("x", maxSpecSize) + "\n"
	if _, err := Load(strings.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(huge) error = %v", err)
	}
}

func TestLoadListsAtMostMaxProblems(t *testing.T) {
	for name, entry := range map[string]string{
		"validation": "  - {source: alpine, target: localhost/a}\n",
		"decoding":   "  - {source: docker.io/a, target: localhost/a, newest: x}\n",
	} {
		spec := "mirrors:\n" + strings.Repeat(entry, 1000)
		_, err := Load(strings.NewReader(spec))
		var se *SpecError
		if !errors.As(err, &se) {
			t.Fatalf("%s: error = %v", name, err)
		}
		if len(se.Problems) != maxProblems+1 || se.Problems[maxProblems].Error() != "and 980 more problems" {
			t.Errorf("%s: %d problems, last %v", name, len(se.Problems), se.Problems[len(se.Problems)-1])
		}
	}
}

func TestValidateSpecInCode(t *testing.T) {
	s := &Spec{Mirrors: []Mirror{
		{Source: "docker.io/library/alpine", Target: "localhost/alpine", Tags: TagFilter{Include: []string{"("}}},
		{Source: "docker.io/library/alpine:3", Target: "localhost/alpine", Tags: TagFilter{Newest: 1}},
		{Source: "alpine", Target: "localhost/alpine", Platforms: []string{"linux"}},
	}}
	want := strings.Join([]string{
		`mirror spec: mirrors[0] (docker.io/library/alpine): tags.include[0]: invalid regexp "(": missing closing )`,
		`mirror spec: mirrors[1] (docker.io/library/alpine:3): tags: must not be set when the source names a tag or digest: that one image is copied`,
		`mirror spec: mirrors[2] (alpine): platforms[0]: "linux" must be os/arch or os/arch/variant, as in linux/arm64/v8`,
		`mirror spec: mirrors[2] (alpine): source: "alpine" must start with a registry host, as in "docker.io/library/alpine"`,
	}, "\n")
	if err := s.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate:\n got %v\nwant %s", err, want)
	}
	var nilSpec *Spec
	if err := nilSpec.Validate(); err == nil {
		t.Error("nil spec validates")
	}
}

func TestParseRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		in   string
		want imageRef
		err  bool
	}{
		{in: "docker.io/library/alpine", want: imageRef{Repo: "docker.io/library/alpine"}},
		{in: "docker.io/library/alpine:3.20", want: imageRef{Repo: "docker.io/library/alpine", Tag: "3.20"}},
		{in: "127.0.0.1:5000/a/b", want: imageRef{Repo: "127.0.0.1:5000/a/b"}},
		{in: "127.0.0.1:5000/a/b:v1", want: imageRef{Repo: "127.0.0.1:5000/a/b", Tag: "v1"}},
		{in: "localhost/x@" + d, want: imageRef{Repo: "localhost/x", Digest: d}},
		{in: "[::1]:5000/x:t@" + d, want: imageRef{Repo: "[::1]:5000/x", Tag: "t", Digest: d}},
		{in: "Registry.Example.com/x", want: imageRef{Repo: "Registry.Example.com/x"}},
		{in: "", err: true},
		{in: "alpine", err: true},
		{in: "library/alpine", err: true},
		{in: "docker.io/Library/alpine", err: true},
		{in: "docker.io/x:", err: true},
		{in: "docker.io/x:a/b", err: true},
		{in: "docker.io/x@sha256:abc", err: true},
		{in: "https://docker.io/x", err: true},
		{in: "docker.io/x y", err: true},
		{in: "docker.io/", err: true},
		{in: "-bad.io/x", err: true},
	} {
		got, err := parseRef(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseRef(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
