// Package imagestore defines what the transfer engine reads images from and writes
// them to: the Source and Target method sets, and the errors they share. Registries,
// OCI layouts, archives and the Docker engine implement them in their own packages.
package imagestore

import (
	"context"
	"errors"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Source is where images are read from: a registry repository, an OCI layout, an
// archive or the Docker engine. Implementations live in their own packages.
type Source interface {
	// Root returns the descriptor and bytes of the manifest or index the location
	// names (its tag or digest).
	Root(ctx context.Context) (ocispec.Descriptor, []byte, error)
	// Manifest returns the bytes of the manifest or index desc names, verified
	// against desc.Digest.
	Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)
	// Blob opens the content of a layer or config blob. Sources that cannot vouch for
	// the bytes (a registry) may return unverified streams: the engine verifies
	// whatever the target does not.
	Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
	// Close releases what the source holds (open files, temp files).
	Close() error
}

// Target is where images are written.
type Target interface {
	// HasBlob reports whether the target already holds the blob.
	HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	// PutBlob stores the blob read from r, which yields exactly desc.Size bytes. A
	// target that verifies the digest itself returns an error wrapping ErrDigest
	// on a mismatch and keeps nothing.
	PutBlob(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error
	// HasManifest reports whether the target holds the manifest with desc.Digest.
	HasManifest(ctx context.Context, desc ocispec.Descriptor) (bool, error)
	// PutManifest stores a manifest or index; tag is the name to give it, empty for
	// a child stored by digest only.
	PutManifest(ctx context.Context, desc ocispec.Descriptor, raw []byte, tag string) error
	// Close finishes the target (writes an archive's index, loads into the engine)
	// when err is nil, or discards what was written when it is not.
	Close(err error) error
}

// Sequential is implemented by targets that can take only one blob at a time (a tar
// stream), so the engine does not run uploads in parallel for them.
type Sequential interface {
	Sequential() bool
}

// SinglePlatform is implemented by targets that hold one image manifest, not an index
// (docker-archive, the Docker engine): the engine picks one platform for them.
type SinglePlatform interface {
	SinglePlatform() bool
}

// VerifiesDigests is implemented by targets that check every blob's digest themselves
// (a registry must, by the distribution spec), so the engine need not hash the bytes
// on the way through.
type VerifiesDigests interface {
	VerifiesDigests() bool
}

// ManifestFirst is implemented by targets that want an image manifest before its
// blobs (the Docker engine: to tell which layers it already has from the config's diff
// IDs). The engine calls ExpectManifest before it moves the blobs of an image manifest.
type ManifestFirst interface {
	ExpectManifest(ctx context.Context, desc ocispec.Descriptor, raw []byte) error
}

// BlobOrigin is implemented by sources some of whose blobs live in a registry
// repository other than the source (a build's base layers stay in the base's
// repository), so the engine mounts them there instead of sending their bytes.
type BlobOrigin interface {
	// BlobOrigin names the registry host and repository path that hold the blob.
	BlobOrigin(desc ocispec.Descriptor) (host, repo string, ok bool)
}

// ErrDigest is a blob or manifest whose bytes do not match their digest.
var ErrDigest = errors.New("content does not match its digest")

// ErrNotFound is a manifest, tag or blob the location does not have.
var ErrNotFound = errors.New("not found")
