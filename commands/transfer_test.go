package commands

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/tui"
	"github.com/spf13/cobra"
)

// copyWith runs push, pull or copy with runF capturing the parsed options.
func copyWith(t *testing.T, verb string, args ...string) (*CopyOptions, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	var got *CopyOptions
	capture := func(o *CopyOptions) error { got = o; return nil }
	root := NewCmdRoot(f)
	for _, c := range root.Commands() {
		if c.Name() == verb {
			root.RemoveCommand(c)
		}
	}
	var cmd *cobra.Command
	switch verb {
	case "push":
		cmd = NewCmdPush(f, capture)
	case "pull":
		cmd = NewCmdPull(f, capture)
	case "copy":
		cmd = NewCmdCopy(f, capture)
	}
	root.AddCommand(cmd)
	root.SetArgs(append([]string{verb}, args...))
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	if err := root.Execute(); err != nil {
		return nil, err
	}
	return got, nil
}

func TestCopyCommandArguments(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		src, dst string
	}{
		// One argument: docker push / docker pull semantics.
		{[]string{"push", "127.0.0.1:5000/app:1"}, "docker-daemon:127.0.0.1:5000/app:1", "127.0.0.1:5000/app:1"},
		{[]string{"pull", "127.0.0.1:5000/app:1"}, "127.0.0.1:5000/app:1", "docker-daemon:127.0.0.1:5000/app:1"},
		// A source without a registry host is the engine's image.
		{[]string{"push", "app:1", "registry.example.com/team/app:1"}, "docker-daemon:app:1", "registry.example.com/team/app:1"},
		{[]string{"push", "localhost/app:1", "registry.example.com/team/app:1"}, "localhost/app:1", "registry.example.com/team/app:1"},
		{[]string{"push", "oci:./dir:1", "registry.example.com/app:1"}, "oci:./dir:1", "registry.example.com/app:1"},
		{[]string{"pull", "ghcr.io/org/app:1", "oci-archive:app.tar"}, "ghcr.io/org/app:1", "oci-archive:app.tar"},
		{[]string{"copy", "a.example/x:1", "b.example/y:2"}, "a.example/x:1", "b.example/y:2"},
	} {
		got, err := copyWith(t, tt.args[0], tt.args[1:]...)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if got.Src != tt.src || got.Dst != tt.dst {
			t.Errorf("%v: src %q dst %q, want %q %q", tt.args, got.Src, got.Dst, tt.src, tt.dst)
		}
	}
}

func TestCopyCommandFlags(t *testing.T) {
	got, err := copyWith(t, "copy", "-j", "8", "--platform", "linux/amd64,linux/arm64", "--referrers", "--rate", "50MiB", "-o", "json", "a.example/x:1", "b.example/y:1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Jobs != 8 || got.Platforms != "linux/amd64,linux/arm64" || !got.Referrers || got.Rate != 50<<20 || got.Mode != tui.ModeJSON {
		t.Fatalf("options %+v", got)
	}
	if got, err := copyWith(t, "copy", "--progress", "plain", "a.example/x:1", "b.example/y:1"); err != nil || got.Mode != tui.ModePlain {
		t.Fatalf("--progress plain: %+v, %v", got, err)
	}
}

func TestCopyCommandRefusals(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"push", "oci:./dir", "oci:./other"}, "push writes to a registry"},
		{[]string{"pull", "oci:./dir", "oci:./other"}, "pull reads from a registry"},
		{[]string{"copy", "--jobs", "0", "a.example/x:1", "b.example/y:1"}, "--jobs must be at least 1"},
		{[]string{"copy", "--platform", "linux", "a.example/x:1", "b.example/y:1"}, "invalid platform"},
		{[]string{"copy", "--progress", "fancy", "a.example/x:1", "b.example/y:1"}, "invalid progress mode"},
		{[]string{"copy", "-o", "yaml", "a.example/x:1", "b.example/y:1"}, "--output must be json"},
		{[]string{"copy", "--rate", "fast", "a.example/x:1", "b.example/y:1"}, "invalid size"},
		{[]string{"copy", "a.example/x:1"}, "accepts 2 arg"},
		{[]string{"push", "oci:", "a.example/x:1"}, "needs a path"},
	} {
		_, err := copyWith(t, tt.args[0], tt.args[1:]...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}
