package commands

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/gendocs"
	"github.com/hubctl/hubctl/internal/iostreams"
)

// TestGeneratedFilesAreCurrent fails when completions/ or docs/{cli,man} no longer match
// the command tree, so a changed flag cannot ship with stale docs.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	tmp := t.TempDir()
	ios, _, _, _ := iostreams.Test()
	root := NewCmdRoot(NewFactory(ios, BuildInfo{}))
	if err := gendocs.Generate(root, tmp, WriteCompletion); err != nil {
		t.Fatal(err)
	}
	want, err := gendocs.Files(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("generator wrote nothing")
	}
	got, err := gendocs.Files("..")
	if err != nil {
		t.Fatal(err)
	}
	if diff := gendocs.Diff(want, got); len(diff) > 0 {
		t.Fatalf("generated files are stale; run `go generate ./...` (or `make generate`):\n  %s", strings.Join(diff, "\n  "))
	}
}
