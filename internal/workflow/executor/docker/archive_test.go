package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/workflow/archive"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// TestArchiveExportImport: on the real engine, a directory a step wrote in the
// workspace is exported as a tar named from its base name, imported into another
// job's workspace under a directory that does not exist yet (made on the way), and
// the cache path is exported and imported the same way; a step then reads it all.
// Paths outside the workspace and the cache path are refused.
func TestArchiveExportImport(t *testing.T) {
	e, img := newEngine(t)
	cacheKey := "test-" + randomID(t)
	removeCacheAtEnd(t, e, cacheKey)
	src := newJob(t, e, img)
	src.CacheKey, src.CachePath = cacheKey, "/hubctl/cache"
	ctx := ctxT(t)
	if err := e.SetupWorkflow(ctx, src); err != nil {
		t.Fatal(err)
	}
	st := runStep(t, e, src, &executor.StepSpec{Index: 0, Name: "write",
		Run: "mkdir -p out/dist/sub && echo alpha > out/dist/a.txt && echo beta > out/dist/sub/b.txt && ln -s a.txt out/dist/link && echo kept > /hubctl/cache/c"})
	if st.ExitCode != 0 {
		t.Fatalf("write step: %+v\n%s", st, logsOf(t, e, src, &executor.StepSpec{Index: 0}, 0))
	}
	rc, err := e.ExportPath(ctx, src, "out/dist")
	if err != nil {
		t.Fatal(err)
	}
	var checked bytes.Buffer
	err = archive.Check(&checked, rc, archive.Limits{})
	rc.Close()
	if err != nil {
		t.Fatalf("the exported tar: %v", err)
	}
	names := tarNames(t, checked.Bytes())
	for _, want := range []string{"dist/", "dist/a.txt", "dist/sub/b.txt", "dist/link"} {
		if !strings.Contains(names, "|"+want+"|") {
			t.Fatalf("exported tar lacks %s: %s", want, names)
		}
	}
	if _, err := e.ExportPath(ctx, src, "nothing-here"); !errors.Is(err, executor.ErrNotFound) {
		t.Fatalf("export of a missing path: %v", err)
	}
	for _, bad := range []string{"/etc", "../x", "/hubctl"} {
		if _, err := e.ExportPath(ctx, src, bad); err == nil || !strings.Contains(err.Error(), "neither in the workspace") {
			t.Errorf("export of %s: %v", bad, err)
		}
		if err := e.ImportPath(ctx, src, bad, bytes.NewReader(nil)); err == nil {
			t.Errorf("import into %s was accepted", bad)
		}
	}
	crc, err := e.ExportPath(ctx, src, src.CachePath)
	if err != nil {
		t.Fatal(err)
	}
	var cache bytes.Buffer
	err = archive.Check(&cache, crc, archive.Limits{StripTop: true})
	crc.Close()
	if err != nil {
		t.Fatalf("the exported cache: %v", err)
	}

	dstKey := "test-" + randomID(t)
	removeCacheAtEnd(t, e, dstKey) // before newJob: removed after the job's cleanup
	dst := newJob(t, e, img)
	dst.CacheKey, dst.CachePath = dstKey, "/hubctl/cache"
	if err := e.SetupWorkflow(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if err := e.ImportPath(ctx, dst, "deep/er", &checked); err != nil {
		t.Fatal(err)
	}
	if err := e.ImportPath(ctx, dst, dst.CachePath, &cache); err != nil {
		t.Fatal(err)
	}
	st = runStep(t, e, dst, &executor.StepSpec{Index: 0, Name: "read",
		Run: `test "$(cat deep/er/dist/a.txt)$(cat deep/er/dist/sub/b.txt)$(cat deep/er/dist/link)" = alphabetaalpha && test "$(cat /hubctl/cache/c)" = kept`})
	if st.ExitCode != 0 {
		t.Fatalf("read step: %+v\n%s", st, logsOf(t, e, dst, &executor.StepSpec{Index: 0}, 0))
	}
}

func tarNames(t *testing.T, b []byte) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	names := "|"
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names += h.Name + "|"
	}
}
