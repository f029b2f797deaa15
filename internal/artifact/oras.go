package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The artifact layout ORAS (oras push, oras-go's file store) writes and reads, so
// that oras and hubctl exchange artifacts: an empty JSON config, the artifact type in
// the manifest's artifactType, one layer per file named by its title annotation, and
// directories as tar+gzip layers marked for unpacking.
const (
	// EmptyConfigMediaType is the empty JSON config ("{}") of an artifact.
	EmptyConfigMediaType = "application/vnd.oci.empty.v1+json"
	// DefaultArtifactType is oras's artifact type when none is given.
	DefaultArtifactType = "application/vnd.unknown.artifact.v1"
	// FileMediaType is the media type of a file layer unless one is given.
	FileMediaType = "application/vnd.oci.image.layer.v1.tar"
	// DirMediaType is the media type of a directory layer (tar+gzip).
	DirMediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
	// AnnotationUnpack marks a layer to be unpacked into a directory of its title.
	AnnotationUnpack = "io.deis.oras.content.unpack"
	// AnnotationDigest is the digest of a directory layer's uncompressed tar.
	AnnotationDigest = "io.deis.oras.content.digest"
)

// File is a file or directory to put into an artifact.
type File struct {
	Path      string
	MediaType string // "" : FileMediaType (files) or DirMediaType (directories)
}

// ParseFile reads oras's "PATH[:MEDIATYPE]".
func ParseFile(s string) File {
	if i := strings.LastIndex(s, ":"); i > 0 && strings.Contains(s[i+1:], "/") && !strings.Contains(s[i+1:], string(filepath.Separator)+string(filepath.Separator)) {
		if _, err := os.Stat(s); err != nil {
			return File{Path: s[:i], MediaType: s[i+1:]}
		}
	}
	return File{Path: s}
}

// BuildOptions describe the artifact Build makes.
type BuildOptions struct {
	ArtifactType string            // "" : DefaultArtifactType
	Annotations  map[string]string // manifest annotations
	// Subject, when set, makes the artifact refer to that manifest (attach).
	Subject *ocispec.Descriptor
	// TempDir holds the tarballs of directories ("" : the system's).
	TempDir string
}

// Built is an artifact ready to push: its Source, and Cleanup to remove temporary
// tarballs once pushed.
type Built struct {
	*Source
	Cleanup func()
}

// Build lays files out as an ORAS artifact. Files are read when pushed, never held in
// memory; a directory is archived (tar+gzip) into a temporary file first.
func Build(files []File, o BuildOptions) (*Built, error) {
	var tmp []string
	cleanup := func() {
		for _, p := range tmp {
			_ = os.Remove(p)
		}
	}
	var layers []ocispec.Descriptor
	var blobs []Blob
	seen := map[string]bool{}
	for _, f := range files {
		title := filepath.Base(filepath.Clean(f.Path))
		if seen[title] {
			cleanup()
			return nil, fmt.Errorf("two files named %s: each file of an artifact needs a name of its own", title)
		}
		seen[title] = true
		fi, err := os.Stat(f.Path)
		if err != nil {
			cleanup()
			return nil, err
		}
		var b Blob
		if fi.IsDir() {
			p, d, inner, size, err := tarGz(f.Path, o.TempDir)
			if err != nil {
				cleanup()
				return nil, fmt.Errorf("archive %s: %w", f.Path, err)
			}
			tmp = append(tmp, p)
			mt := f.MediaType
			if mt == "" {
				mt = DirMediaType
			}
			b = fileBlob(p, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size, Annotations: map[string]string{
				ocispec.AnnotationTitle: title, AnnotationUnpack: "true", AnnotationDigest: inner.String()}})
		} else {
			d, err := fileDigest(f.Path)
			if err != nil {
				cleanup()
				return nil, err
			}
			mt := f.MediaType
			if mt == "" {
				mt = FileMediaType
			}
			b = fileBlob(f.Path, ocispec.Descriptor{MediaType: mt, Digest: d, Size: fi.Size(),
				Annotations: map[string]string{ocispec.AnnotationTitle: title}})
		}
		layers = append(layers, b.Desc)
		blobs = append(blobs, b)
	}
	cfg := BytesBlob(EmptyConfigMediaType, []byte("{}"))
	cfg.Desc.Data = []byte("{}")
	blobs = append(blobs, cfg)
	at := o.ArtifactType
	if at == "" {
		at = DefaultArtifactType
	}
	ann := map[string]string{ocispec.AnnotationCreated: time.Now().UTC().Format(time.RFC3339)}
	for k, v := range o.Annotations {
		ann[k] = v
	}
	if len(layers) == 0 {
		// The spec's empty layer, as oras writes for an artifact of no files.
		layers = append(layers, cfg.Desc)
	}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: at,
		Config:       cfg.Desc,
		Layers:       layers,
		Subject:      o.Subject,
		Annotations:  ann,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		cleanup()
		return nil, err
	}
	return &Built{Source: NewSource(ocispec.MediaTypeImageManifest, raw, blobs), Cleanup: cleanup}, nil
}

func fileBlob(p string, d ocispec.Descriptor) Blob {
	return Blob{Desc: d, Open: func() (io.ReadCloser, error) { return os.Open(p) }}
}

func fileDigest(p string) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digest.SHA256.FromReader(f)
}

// tarGz archives dir (its contents, under its base name, as oras does) into a
// temporary file and returns the file, its digest, the digest of the tar inside and
// its size.
func tarGz(dir, tmpDir string) (string, digest.Digest, digest.Digest, int64, error) {
	f, err := os.CreateTemp(tmpDir, "hubctl-artifact-*.tar.gz")
	if err != nil {
		return "", "", "", 0, err
	}
	outer := sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(f, outer))
	inner := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, inner))
	base := filepath.Base(filepath.Clean(dir))
	err = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Join(base, rel))
		fi, err := de.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		// Reproducible: no owners, no access times.
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	size := int64(0)
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil {
			size = st.Size()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", "", "", 0, err
	}
	return f.Name(), digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(outer.Sum(nil))),
		digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(inner.Sum(nil))), size, nil
}

// Extract writes the files of a pulled artifact (manifest m, blobs in sink) into dir:
// each titled layer to dir/TITLE, layers marked for unpacking as the directory they
// hold. Layers without a title are skipped, as oras skips them. It returns the paths
// written.
func Extract(ctx context.Context, sink *Sink, m ocispec.Manifest, dir string) ([]string, error) {
	var out []string
	for _, l := range m.Layers {
		title := l.Annotations[ocispec.AnnotationTitle]
		if title == "" {
			continue
		}
		if err := safeName(title); err != nil {
			return out, err
		}
		src := sink.BlobPath(l.Digest)
		if src == "" {
			return out, fmt.Errorf("layer %s (%s) did not arrive", l.Digest, title)
		}
		dst := filepath.Join(dir, filepath.FromSlash(title))
		if l.Annotations[AnnotationUnpack] == "true" {
			if err := untarGz(ctx, src, dir, title); err != nil {
				return out, fmt.Errorf("unpack %s: %w", title, err)
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return out, err
			}
			if err := os.Rename(src, dst); err != nil {
				return out, err
			}
		}
		out = append(out, dst)
	}
	sort.Strings(out)
	return out, nil
}

// safeName refuses titles that would write outside the output directory.
func safeName(name string) error {
	c := filepath.ToSlash(filepath.Clean(filepath.FromSlash(name)))
	if filepath.IsAbs(name) || c == ".." || strings.HasPrefix(c, "../") || strings.HasPrefix(name, "/") || c == "." {
		return fmt.Errorf("refusing to write %q: outside the output directory", name)
	}
	return nil
}

// untarGz unpacks the tar+gzip at src into dir. Every entry must lie under top (the
// layer's title), as oras writes them; links may not point outside it.
func untarGz(ctx context.Context, src, dir, top string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Clean(hdr.Name))
		if err := safeName(name); err != nil {
			return err
		}
		if name != top && !strings.HasPrefix(name, top+"/") {
			return fmt.Errorf("entry %q is not under %q", hdr.Name, top)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fs.FileMode(hdr.Mode)&0o777)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			target := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(name), hdr.Linkname)))
			if filepath.IsAbs(hdr.Linkname) || (target != top && !strings.HasPrefix(target, top+"/")) {
				return fmt.Errorf("link %q points outside %q", hdr.Name, top)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
		default:
			// Devices, FIFOs and hard links are not build outputs; skip them.
		}
	}
}
