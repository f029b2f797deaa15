// Package agentimage is the image the Kubernetes executor of workflows runs `hubctl
// workflow-agent` in (the init container that restores a job's artifacts, the last
// container that saves them): hubctl's own binary at /hubctl, FROM scratch
// (internal/selfimage). `hubctl serve` publishes it itself, straight into its own
// blob and metadata stores, as Repository in accounts.SystemNamespace, where nobody
// may push or delete and everybody may pull, and hands the executor its reference
// pinned by digest (docs/design/workflows.md, "The agent image").
package agentimage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/tracked"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/selfimage"
)

// Repository is where the hub keeps the agent image: in its system namespace.
const Repository = accounts.SystemNamespace + "/workflow-agent"

// Actor is who the store's events and audit entries say published the image.
const Actor = "hubctl"

// Spec is the agent image's selfimage.Spec: the executor gives each container its
// whole command (`/hubctl workflow-agent restore|save …`).
func Spec() selfimage.Spec {
	return selfimage.Spec{Name: "agent image", Entrypoint: []string{selfimage.BinaryPath, "workflow-agent"}}
}

// Build makes the agent image from the hubctl executable (the running one unless
// selfimage.WithBinary says another). It refuses a binary that is not a static
// Linux ELF executable.
func Build(ctx context.Context, opts ...selfimage.Option) (*selfimage.Image, error) {
	return selfimage.Build(ctx, Spec(), opts...)
}

// Tag is the tag the image of hubctl version gets: the version and the manifest's
// digest, so that one tag never moves to another image (an untagged manifest would be
// garbage collected under a replica still running the older binary).
func Tag(version string, d digest.Digest) string {
	return selfimage.Tag(version) + "-" + d.Encoded()[:12]
}

// Reference is the agent image as pods pull it: the host of the hub's external URL,
// Repository, pinned by digest.
func Reference(externalURL string, d digest.Digest) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(externalURL, "/"))
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("agent image: external URL %q: want scheme://host[:port]", externalURL)
	}
	return u.Host + "/" + Repository + "@" + d.String(), nil
}

// Store is what Publish needs of the metadata store.
type Store interface {
	tracked.Sessions
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	GetManifest(ctx context.Context, repo string, d digest.Digest) (metadata.Manifest, error)
	GetBlob(ctx context.Context, d digest.Digest) (metadata.Blob, error)
	RepositoryBlob(ctx context.Context, repo string, d digest.Digest) (metadata.Blob, error)
	PinBlob(ctx context.Context, d digest.Digest, size int64) (time.Time, error)
	CommitBlob(ctx context.Context, repo string, b metadata.Blob, pinnedAt time.Time) (string, error)
	PutManifest(ctx context.Context, m metadata.Manifest, refs metadata.References, tag string) (metadata.PutManifestResult, error)
}

// Published is what Publish did.
type Published struct {
	// Digest is the image manifest's.
	Digest digest.Digest
	// Tag is the tag it has in Repository.
	Tag string
	// Blobs is how many blobs this call stored or linked; Manifest whether it stored
	// the manifest or its tag. Both zero/false: the hub had the image already.
	Blobs    int
	Manifest bool
}

// reclaimRetries bounds how often a blob that garbage collection took between its pin
// and its commit is stored again.
const reclaimRetries = 3

// Publish writes img into the hub's stores as Repository:tag, as a push would (blobs
// pinned, stored through the tracked put, committed and linked; then the manifest and
// its tag in one transaction), without going through HTTP. An image the repository
// holds already under tag writes nothing. Replicas publishing at once are safe: each
// step is one the registry's own concurrent pushes of one image take.
func Publish(ctx context.Context, st Store, blobs blobstore.Store, img *selfimage.Image, tag string, log *slog.Logger) (Published, error) {
	out := Published{Digest: img.Desc.Digest, Tag: tag}
	if d, err := st.ResolveTag(ctx, Repository, tag); err == nil && d == img.Desc.Digest {
		if _, err := st.GetManifest(ctx, Repository, d); err == nil {
			return out, nil
		}
	}
	ctx = events.WithActor(ctx, events.Actor{Name: Actor})
	layers := []ocispec.Descriptor{img.ConfigDesc, {MediaType: img.Layer.MediaType, Digest: img.Layer.Digest, Size: img.Layer.Size}}
	for _, desc := range layers {
		wrote, err := putBlob(ctx, st, blobs, img, desc, log)
		if err != nil {
			return out, fmt.Errorf("agent image: blob %s: %w", desc.Digest, err)
		}
		if wrote {
			out.Blobs++
		}
	}
	res, err := st.PutManifest(ctx, metadata.Manifest{Repository: Repository, Digest: img.Desc.Digest, MediaType: img.Desc.MediaType,
		Size: img.Desc.Size, Payload: img.Raw}, metadata.References{Blobs: []digest.Digest{img.ConfigDesc.Digest, img.Layer.Digest}}, tag)
	if err != nil {
		return out, fmt.Errorf("agent image: manifest %s: %w", img.Desc.Digest, err)
	}
	out.Manifest = res.Created || res.TagMoved
	return out, nil
}

// putBlob links blob desc of img into Repository, storing its bytes unless the hub
// has them; it reports whether it changed anything.
func putBlob(ctx context.Context, st Store, blobs blobstore.Store, img *selfimage.Image, desc ocispec.Descriptor, log *slog.Logger) (bool, error) {
	if _, err := st.RepositoryBlob(ctx, Repository, desc.Digest); err == nil {
		return false, nil
	} else if !errors.Is(err, metadata.ErrBlobNotFound) {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		// The pin keeps garbage collection off the blob from here to the commit.
		pinned, err := st.PinBlob(ctx, desc.Digest, desc.Size)
		if err != nil {
			return false, err
		}
		stored := false
		if b, err := st.GetBlob(ctx, desc.Digest); err == nil {
			if _, err := blobs.Stat(ctx, desc.Digest, b.Location); err == nil {
				stored = true
			}
		}
		if !stored {
			rc, err := img.Blob(ctx, desc)
			if err != nil {
				return false, err
			}
			_, err = tracked.Put(ctx, st, blobs, Repository, desc.Digest, rc, desc.Size, log)
			rc.Close()
			if err != nil {
				return false, err
			}
		}
		_, err = st.CommitBlob(ctx, Repository, metadata.Blob{Digest: desc.Digest, Size: desc.Size}, pinned)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, metadata.ErrBlobReclaimed) || attempt == reclaimRetries {
			return false, err
		}
	}
}
