package commands

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/tui"
)

// buildWith runs `hubctl build` with runF capturing the parsed options.
func buildWith(t *testing.T, env map[string]string, args ...string) (*BuildOptions, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var got *BuildOptions
	root := NewCmdRoot(f)
	for _, c := range root.Commands() {
		if c.Name() == "build" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(NewCmdBuild(f, func(o *BuildOptions) error { got = o; return nil }))
	root.SetArgs(append([]string{"build"}, args...))
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	if err := root.Execute(); err != nil {
		return nil, err
	}
	return got, nil
}

func TestBuildCommandFlags(t *testing.T) {
	got, err := buildWith(t, map[string]string{"SOURCE_DATE_EPOCH": "1700000000", "FROM_ENV": "e"},
		"--build-arg", "FROM_ENV", "--build-arg", "UNSET_IN_ENV",
		"-f", "build/Dockerfile", "-t", "registry.example.com/a:1", "-t", "registry.example.com/a:latest",
		"--platform", "linux/amd64,linux/arm64/v8", "--build-arg", "V=1", "--target", "final",
		"--label", "a=b", "--annotation", "org.opencontainers.image.source=https://x", "-o", "json",
		"--compression", "zstd", "--preserve-modes", "--iidfile", "iid", "src")
	if err != nil {
		t.Fatal(err)
	}
	if got.Context != "src" || got.Dockerfile != "build/Dockerfile" || len(got.Tags) != 2 || got.Mode != tui.ModeJSON ||
		len(got.Outputs) != 0 || got.Compression != "zstd" || !got.PreserveModes || got.Target != "final" {
		t.Fatalf("options %+v", got)
	}
	if strings.Join(got.BuildArgs, " ") != "FROM_ENV=e V=1" {
		t.Errorf("build args %q", got.BuildArgs)
	}
	if !got.SourceDateTime.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("SOURCE_DATE_EPOCH read as %v", got.SourceDateTime)
	}
	got, err = buildWith(t, nil, "--output", "oci:./out", "-o", "docker-daemon", "-t", "app:dev")
	if err != nil {
		t.Fatal(err)
	}
	if got.Context != "." || len(got.Outputs) != 2 || got.Mode == tui.ModeJSON || !got.SourceDateTime.Equal(time.Unix(0, 0)) {
		t.Fatalf("options %+v", got)
	}
	if d, _ := got.localDestination("docker-daemon"); d != "docker-daemon:app:dev" {
		t.Errorf("docker-daemon output = %q", d)
	}
	if d, _ := got.localDestination("docker-archive:x.tar"); d != "docker-archive:x.tar:app:dev" {
		t.Errorf("docker-archive output = %q", d)
	}
}

func TestBuildCommandRefusesBadFlags(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"."}, "say where the image goes"},
		{nil, []string{"-t", "oci:./x", "."}, "want a registry reference"},
		{nil, []string{"--output", "registry.example.com/a:1", "."}, "push to a registry with -t"},
		{nil, []string{"-t", "r.example/a:1", "--compression", "xz"}, "gzip or zstd"},
		{nil, []string{"-t", "r.example/a:1", "--platform", "linux"}, "os/arch"},
		{nil, []string{"-t", "r.example/a:1", "--label", "novalue"}, "KEY=VALUE"},
		{nil, []string{"-t", "r.example/a:1", "--preset", "cobol"}, "java, node, python"},
		{nil, []string{"-t", "r.example/a:1", "--layer", "=x"}, "name=glob"},
		{nil, []string{"-t", "r.example/a:1", "-f", "Dockerfile", "--preset", "go"}, "without one"},
		{map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, []string{"-t", "r.example/a:1"}, "SOURCE_DATE_EPOCH"},
		{nil, []string{"--push", "--output", "oci:x"}, "--push needs -t"},
		{nil, []string{"--output", "docker-daemon"}, "needs a name"},
	} {
		_, err := buildWith(t, tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.args, err, tt.want)
		}
	}
}
