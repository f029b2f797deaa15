// Package artifact pushes and pulls OCI artifacts — charts, binaries, SBOMs, any build
// output — through hubctl's transfer engine: a Source serves an artifact built on the
// client (blobs read from memory or files as they are sent), a Sink receives a pulled
// one into files. On top of them it builds and reads ORAS-compatible artifacts (file
// names in org.opencontainers.image.title, directories as tar+gzip) and walks
// referrers.
package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/imagestore"
)

// Blob is a blob of an artifact to push: its descriptor and how to read it.
type Blob struct {
	Desc ocispec.Descriptor
	Open func() (io.ReadCloser, error)
}

// BytesBlob is a Blob held in memory.
func BytesBlob(mediaType string, data []byte) Blob {
	return Blob{
		Desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))},
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// Source is an artifact built on the client, as an imagestore.Source.
type Source struct {
	desc     ocispec.Descriptor
	manifest []byte
	blobs    map[digest.Digest]Blob
}

var _ imagestore.Source = (*Source)(nil)

// NewSource serves manifest (of mediaType) and blobs.
func NewSource(mediaType string, manifest []byte, blobs []Blob) *Source {
	s := &Source{
		desc:     ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))},
		manifest: manifest,
		blobs:    map[digest.Digest]Blob{},
	}
	for _, b := range blobs {
		s.blobs[b.Desc.Digest] = b
	}
	return s
}

// Descriptor describes the manifest.
func (s *Source) Descriptor() ocispec.Descriptor { return s.desc }

// Root implements imagestore.Source.
func (s *Source) Root(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	return s.desc, s.manifest, nil
}

// Manifest implements imagestore.Source.
func (s *Source) Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Digest != s.desc.Digest {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, imagestore.ErrNotFound)
	}
	return s.manifest, nil
}

// Blob implements imagestore.Source.
func (s *Source) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := s.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, imagestore.ErrNotFound)
	}
	return b.Open()
}

// Close implements imagestore.Source.
func (s *Source) Close() error { return nil }

// Sink receives a pulled artifact: every blob into a file of a work directory (the
// engine checks each digest as the bytes arrive), manifests in memory. It is an
// imagestore.Target; after the copy, Blob and Root give what arrived.
type Sink struct {
	dir string

	mu        sync.Mutex
	files     map[digest.Digest]string
	manifests map[digest.Digest][]byte
	root      ocispec.Descriptor
}

var _ imagestore.Target = (*Sink)(nil)

// NewSink returns a sink writing into a new work directory under dir, which Cleanup
// removes.
func NewSink(dir string) (*Sink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(dir, ".hubctl-pull-")
	if err != nil {
		return nil, err
	}
	return &Sink{dir: work, files: map[digest.Digest]string{}, manifests: map[digest.Digest][]byte{}}, nil
}

// Cleanup removes the work directory and what is left in it.
func (s *Sink) Cleanup() { _ = os.RemoveAll(s.dir) }

// HasBlob implements imagestore.Target: a sink starts empty.
func (s *Sink) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) { return false, nil }

// HasManifest implements imagestore.Target.
func (s *Sink) HasManifest(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	return false, nil
}

// PutBlob implements imagestore.Target.
func (s *Sink) PutBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	if err := desc.Digest.Validate(); err != nil {
		return err
	}
	name := filepath.Join(s.dir, desc.Digest.Encoded())
	f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.mu.Lock()
	s.files[desc.Digest] = name
	s.mu.Unlock()
	return nil
}

// PutManifest implements imagestore.Target; the last one put is the root.
func (s *Sink) PutManifest(ctx context.Context, desc ocispec.Descriptor, raw []byte, tag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manifests[desc.Digest] = raw
	s.root = desc
	return nil
}

// Close implements imagestore.Target.
func (s *Sink) Close(err error) error { return nil }

// Root returns the manifest the copy put last (the root) and its descriptor.
func (s *Sink) Root() (ocispec.Descriptor, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.root, s.manifests[s.root.Digest]
}

// BlobPath is the file holding blob d, "" if it did not arrive.
func (s *Sink) BlobPath(d digest.Digest) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[d]
}

// ParseManifest reads an image manifest (the form artifacts take).
func ParseManifest(raw []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("not an OCI manifest: %w", err)
	}
	return m, nil
}
