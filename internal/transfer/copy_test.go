package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/dockerarchive"
	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/internal/ocilayout"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// treeOf maps each manifest of ti to the manifests it lists, for checkEventOrder.
func treeOf(ti testIndex) map[string][]string {
	var kids []string
	for _, im := range ti.images {
		kids = append(kids, im.manifest.desc.Digest.String())
	}
	return map[string][]string{ti.index.desc.Digest.String(): kids}
}

// checkLayout opens dir:ref and checks that it holds root, and every blob listed.
func checkLayout(t *testing.T, dir, ref string, root ocispec.Descriptor, blobs []content) {
	t.Helper()
	ctx := context.Background()
	src, err := ocilayout.OpenDir(dir, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	desc, _, err := src.Root(ctx)
	if err != nil || desc.Digest != root.Digest || desc.MediaType != root.MediaType {
		t.Fatalf("root of oci:%s:%s = %+v, %v; want %s", dir, ref, desc, err, root.Digest)
	}
	for _, b := range blobs {
		rc, err := src.Blob(ctx, b.desc)
		if err != nil {
			t.Fatalf("blob %s: %v", b.desc.Digest, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || digest.FromBytes(got) != b.desc.Digest {
			t.Fatalf("blob %s: wrong content, %v", b.desc.Digest, err)
		}
	}
}

func blobDigests(cs []content) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.desc.Digest.String())
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestCopyOCIToOCI(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "oci", "linux/amd64", "linux/arm64")
	src := writeLayout(t, ti, "v1")
	dst := filepath.Join(t.TempDir(), "dst")
	e := &Engine{}
	ctx := context.Background()

	rec := &recorder{}
	res, err := e.Copy(ctx, "oci:"+src+":v1", "oci:"+dst+":v1", Options{Progress: rec.sink, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Reference: "oci:" + dst + "@" + ti.index.desc.Digest.String(), Digest: ti.index.desc.Digest, MediaType: ocispec.MediaTypeImageIndex}
	if res != want {
		t.Fatalf("Result = %+v, want %+v", res, want)
	}
	events := rec.all()
	checkEventOrder(t, events, res, treeOf(ti))
	if got := sorted(rec.digests(progress.BlobDone)); !slices.Equal(got, blobDigests(ti.blobs())) {
		t.Errorf("blobs sent %v, want each blob once: %v", got, blobDigests(ti.blobs()))
	}
	pushed := rec.of(progress.ManifestPushed)
	if len(pushed) != 3 {
		t.Fatalf("%d manifests pushed, want 2 children and the index", len(pushed))
	}
	if root := pushed[2]; root.Digest != ti.index.desc.Digest.String() || root.Tag != "v1" || root.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("last manifest pushed %+v, want the index tagged v1", root)
	}
	if len(rec.of(progress.BlobExists))+len(rec.of(progress.ManifestExists))+len(rec.of(progress.BlobMounted)) != 0 {
		t.Errorf("a first copy found things already there: %s", kinds(events))
	}
	if e := events[0]; e.Source != "oci:"+src+":v1" || e.Image != "oci:"+dst+":v1" {
		t.Errorf("image-started names %q from %q", e.Image, e.Source)
	}
	checkLayout(t, dst, "v1", ti.index.desc, ti.blobs())
	// The child manifests are there too, by digest.
	for _, im := range ti.images {
		checkLayout(t, dst, im.manifest.desc.Digest.String(), im.manifest.desc, []content{im.config, im.own, ti.shared})
	}

	// Again: the children are found, so no blob moves; the index is written again.
	rec = &recorder{}
	res2, err := e.Copy(ctx, "oci:"+src+":v1", "oci:"+dst+":v1", Options{Progress: rec.sink, Label: "again"})
	if err != nil {
		t.Fatal(err)
	}
	if res2 != want {
		t.Fatalf("second Result = %+v, want %+v", res2, want)
	}
	checkEventOrder(t, rec.all(), res2, treeOf(ti))
	if n := len(rec.of(progress.BlobStarted)) + len(rec.of(progress.BlobDone)); n != 0 {
		t.Errorf("second copy moved blobs: %s", kinds(rec.all()))
	}
	var kids []string
	for _, im := range ti.images {
		kids = append(kids, im.manifest.desc.Digest.String())
	}
	if got := sorted(rec.digests(progress.ManifestExists)); !slices.Equal(got, sorted(kids)) {
		t.Errorf("manifests found %v, want the children %v", got, kids)
	}
	if ev := rec.all()[0]; ev.Image != "again" {
		t.Errorf("Label not used: %q", ev.Image)
	}
}

// TestCopyFindsBlobsAlreadyThere: a copy into a layout that already holds
// the blobs (but not the manifests) finds every blob there.
func TestCopyFindsBlobsAlreadyThere(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "blobs", "linux/amd64", "linux/arm64")
	src := writeLayout(t, ti, "v1")
	dst := filepath.Join(t.TempDir(), "dst")
	w, err := ocilayout.CreateDir(dst, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range ti.blobs() {
		if err := w.PutBlob(context.Background(), b.desc, bytes.NewReader(b.raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	res, err := (&Engine{}).Copy(context.Background(), "oci:"+src+":v1", "oci:"+dst+":v2", Options{Progress: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	checkEventOrder(t, rec.all(), res, treeOf(ti))
	if got := sorted(rec.digests(progress.BlobExists)); !slices.Equal(got, blobDigests(ti.blobs())) {
		t.Errorf("blobs found %v, want all of %v", got, blobDigests(ti.blobs()))
	}
	if len(rec.of(progress.BlobStarted)) != 0 {
		t.Errorf("blobs sent again: %s", kinds(rec.all()))
	}
	checkLayout(t, dst, "v2", ti.index.desc, ti.blobs())
}

func TestCopyPlatformFilter(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "plat", "linux/amd64", "linux/arm64", "linux/s390x")
	src := "oci:" + writeLayout(t, ti, "v1") + ":v1"
	ctx := context.Background()
	e := &Engine{}

	t.Run("one platform", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "one")
		arm := ti.image("arm64")
		rec := &recorder{}
		res, err := e.Copy(ctx, src, "oci:"+dst+":v1", Options{Platforms: platforms(t, "linux/arm64/v8"), Progress: rec.sink})
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != arm.manifest.desc.Digest || res.MediaType != ocispec.MediaTypeImageManifest ||
			res.Reference != "oci:"+dst+"@"+arm.manifest.desc.Digest.String() || res.UpToDate {
			t.Fatalf("Result = %+v, want the arm64 manifest %s", res, arm.manifest.desc.Digest)
		}
		checkEventOrder(t, rec.all(), res, nil)
		want := []content{arm.config, arm.own, ti.shared}
		if got := sorted(rec.digests(progress.BlobDone)); !slices.Equal(got, blobDigests(want)) {
			t.Errorf("blobs sent %v, want the arm64 image's %v", got, blobDigests(want))
		}
		checkLayout(t, dst, "v1", arm.manifest.desc, want)
	})

	t.Run("two of three", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "two")
		rec := &recorder{}
		res, err := e.Copy(ctx, src, "oci:"+dst+":v1", Options{Platforms: platforms(t, "linux/amd64,linux/s390x"), Progress: rec.sink})
		if err != nil {
			t.Fatal(err)
		}
		if !res.DigestChanged || res.Digest == ti.index.desc.Digest || res.MediaType != ocispec.MediaTypeImageIndex {
			t.Fatalf("Result = %+v, want a new index", res)
		}
		infos := rec.of(progress.Info)
		if len(infos) != 1 || infos[0].Digest != res.Digest.String() || !strings.Contains(infos[0].Message, "changed the digest: "+ti.index.desc.Digest.String()+" is now "+res.Digest.String()) {
			t.Errorf("info events %+v, want one saying the digest changed", infos)
		}
		amd, s390 := ti.image("amd64"), ti.image("s390x")
		checkEventOrder(t, rec.all(), res, map[string][]string{res.Digest.String(): {amd.manifest.desc.Digest.String(), s390.manifest.desc.Digest.String()}})
		want := []content{ti.shared, amd.config, amd.own, s390.config, s390.own}
		if got := sorted(rec.digests(progress.BlobDone)); !slices.Equal(got, blobDigests(want)) {
			t.Errorf("blobs sent %v, want %v", got, blobDigests(want))
		}
		// The new index lists the two, and the layout holds it under the tag.
		r, err := ocilayout.OpenDir(dst, "v1")
		if err != nil {
			t.Fatal(err)
		}
		desc, raw, err := r.Root(ctx)
		if err != nil || desc.Digest != res.Digest {
			t.Fatalf("root %+v, %v", desc, err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range idx.Manifests {
			got = append(got, PlatformString(m.Platform))
		}
		if !slices.Equal(got, []string{"linux/amd64", "linux/s390x"}) || idx.Annotations["org.opencontainers.image.title"] != "plat" {
			t.Fatalf("filtered index lists %v, annotations %v", got, idx.Annotations)
		}
		if _, err := os.Stat(filepath.Join(dst, "blobs", "sha256", ti.image("arm64").own.desc.Digest.Encoded())); !os.IsNotExist(err) {
			t.Errorf("the arm64 layer was copied: %v", err)
		}
	})

	t.Run("no match", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "none")
		rec := &recorder{}
		_, err := e.Copy(ctx, src, "oci:"+dst+":v1", Options{Platforms: platforms(t, "windows/amd64"), Progress: rec.sink})
		want := "no manifest for platform windows/amd64 in the index (it has linux/amd64, linux/arm64, linux/s390x)"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), src+": ") {
			t.Fatalf("got %v, want %q after the source", err, want)
		}
		evs := rec.all()
		if last := evs[len(evs)-1]; last.Kind != progress.ImageFailed || last.Error != err.Error() {
			t.Errorf("last event %+v, want image-failed with the error", last)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("a failed copy left %s behind: %v", dst, err)
		}
	})
}

// TestCopySinglePlatformSaysDigestChanged: picking one child of an index copies that
// child's manifest unchanged, but the destination's digest is no longer the source
// reference's (the index's), so the result says so and names the child.
func TestCopySinglePlatformSaysDigestChanged(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "single", "linux/amd64", "linux/arm64")
	src := "oci:" + writeLayout(t, ti, "v1") + ":v1"
	rec := &recorder{}
	res, err := (&Engine{}).Copy(context.Background(), src, "oci:"+filepath.Join(t.TempDir(), "d")+":v1",
		Options{Platforms: platforms(t, "linux/arm64"), Progress: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	child := ti.image("arm64").manifest.desc.Digest
	if res.Digest != child {
		t.Fatalf("Digest %s, want the arm64 child's", res.Digest)
	}
	infos := rec.of(progress.Info)
	if !res.DigestChanged || len(infos) != 1 || !strings.Contains(infos[0].Message, "one platform") || !strings.Contains(infos[0].Message, child.String()) {
		t.Fatalf("DigestChanged = %v, info events %+v; want the change said, naming the child", res.DigestChanged, infos)
	}
}

// TestCopyToUntaggedLayout: "oci:DIR" names no REF, and ocilayout.DirWriter records a
// tagged root under its default name ("latest", DirWriter.Tag). The engine passes
// Location.Tag() as the root's tag, "" for a location without REF, so the root is
// stored as a blob but index.json lists nothing: the layout cannot be read back.
func TestCopyToUntaggedLayout(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "untagged", "linux/amd64")
	src := writeLayout(t, ti, "v1")
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := (&Engine{}).Copy(context.Background(), "oci:"+src+":v1", "oci:"+dst, Options{}); err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dst, "", ti.index.desc, ti.blobs())
}

func TestCopyToDockerArchive(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "archive", "linux/amd64", "linux/arm64")
	src := "oci:" + writeLayout(t, ti, "v1") + ":v1"
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "app.tar")

	// A docker archive holds one image: two platforms are refused up front.
	_, err := (&Engine{}).Copy(ctx, src, "docker-archive:"+file+":app:1", Options{Platforms: platforms(t, "linux/amd64,linux/arm64")})
	if err == nil || !strings.Contains(err.Error(), "holds one image: give one --platform, not 2") {
		t.Fatalf("two platforms into a docker-archive: %v", err)
	}

	arm := ti.image("arm64")
	rec := &recorder{}
	res, err := (&Engine{}).Copy(ctx, src, "docker-archive:"+file+":app:1", Options{Platforms: platforms(t, "linux/arm64"), Progress: rec.sink, Jobs: 8})
	if err != nil {
		t.Fatal(err)
	}
	// The result is the digest of what the archive holds (docker's manifest form,
	// read back as hubctl digest would), not the source's (issue 13).
	back, err := dockerarchive.Open(file, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	backD, _, err := back.Root(ctx)
	back.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != backD.Digest || res.Digest == arm.manifest.desc.Digest || !res.DigestChanged ||
		!strings.HasSuffix(res.Reference, "@"+backD.Digest.String()) {
		t.Fatalf("Result %+v, want the archive's own digest %s", res, backD.Digest)
	}
	said := false
	for _, e := range rec.all() {
		said = said || (e.Kind == progress.Info && strings.Contains(e.Message, "docker's manifest form"))
	}
	if !said {
		t.Error("no event says why the digest differs from the source's")
	}
	checkEventOrder(t, rec.all(), res, nil)
	// The archive is a tar stream: blobs went one at a time, in order.
	var open int
	for _, e := range rec.all() {
		switch e.Kind {
		case progress.BlobStarted:
			if open++; open > 1 {
				t.Fatalf("two blobs in flight into a sequential target: %s", kinds(rec.all()))
			}
		case progress.BlobDone:
			open--
		}
	}
	r, err := dockerarchive.Open(file, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, raw, err := r.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != arm.config.desc.Digest || len(m.Layers) != 2 {
		t.Fatalf("archive manifest %s, want the arm64 image", raw)
	}
}

func TestCopySourceErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := &Engine{}
	dst := "oci:" + filepath.Join(t.TempDir(), "dst") + ":v1"
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := e.Copy(ctx, "oci:"+missing+":v1", dst, Options{}); !errors.Is(err, imagestore.ErrNotFound) {
		t.Errorf("missing layout: %v", err)
	}
	ti := newTestIndex(t, "errs", "linux/amd64")
	src := writeLayout(t, ti, "v1")
	if _, err := e.Copy(ctx, "oci:"+src+":v2", dst, Options{}); !errors.Is(err, imagestore.ErrNotFound) || !strings.Contains(err.Error(), `no manifest named "v2"`) {
		t.Errorf("missing tag: %v", err)
	}
	if _, err := e.Copy(ctx, "oci:", dst, Options{}); err == nil || !strings.Contains(err.Error(), "needs a path") {
		t.Errorf("bad source: %v", err)
	}
	if _, err := e.Copy(ctx, "oci:"+src+":v1", "docker-daemon:", Options{}); err == nil || !strings.Contains(err.Error(), "needs an image name") {
		t.Errorf("bad destination: %v", err)
	}
	// A blob that rotted on disk (right size, wrong bytes) is caught on the way.
	layer := ti.image("amd64").own
	p := filepath.Join(src, "blobs", "sha256", layer.desc.Digest.Encoded())
	rotten := []byte(strings.Repeat("x", int(layer.desc.Size)))
	if err := os.WriteFile(p, rotten, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	_, err := e.Copy(ctx, "oci:"+src+":v1", dst, Options{Progress: rec.sink})
	if !errors.Is(err, imagestore.ErrDigest) {
		t.Fatalf("rotten blob: %v, want ErrDigest", err)
	}
	// Blobs still in flight are cancelled and may be reported too; the rotten one is.
	reported := false
	for _, f := range rec.of(progress.BlobFailed) {
		if f.Digest == layer.desc.Digest.String() && strings.Contains(f.Error, "does not match its digest") {
			reported = true
		}
	}
	if !reported {
		t.Errorf("no blob-failed event for the rotten layer: %+v", rec.of(progress.BlobFailed))
	}
}

func TestCopyCancelled(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "cancel", "linux/amd64")
	src := writeLayout(t, ti, "v1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dst := filepath.Join(t.TempDir(), "dst")
	_, err := (&Engine{}).Copy(ctx, "oci:"+src+":v1", "oci:"+dst+":v1", Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("a cancelled copy left %s: %v", dst, err)
	}
}

func TestDefaultPlatform(t *testing.T) {
	t.Parallel()
	p := defaultPlatform()
	if p.OS != "linux" || p.Architecture == "" {
		t.Fatalf("defaultPlatform() = %+v", p)
	}
	if p.Architecture == "arm" && p.Variant != "v7" {
		t.Fatalf("arm without v7: %+v", p)
	}
	// A single-image target without --platform gets this machine's platform.
	ti := newTestIndex(t, "default", "linux/"+p.Architecture, "linux/ppc64le")
	if p.Architecture == "ppc64le" {
		ti = newTestIndex(t, "default", "linux/"+p.Architecture, "linux/amd64")
	}
	src := "oci:" + writeLayout(t, ti, "v1") + ":v1"
	file := filepath.Join(t.TempDir(), "a.tar")
	if _, err := (&Engine{}).Copy(context.Background(), src, "docker-archive:"+file, Options{}); err != nil {
		t.Fatal(err)
	}
	// The archive holds this machine's image: its config.
	r, err := dockerarchive.Open(file, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, raw, err := r.Root(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if want := ti.image(p.Architecture).config.desc.Digest; m.Config.Digest != want {
		t.Fatalf("the archive holds config %s, want this machine's image's %s", m.Config.Digest, want)
	}
}
