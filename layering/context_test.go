package layering

import (
	"archive/tar"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSymlinksInTheContext(t *testing.T) {
	dir := writeContext(t, map[string]file{"real/conf.yaml": {"c", 0}, "bin/tool": {"t", 0o755}})
	if err := os.Symlink("../real/conf.yaml", filepath.Join(dir, "bin", "conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real/conf.yaml", filepath.Join(dir, "top-link")); err != nil {
		t.Fatal(err)
	}
	img := mustBuild(t, dir, "FROM scratch\nCOPY bin /bin/\nCOPY top-link /etc/conf.yaml\n")
	h := headerMap(t, img)
	if x := h["bin/conf"]; x == nil || x.Typeflag != tar.TypeSymlink || x.Linkname != "../real/conf.yaml" {
		t.Errorf("a symlink inside a copied directory stays a symlink: %+v", x)
	}
	// A named source that is a symlink is followed, as docker does.
	if x := h["etc/conf.yaml"]; x == nil || x.Typeflag != tar.TypeReg || x.Size != 1 {
		t.Errorf("a named symlink source is copied as its target: %+v", x)
	}
}

func TestGitAnnotations(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := writeContext(t, map[string]file{"f": {"f", 0}})
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "f"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one"},
		{"remote", "add", "origin", "https://user:secret@git.example.com/team/app.git"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	source, revision := GitInfo(context.Background(), dir)
	if len(revision) != 40 || source != "https://git.example.com/team/app.git" {
		t.Errorf("GitInfo = %q, %q; want the commit and the remote without credentials", source, revision)
	}
	if s, r := GitInfo(context.Background(), t.TempDir()); s != "" || r != "" {
		t.Errorf("outside a checkout GitInfo = %q, %q", s, r)
	}
}

func TestManifestAnnotations(t *testing.T) {
	dir := writeContext(t, map[string]file{"f": {"f", 0}})
	img := mustBuild(t, dir, "FROM scratch\nCOPY f /f\n", WithAnnotations(map[string]string{"org.example.team": "x"}))
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := jsonUnmarshal(img.Raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Annotations[AnnotationCreated] != "1970-01-01T00:00:00Z" || m.Annotations["org.example.team"] != "x" {
		t.Errorf("annotations %v", m.Annotations)
	}
	if _, ok := m.Annotations[AnnotationBaseName]; ok {
		t.Errorf("a scratch image names a base: %v", m.Annotations)
	}
}
