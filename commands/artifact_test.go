package commands

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/tui"
)

// artifactPullWith runs `hubctl artifact pull args…` with runF capturing the options.
func artifactPullWith(t *testing.T, args ...string) (*ArtifactOptions, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	var got *ArtifactOptions
	cmd := NewCmdArtifactPull(f, func(o *ArtifactOptions) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err != nil {
		return nil, err
	}
	return got, nil
}

// TestArtifactPullFlags: -d/--dir is the output directory and -o the output format,
// as in every other hubctl command; -o with a directory says where the directory goes.
func TestArtifactPullFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		dir  string
		mode tui.Mode
	}{
		{[]string{"r.example/a:1"}, ".", ""},
		{[]string{"r.example/a:1", "-d", "out"}, "out", ""},
		{[]string{"r.example/a:1", "--dir", "out", "-o", "json"}, "out", tui.ModeJSON},
		{[]string{"r.example/a:1", "--destination", "out", "--output", "json"}, "out", tui.ModeJSON},
	} {
		got, err := artifactPullWith(t, tt.args...)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if got.Dir != tt.dir || got.Ref != "r.example/a:1" || (tt.mode != "" && got.Mode != tt.mode) {
			t.Errorf("%v: dir %q ref %q mode %q, want dir %q mode %q", tt.args, got.Dir, got.Ref, got.Mode, tt.dir, tt.mode)
		}
	}
	_, err := artifactPullWith(t, "r.example/a:1", "-o", "out/")
	if err == nil || !strings.Contains(err.Error(), "-d/--dir") {
		t.Errorf("-o out/: %v, want an error naming -d/--dir", err)
	}
}
