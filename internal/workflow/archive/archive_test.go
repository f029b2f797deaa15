package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type entry struct {
	typ      byte
	name     string
	link     string
	body     string
	declared int64 // size in the header when not len(body)
}

func makeTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestExtractRefusesAttacks: what an attacker's job could put in an artifact tar to
// write outside the directory it is extracted into is refused, and nothing lands
// outside; Check refuses the same entries.
func TestExtractRefusesAttacks(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
		want    error
	}{
		{"absolute path", []entry{{typ: tar.TypeReg, name: "/tmp/evil", body: "x"}}, ErrUnsafe},
		{"dot-dot", []entry{{typ: tar.TypeReg, name: "a/../../evil", body: "x"}}, ErrUnsafe},
		{"dot-dot alone", []entry{{typ: tar.TypeReg, name: "../evil", body: "x"}}, ErrUnsafe},
		{"symlink to absolute", []entry{{typ: tar.TypeSymlink, name: "l", link: "/etc"}}, ErrUnsafe},
		{"symlink climbing out", []entry{{typ: tar.TypeSymlink, name: "a/l", link: "../../outside"}}, ErrUnsafe},
		{"file through a symlink", []entry{
			{typ: tar.TypeSymlink, name: "l", link: "."},
			{typ: tar.TypeReg, name: "l/evil", body: "x"}}, ErrUnsafe},
		{"hard link to absolute", []entry{{typ: tar.TypeLink, name: "h", link: "/etc/passwd"}}, ErrUnsafe},
		{"hard link climbing out", []entry{{typ: tar.TypeLink, name: "h", link: "../x"}}, ErrUnsafe},
		{"char device", []entry{{typ: tar.TypeChar, name: "null"}}, ErrUnsafe},
		{"block device", []entry{{typ: tar.TypeBlock, name: "sda"}}, ErrUnsafe},
		{"fifo", []entry{{typ: tar.TypeFifo, name: "pipe"}}, ErrUnsafe},
		{"too large", []entry{{typ: tar.TypeReg, name: "big", body: string(make([]byte, 2048))}}, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "in")
			data := makeTar(t, tc.entries...)
			err := Extract(bytes.NewReader(data), dir, Limits{Bytes: 1024})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Extract: got %v, want %v", err, tc.want)
			}
			for _, p := range []string{"evil", "outside", "x"} {
				if _, err := os.Lstat(filepath.Join(parent, p)); err == nil {
					t.Fatalf("%s was written outside the target", p)
				}
			}
			if err := Check(&bytes.Buffer{}, bytes.NewReader(data), Limits{Bytes: 1024}); !errors.Is(err, tc.want) {
				t.Fatalf("Check: got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestExtractDoesNotFollowLinksOnDisk: a symbolic link already in the target (left by
// an earlier step) pointing outside is not written through.
func TestExtractDoesNotFollowLinksOnDisk(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "in")
	outside := filepath.Join(parent, "outside")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	err := Extract(bytes.NewReader(makeTar(t, entry{typ: tar.TypeReg, name: "d/evil", body: "x"})), dir, Limits{})
	if err == nil {
		t.Fatal("a file was written through a symbolic link on disk")
	}
	if _, err := os.Lstat(filepath.Join(outside, "evil")); err == nil {
		t.Fatal("the file landed outside the target")
	}
	// A link that is itself the entry's name is replaced, not written through.
	if err := os.Symlink(filepath.Join(outside, "f"), filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if err := Extract(bytes.NewReader(makeTar(t, entry{typ: tar.TypeReg, name: "f", body: "ok"})), dir, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "f")); err == nil {
		t.Fatal("a file was written through the link it replaced")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "ok" {
		t.Fatalf("f holds %q", b)
	}
}

// TestCreateExtractRoundTrip: Create names entries from the path's base name, keeps
// links inside as links, and Extract gives the same tree back.
func TestCreateExtractRoundTrip(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "build", "dist", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "build", "dist", "a.txt"), []byte("alpha"), 0o644))
	must(os.WriteFile(filepath.Join(src, "build", "dist", "sub", "b.txt"), []byte("beta"), 0o600))
	must(os.Symlink("a.txt", filepath.Join(src, "build", "dist", "link")))
	var buf bytes.Buffer
	must(Create(&buf, src, "build/dist", Limits{}))
	var checked bytes.Buffer
	must(Check(&checked, bytes.NewReader(buf.Bytes()), Limits{}))
	dst := t.TempDir()
	must(Extract(&checked, dst, Limits{}))
	for p, want := range map[string]string{"dist/a.txt": "alpha", "dist/sub/b.txt": "beta", "dist/link": "alpha"} {
		b, err := os.ReadFile(filepath.Join(dst, p))
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v", p, b, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "dist", "link")); err != nil || target != "a.txt" {
		t.Fatalf("link: %q, %v", target, err)
	}
	if err := Create(&bytes.Buffer{}, src, "build/dist", Limits{Bytes: 6}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Create past the limit: %v", err)
	}
	if err := Create(&bytes.Buffer{}, src, "../x", Limits{}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Create of ../x: %v", err)
	}
}

// TestStripTop: a cache's tar is extracted into the cache path itself; a link that
// stays inside before the strip but would leave after it is refused.
func TestStripTop(t *testing.T) {
	data := makeTar(t, entry{typ: tar.TypeDir, name: "cache/"}, entry{typ: tar.TypeReg, name: "cache/a/x", body: "x"},
		entry{typ: tar.TypeLink, name: "cache/h", link: "cache/a/x"})
	dst := t.TempDir()
	var checked bytes.Buffer
	if err := Check(&checked, bytes.NewReader(data), Limits{StripTop: true}); err != nil {
		t.Fatal(err)
	}
	if err := Extract(&checked, dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/x", "h"} {
		if b, err := os.ReadFile(filepath.Join(dst, p)); err != nil || string(b) != "x" {
			t.Fatalf("%s: %q %v", p, b, err)
		}
	}
	evil := makeTar(t, entry{typ: tar.TypeSymlink, name: "cache/l", link: "../x"})
	if err := Extract(bytes.NewReader(evil), t.TempDir(), Limits{StripTop: true}); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("a link leaving the cache after the strip: %v", err)
	}
}
