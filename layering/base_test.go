package layering

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hubctl/hubctl/internal/imagestore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// countingSource counts the layer blobs read from an image.
type countingSource struct {
	imagestore.Source
	layers *atomic.Int64
}

func (c countingSource) Blob(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if d.MediaType != ocispec.MediaTypeImageConfig {
		c.layers.Add(1)
	}
	return c.Source.Blob(ctx, d)
}

// TestCopyFromImageReadsTopDown: COPY --from=<image> sees the image's filesystem as the
// layers make it (whiteouts, opaque directories, upper files), and reads no layer below
// the ones that settle what it copies.
func TestCopyFromImageReadsTopDown(t *testing.T) {
	baseCtx := writeContext(t, map[string]file{
		"l1/a/x": {"x", 0}, "l1/a/y": {"y", 0}, "l1/b.txt": {"old", 0}, "l1/dir/old": {"o", 0}, "l1/big": {strings.Repeat("z", 1<<16), 0},
		"l2/a/.wh.y": {"", 0}, "l2/dir/.wh..wh..opq": {"", 0}, "l2/dir/new": {"n", 0},
		"l3/b.txt": {"new", 0},
	})
	layout, open := writeBase(t, baseCtx, "FROM scratch\nCOPY l1/ /\nCOPY l2/ /\nCOPY l3/ /\n")
	var reads atomic.Int64
	counting := func(ctx context.Context, name string) (imagestore.Source, Origin, error) {
		src, o, err := open(ctx, name)
		return countingSource{src, &reads}, o, err
	}
	dir := writeContext(t, map[string]file{})
	ref := "oci:" + layout + ":1"
	img := mustBuild(t, dir, "FROM scratch\nCOPY --from="+ref+" /a /outa/\nCOPY --from="+ref+" /dir /outdir/\nCOPY --from="+ref+" /b.txt /b\n", WithOpener(counting))
	files := layerContents(t, img)
	if files["outa/x"] != "x" || files["b"] != "new" || files["outdir/new"] != "n" {
		t.Errorf("copied files %v", files)
	}
	for _, gone := range []string{"outa/y", "outdir/old", "outa/.wh.y"} {
		if _, ok := files[gone]; ok {
			t.Errorf("%s was copied; the layers above delete it", gone)
		}
	}

	reads.Store(0)
	mustBuild(t, dir, "FROM scratch\nCOPY --from="+ref+" /b.txt /b\n", WithOpener(counting))
	if got := reads.Load(); got != 1 {
		t.Errorf("copying one file from the top layer read %d layers, want 1", got)
	}
}
