package layering

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// readTar lists the headers of a tar stream.
func readTar(t testing.TB, r io.Reader) []*tar.Header {
	t.Helper()
	tr := tar.NewReader(r)
	var out []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

func TestWriteTarIsReproducible(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host")
	if err := os.WriteFile(host, []byte("from the host"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries := []Entry{
		{Path: "/app/z.txt", Kind: KindFile, Mode: 0o644, Data: []byte("z"), Size: 1},
		{Path: "app/bin/run", Kind: KindFile, Mode: 0o755, HostPath: host, Size: 13, UID: 1000, GID: 1000},
		{Path: "app/link", Kind: KindSymlink, Mode: 0o777, Linkname: "bin/run"},
		{Path: "app/a.txt", Kind: KindFile, Mode: 0o644 | os.ModeSetuid, Data: []byte("a"), Size: 1},
	}
	var a, b bytes.Buffer
	if err := writeTar(&a, sortEntries(entries), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	// Reversed input, and the host file touched: same bytes.
	rev := []Entry{entries[3], entries[2], entries[1], entries[0]}
	if err := os.Chtimes(host, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := writeTar(&b, sortEntries(rev), time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same entries in another order gave other bytes")
	}
	hdrs := readTar(t, &a)
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" || h.Gname != "" || len(h.PAXRecords) != 0 {
			t.Errorf("%s: mtime %v uname %q gname %q pax %v; want epoch, no names, no PAX", h.Name, h.ModTime, h.Uname, h.Gname, h.PAXRecords)
		}
	}
	want := []string{"app/", "app/a.txt", "app/bin/", "app/bin/run", "app/link", "app/z.txt"}
	if len(names) != len(want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %v, want %v", names, want)
		}
	}
	if h := hdrs[3]; h.Uid != 1000 || h.Gid != 1000 || h.Mode != 0o755 || h.Size != 13 {
		t.Errorf("app/bin/run header %+v", h)
	}
	if h := hdrs[1]; h.Mode != 0o4644 {
		t.Errorf("setuid file mode %o, want 4644", h.Mode)
	}
	if h := hdrs[0]; h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("implicit parent %+v, want 0755 root", h)
	}
}

func TestWriteTarDetectsChangedFile(t *testing.T) {
	host := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(host, []byte("longer than said"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := writeTar(io.Discard, []Entry{{Path: "f", Kind: KindFile, Mode: 0o644, HostPath: host, Size: 3}}, time.Unix(0, 0))
	if err == nil {
		t.Fatal("a file longer than its entry was written")
	}
}

func TestNormaliseMode(t *testing.T) {
	for _, c := range []struct {
		k    Kind
		in   os.FileMode
		want os.FileMode
	}{
		{KindFile, 0o600, 0o644}, {KindFile, 0o664, 0o644}, {KindFile, 0o700, 0o755},
		{KindFile, 0o744, 0o755}, {KindDir, 0o700, 0o755}, {KindDir, 0o775, 0o755},
	} {
		if got := normaliseMode(c.k, c.in); got != c.want {
			t.Errorf("normaliseMode(%v, %o) = %o, want %o", c.k, c.in, got, c.want)
		}
	}
}

func TestCacheLayerReusedAndCompressed(t *testing.T) {
	for _, comp := range []Compression{Gzip, Zstd} {
		t.Run(string(comp), func(t *testing.T) {
			c, err := OpenCache(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("layer content that compresses well "), 200000)
			entries := []Entry{{Path: "data", Kind: KindFile, Mode: 0o644, Data: big, Size: int64(len(big))}}
			lb, err := c.Layer("app", entries, comp, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if lb.Cached || lb.MediaType != comp.MediaType() || lb.Size >= int64(len(big))/10 {
				t.Fatalf("first build %+v", lb)
			}
			again, err := c.Layer("app", entries, comp, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if !again.Cached || again.Digest != lb.Digest || again.DiffID != lb.DiffID {
				t.Fatalf("second build %+v, want the cached %+v", again, lb)
			}
			// A cold cache elsewhere makes the same bytes.
			c2, _ := OpenCache(t.TempDir())
			cold, err := c2.Layer("app", entries, comp, time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if cold.Digest != lb.Digest {
				t.Fatalf("cold cache digest %s, want %s", cold.Digest, lb.Digest)
			}
			// The blob decompresses to the tar whose digest is the diff ID.
			f, err := os.Open(c.BlobPath(lb.Digest))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var r io.Reader
			if comp == Zstd {
				zr, err := zstd.NewReader(f)
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				r = zr
			} else {
				gr, err := gzip.NewReader(f)
				if err != nil {
					t.Fatal(err)
				}
				r = gr
			}
			raw, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := "sha256:" + sha256Hex(raw); got != lb.DiffID.String() {
				t.Fatalf("diff ID %s, tar hashes to %s", lb.DiffID, got)
			}
		})
	}
}

func TestCompressionIgnoresCores(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef the quick brown fox "), 300000)
	for _, comp := range []Compression{Gzip, Zstd} {
		var outs [][]byte
		for _, procs := range []int{1, 4} {
			old := setProcs(procs)
			var buf bytes.Buffer
			w, err := newCompressor(&buf, comp)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			w.Close()
			setProcs(old)
			outs = append(outs, buf.Bytes())
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: output differs between 1 and 4 cores", comp)
		}
	}
}
