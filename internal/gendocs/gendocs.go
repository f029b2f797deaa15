// Package gendocs writes the files generated from the command tree: shell completion
// scripts, the markdown command reference and man pages. `go generate ./...` runs it
// through cmd/gen-docs, and a test in package commands regenerates into a temporary
// directory to catch committed files that went stale.
package gendocs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Owned lists the generated files, as globs relative to the repository root. The
// generator owns every file they match: files matching them that it did not write are
// stale and are removed.
var Owned = []string{"completions/hubctl.*", "docs/cli/*.md", "docs/man/*.1"}

// manDate is the date printed in man page headers. It is fixed so that regenerating
// is reproducible; bump it when the command line changes meaningfully.
var manDate = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// CompletionWriter writes root's completion script for a shell (bash, zsh, fish,
// powershell).
type CompletionWriter func(root *cobra.Command, shell string, w io.Writer) error

// Generate writes every generated file under dir (the repository root), removing owned
// files that are no longer produced. root must be a fresh command tree.
func Generate(root *cobra.Command, dir string, completion CompletionWriter) error {
	root.DisableAutoGenTag = true
	for _, pattern := range Owned {
		old, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for _, sub := range []string{"completions", "docs/cli", "docs/man"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}

	for shell, ext := range map[string]string{"bash": "bash", "zsh": "zsh", "fish": "fish", "powershell": "ps1"} {
		var buf bytes.Buffer
		if err := completion(root, shell, &buf); err != nil {
			return fmt.Errorf("%s completion: %w", shell, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "completions", "hubctl."+ext), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := doc.GenMarkdownTree(root, filepath.Join(dir, "docs/cli")); err != nil {
		return fmt.Errorf("markdown reference: %w", err)
	}
	header := &doc.GenManHeader{Title: "HUBCTL", Section: "1", Source: "hubctl", Manual: "hubctl manual", Date: &manDate}
	if err := doc.GenManTree(root, header, filepath.Join(dir, "docs/man")); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}

// Files returns the owned files under dir with their contents, keyed by path relative to
// dir with forward slashes.
func Files(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, pattern := range Owned {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				return nil, err
			}
			rel, err := filepath.Rel(dir, m)
			if err != nil {
				return nil, err
			}
			out[filepath.ToSlash(rel)] = b
		}
	}
	return out, nil
}

// Diff compares the owned files of a fresh generation (want) with those committed
// (got) and lists, sorted, each path that is missing, extra or different.
func Diff(want, got map[string][]byte) []string {
	var out []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			out = append(out, "missing: "+p)
		case !bytes.Equal(w, g):
			out = append(out, "differs: "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			out = append(out, "extra: "+p)
		}
	}
	sort.Strings(out)
	return out
}
