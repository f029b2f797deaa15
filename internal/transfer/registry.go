package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/imagestore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// registryStore is a repository on a registry, as a Source and a Target.
type registryStore struct {
	c   *distclient.Client
	ref distclient.Ref
}

func (r *registryStore) Root(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	desc, raw, err := r.c.GetManifest(ctx, r.ref)
	return desc, raw, notFound(err)
}

func (r *registryStore) Manifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	_, raw, err := r.c.GetManifest(ctx, distclient.Ref{Repo: r.ref.Repo, Digest: desc.Digest.String()})
	return raw, notFound(err)
}

func (r *registryStore) Blob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := r.c.GetBlob(ctx, r.ref.Repo, desc.Digest)
	return rc, notFound(err)
}

func (r *registryStore) HasBlob(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	return r.c.BlobExists(ctx, r.ref.Repo, desc.Digest, distclient.PushScope(r.ref.Path))
}

func (r *registryStore) PutBlob(ctx context.Context, desc ocispec.Descriptor, rd io.Reader) error {
	return r.c.UploadBlob(ctx, r.ref.Repo, desc.Digest, desc.Size, rd, "")
}

// mount links a blob from another repository of the same registry; when the registry
// declines it opened an upload session, used for the upload that follows.
func (r *registryStore) mount(ctx context.Context, desc ocispec.Descriptor, from string) (bool, string, error) {
	return r.c.MountBlob(ctx, r.ref.Repo, desc.Digest, from)
}

func (r *registryStore) uploadAt(ctx context.Context, desc ocispec.Descriptor, rd io.Reader, location string) error {
	return r.c.UploadBlob(ctx, r.ref.Repo, desc.Digest, desc.Size, rd, location)
}

func (r *registryStore) HasManifest(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	_, err := r.c.HeadManifest(ctx, distclient.Ref{Repo: r.ref.Repo, Digest: desc.Digest.String()})
	if errors.Is(err, distclient.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// tagDigest is the digest the tag points at, "" when the tag does not exist.
func (r *registryStore) tagDigest(ctx context.Context, tag string) (string, error) {
	desc, err := r.c.HeadManifest(ctx, distclient.Ref{Repo: r.ref.Repo, Tag: tag})
	if errors.Is(err, distclient.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

func (r *registryStore) PutManifest(ctx context.Context, desc ocispec.Descriptor, raw []byte, tag string) error {
	ref := distclient.Ref{Repo: r.ref.Repo, Tag: tag}
	if tag == "" {
		ref.Digest = desc.Digest.String()
	}
	recorded, err := r.c.PutManifest(ctx, ref, desc.MediaType, raw)
	if err != nil {
		return err
	}
	var probe struct {
		Subject      *ocispec.Descriptor `json:"subject"`
		ArtifactType string              `json:"artifactType"`
		Config       ocispec.Descriptor  `json:"config"`
		Annotations  map[string]string   `json:"annotations"`
	}
	if recorded || json.Unmarshal(raw, &probe) != nil || probe.Subject == nil {
		return nil
	}
	// A registry without the referrers API: keep the tag schema's index up to date
	// so clients that look there find the referrer.
	entry := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size,
		ArtifactType: probe.ArtifactType, Annotations: probe.Annotations}
	if entry.ArtifactType == "" {
		entry.ArtifactType = probe.Config.MediaType
	}
	return r.addFallbackReferrer(ctx, *probe.Subject, entry)
}

func (r *registryStore) addFallbackReferrer(ctx context.Context, subject, entry ocispec.Descriptor) error {
	ref := distclient.Ref{Repo: r.ref.Repo, Tag: distclient.FallbackTag(subject.Digest)}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	_, raw, err := r.c.GetManifest(ctx, ref)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("referrers tag %s: %w", ref, err)
		}
	case !errors.Is(err, distclient.ErrNotFound):
		return err
	}
	for _, m := range idx.Manifests {
		if m.Digest == entry.Digest {
			return nil
		}
	}
	idx.Manifests = append(idx.Manifests, entry)
	out, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	_, err = r.c.PutManifest(ctx, ref, ocispec.MediaTypeImageIndex, out)
	return err
}

func (r *registryStore) referrers(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	return r.c.Referrers(ctx, r.ref.Repo, desc.Digest)
}

func (r *registryStore) VerifiesDigests() bool { return true }

func (r *registryStore) Close(error) error { return nil }

// registrySource is a registryStore read as a Source (whose Close takes no error).
type registrySource struct{ *registryStore }

func (registrySource) Close() error { return nil }

// notFound makes a registry 404 match imagestore.ErrNotFound, keeping its message.
func notFound(err error) error {
	if err != nil && errors.Is(err, distclient.ErrNotFound) {
		return notFoundError{err}
	}
	return err
}

type notFoundError struct{ error }

func (e notFoundError) Unwrap() error        { return e.error }
func (e notFoundError) Is(target error) bool { return target == imagestore.ErrNotFound }
