package dockerarchive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest and index media types PutManifest tells apart.
const (
	mediaTypeDockerList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// ErrIndex is PutManifest given an index: a docker archive holds one image.
var ErrIndex = errors.New("docker-archive holds a single image; choose a platform")

// epoch is the modification time of every entry, so the same image makes the same tar.
var epoch = time.Unix(0, 0)

// Writer writes a docker-archive, the format `docker load` reads, as an
// imagestore.Target. It takes blobs one at a time, in the order they arrive.
type Writer struct {
	ref    string
	refErr error

	mu    sync.Mutex
	cw    *countWriter
	tw    *tar.Writer
	file  *os.File // Create's temp file, renamed at Close(nil)
	final string   // Create's destination
	blobs map[digest.Digest]string
	image *ocispec.Manifest
	imgD  digest.Digest
	err   error // a stream that took bad bytes cannot be used again
	done  bool
}

// NewWriter returns a Writer that writes the archive to w, tagging the image ref
// (normalised: "app" becomes "app:latest"); an empty ref leaves it untagged. The
// caller closes w after Close.
func NewWriter(w io.Writer, ref string) *Writer {
	cw := &countWriter{w: w}
	x := &Writer{cw: cw, tw: tar.NewWriter(cw), blobs: map[digest.Digest]string{}}
	if ref != "" {
		x.ref, x.refErr = NormalizeRef(ref)
	}
	return x
}

// Create returns a Writer that writes FILE atomically: to a temp file beside it,
// synced and renamed at Close(nil), removed at Close(err).
func Create(file, ref string) (*Writer, error) {
	if ref != "" {
		if _, err := NormalizeRef(ref); err != nil {
			return nil, fmt.Errorf("docker-archive %s: %w", file, err)
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".tmp-"+hex.EncodeToString(rnd[:]))
	// OpenFile rather than CreateTemp so the archive gets the umask's permissions.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, fmt.Errorf("docker-archive %s: %w", file, err)
	}
	w := NewWriter(f, ref)
	w.file, w.final = f, file
	return w, nil
}

// Sequential reports that blobs must come one at a time: they go into one tar stream.
func (w *Writer) Sequential() bool { return true }

// SinglePlatform reports that the archive holds one image manifest, not an index.
func (w *Writer) SinglePlatform() bool { return true }

// VerifiesDigests reports that PutBlob hashes what it writes.
func (w *Writer) VerifiesDigests() bool { return true }

// HasBlob reports whether the blob is already in the archive.
func (w *Writer) HasBlob(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.blobs[desc.Digest]
	return ok, nil
}

// Omit records that the archive leaves the layer out on purpose: manifest.json still
// names it (as <hex>.tar), but no entry holds it. Only for docker load into an engine
// that has the layer already (dockerdaemon.Target).
func (w *Writer) Omit(desc ocispec.Descriptor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.blobs[desc.Digest]; !ok {
		w.blobs[desc.Digest] = desc.Digest.Encoded() + ".tar"
	}
}

// HasManifest reports whether PutManifest took this manifest already.
func (w *Writer) HasManifest(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.image != nil && w.imgD == desc.Digest, nil
}

// PutBlob writes the blob as a tar entry, hashing it on the way. On a digest
// mismatch a file archive is cut back to before the entry; a stream has already
// carried the bytes, so the Writer fails from then on and must be closed with an error.
func (w *Writer) PutBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if desc.Size < 0 {
		return fmt.Errorf("blob %s: negative size %d", desc.Digest, desc.Size)
	}
	if _, ok := w.blobs[desc.Digest]; ok {
		return nil
	}
	br := bufio.NewReader(&ctxReader{ctx: ctx, r: r})
	head, _ := br.Peek(4)
	name := desc.Digest.Encoded() + blobExt(desc.MediaType, head)
	start := w.cw.n
	err := w.writeEntry(name, desc, br)
	if err == nil {
		w.blobs[desc.Digest] = name
		return nil
	}
	if w.file != nil {
		// Cut the partial entry off so the archive stays well formed.
		if terr := w.rewind(start); terr != nil {
			w.err = terr
		}
	} else {
		w.err = fmt.Errorf("the docker-archive stream is broken by an earlier error: %w", err)
	}
	return err
}

// writeEntry writes one blob entry and checks its size and digest.
func (w *Writer) writeEntry(name string, desc ocispec.Descriptor, r io.Reader) error {
	if err := w.tw.WriteHeader(tarHeader(name, desc.Size)); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	v := desc.Digest.Verifier()
	n, err := io.CopyN(io.MultiWriter(w.tw, v), r, desc.Size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("got %d of %d bytes: %w", n, desc.Size, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: %w", desc.Digest, imagestore.ErrDigest)
	}
	return w.tw.Flush()
}

// rewind truncates Create's temp file to off, an entry boundary, and starts a
// fresh tar.Writer there: tar.Writer keeps no state across flushed entries.
func (w *Writer) rewind(off int64) error {
	if err := w.file.Truncate(off); err != nil {
		return err
	}
	if _, err := w.file.Seek(off, io.SeekStart); err != nil {
		return err
	}
	w.cw.n = off
	w.tw = tar.NewWriter(w.cw)
	return nil
}

// blobExt names a blob's entry after its media type, or its first bytes when the
// media type says nothing.
func blobExt(mediaType string, head []byte) string {
	switch {
	case strings.HasSuffix(mediaType, "json"):
		return ".json"
	case strings.HasSuffix(mediaType, "gzip"):
		return ".tar.gz"
	case strings.HasSuffix(mediaType, "zstd"):
		return ".tar.zst"
	case strings.HasSuffix(mediaType, ".tar") || strings.HasSuffix(mediaType, "rootfs.diff.tar"):
		return ".tar"
	case bytes.HasPrefix(head, gzipMagic):
		return ".tar.gz"
	case bytes.HasPrefix(head, zstdMagic):
		return ".tar.zst"
	case bytes.HasPrefix(head, []byte("{")):
		return ".json"
	}
	return ".tar"
}

// tarHeader is the header of every entry: nothing that varies between runs.
func tarHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
}

// PutManifest records which blob is the config and which are the layers. It takes
// a Docker v2 schema 2 or OCI image manifest; an index is refused with ErrIndex.
// The archive's tag comes from the Writer's ref, not from tag.
func (w *Writer) PutManifest(_ context.Context, desc ocispec.Descriptor, raw []byte, _ string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if desc.Digest != "" {
		if err := desc.Digest.Validate(); err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if desc.Digest.Algorithm().FromBytes(raw) != desc.Digest {
			return fmt.Errorf("manifest %s: %w", desc.Digest, imagestore.ErrDigest)
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	mt := desc.MediaType
	if mt == "" {
		mt = m.MediaType
	}
	switch mt {
	case MediaTypeManifest, ocispec.MediaTypeImageManifest:
	case mediaTypeDockerList, ocispec.MediaTypeImageIndex:
		return ErrIndex
	default:
		if m.MediaType == "" && m.Config.Digest == "" {
			return fmt.Errorf("manifest %s: media type %q is not an image manifest", desc.Digest, mt)
		}
	}
	if m.Config.Digest == "" {
		return fmt.Errorf("manifest %s has no config", desc.Digest)
	}
	d := desc.Digest
	if d == "" {
		d = digest.FromBytes(raw)
	}
	if w.image != nil && w.imgD != d {
		return fmt.Errorf("manifest %s: %w (it has %s already)", d, ErrIndex, w.imgD)
	}
	w.image, w.imgD = &m, d
	return nil
}

func (w *Writer) usable() error {
	switch {
	case w.done:
		return errors.New("docker-archive: writer is closed")
	case w.refErr != nil:
		return w.refErr
	}
	return w.err
}

// Close with a nil err writes manifest.json and ends the tar; for Create it syncs
// the temp file and renames it to FILE. With an error it discards what was written.
func (w *Writer) Close(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	if err == nil {
		err = w.finish()
		if err == nil {
			return nil
		}
	}
	if w.file != nil {
		w.file.Close()
		os.Remove(w.file.Name())
	}
	return err
}

// finish writes manifest.json and, for Create, moves the archive into place.
func (w *Writer) finish() error {
	if err := w.refErr; err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if w.image == nil {
		return errors.New("docker-archive: no image manifest was written")
	}
	e := manifestEntry{RepoTags: []string{}, Layers: []string{}}
	if w.ref != "" {
		e.RepoTags = []string{w.ref}
	}
	var missing []string
	name := func(d digest.Digest) string {
		n, ok := w.blobs[d]
		if !ok {
			missing = append(missing, d.String())
		}
		return n
	}
	e.Config = name(w.image.Config.Digest)
	for _, l := range w.image.Layers {
		e.Layers = append(e.Layers, name(l.Digest))
	}
	if len(missing) > 0 {
		return fmt.Errorf("docker-archive: the image's blobs %s were not written", strings.Join(missing, ", "))
	}
	raw, err := json.Marshal([]manifestEntry{e})
	if err != nil {
		return err
	}
	if err := w.tw.WriteHeader(tarHeader("manifest.json", int64(len(raw)))); err != nil {
		return err
	}
	if _, err := w.tw.Write(raw); err != nil {
		return err
	}
	if err := w.tw.Close(); err != nil {
		return err
	}
	if w.file == nil {
		return nil
	}
	if err := w.file.Sync(); err != nil {
		return err
	}
	if err := w.file.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.file.Name(), w.final); err != nil {
		os.Remove(w.file.Name())
		return err
	}
	w.file = nil
	return nil
}
