// Package searchindex reads what a repository is found by besides its name — its
// kind, and the description and labels of the image config (or chart) last pushed
// under a tag — and records it in the store's search index
// (metadata.Searcher.SetSearchDoc): on the push path, as a registry.ArtifactHook, and
// once for what was stored before search existed (Backfill). docs/design/web.md,
// slice 2.
package searchindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata"
)

// MaxConfigSize bounds the config blob read for its labels: configs are a few KiB;
// a larger one is indexed without labels rather than read.
const MaxConfigSize = 1 << 20

// DescriptionLabel is the label (or manifest annotation) a repository's description
// comes from.
const DescriptionLabel = "org.opencontainers.image.description"

// Media types the kind is told by.
const (
	ociIndex     = "application/vnd.oci.image.index.v1+json"
	dockerList   = "application/vnd.docker.distribution.manifest.list.v2+json"
	ociConfig    = "application/vnd.oci.image.config.v1+json"
	dockerConfig = "application/vnd.docker.container.image.v1+json"
	helmConfig   = "application/vnd.cncf.helm.config.v1+json"
)

// Store is what the indexer needs of the metadata store.
type Store interface {
	SetSearchDoc(ctx context.Context, repo string, doc metadata.SearchDoc) error
	PendingSearchDocs(ctx context.Context, after int64, n int) ([]metadata.PendingSearchDoc, error)
	GetManifest(ctx context.Context, repo string, d digest.Digest) (metadata.Manifest, error)
	RepositoryBlob(ctx context.Context, repo string, d digest.Digest) (metadata.Blob, error)
}

// Indexer indexes repositories; Store and Blobs are required.
type Indexer struct {
	Store Store
	Blobs blobstore.Store
	Log   *slog.Logger
}

func (ix *Indexer) log() *slog.Logger {
	if ix.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return ix.Log
}

// CheckManifest is the registry's artifact hook: a manifest put under a tag is
// indexed once it is stored. Indexing never refuses or fails a push: a config that
// cannot be read is logged and the repository keeps its earlier entry.
func (ix *Indexer) CheckManifest(_ context.Context, m metadata.Manifest, tags []string) (func(context.Context) error, error) {
	tagged := false
	for _, t := range tags {
		tagged = tagged || t != ""
	}
	if !tagged {
		return nil, nil
	}
	return func(ctx context.Context) error {
		if err := ix.Index(ctx, m); err != nil {
			ix.log().WarnContext(ctx, "search: index pushed manifest", "repo", m.Repository, "digest", m.Digest.String(), "err", err)
		}
		return nil
	}, nil
}

// Index records m (with Payload) as what its repository is found by.
func (ix *Indexer) Index(ctx context.Context, m metadata.Manifest) error {
	doc, err := ix.Doc(ctx, m)
	if err != nil {
		return err
	}
	return ix.Store.SetSearchDoc(ctx, m.Repository, doc)
}

// manifestDoc is the part of a manifest or index the indexer reads.
type manifestDoc struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *descriptor       `json:"config"`
	Manifests    []descriptor      `json:"manifests"`
	Annotations  map[string]string `json:"annotations"`
}

type descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// configDoc is the part of an image config or a helm chart config the indexer reads.
type configDoc struct {
	Config struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
	Description string   `json:"description"` // helm
	Keywords    []string `json:"keywords"`    // helm
}

// Doc reads m's search document: for an index, from its first child image stored in
// the repository.
func (ix *Indexer) Doc(ctx context.Context, m metadata.Manifest) (metadata.SearchDoc, error) {
	doc := metadata.SearchDoc{Digest: m.Digest}
	var md manifestDoc
	if err := json.Unmarshal(m.Payload, &md); err != nil {
		return doc, fmt.Errorf("parse manifest %s: %w", m.Digest, err)
	}
	annotations := md.Annotations
	mt := m.MediaType
	if mt == ociIndex || mt == dockerList || (mt == "" && md.Manifests != nil) {
		doc.Kind = metadata.KindImage
		child, err := ix.firstChild(ctx, m.Repository, md.Manifests)
		if err != nil || child == nil {
			doc.Description = annotations[DescriptionLabel]
			return doc, err
		}
		md = *child
		for k, v := range annotations {
			if _, ok := md.Annotations[k]; !ok {
				if md.Annotations == nil {
					md.Annotations = map[string]string{}
				}
				md.Annotations[k] = v
			}
		}
	}
	switch {
	case md.Config != nil && (md.Config.MediaType == ociConfig || md.Config.MediaType == dockerConfig) && md.ArtifactType == "":
		doc.Kind = metadata.KindImage
	case md.Config != nil && md.Config.MediaType == helmConfig:
		doc.Kind = metadata.KindChart
	default:
		doc.Kind = metadata.KindArtifact
	}
	if md.Config != nil && doc.Kind != metadata.KindArtifact {
		cfg, err := ix.readConfig(ctx, m.Repository, *md.Config)
		if err != nil {
			return doc, err
		}
		if cfg != nil {
			doc.Labels = cfg.Config.Labels
			doc.Description = cfg.Config.Labels[DescriptionLabel]
			if doc.Kind == metadata.KindChart {
				doc.Description = cfg.Description
				for i, k := range cfg.Keywords {
					if doc.Labels == nil {
						doc.Labels = map[string]string{}
					}
					doc.Labels[fmt.Sprintf("keyword.%d", i)] = k
				}
			}
		}
	}
	if doc.Description == "" {
		doc.Description = md.Annotations[DescriptionLabel]
	}
	return doc, nil
}

// firstChild returns the first child of an index that is stored in repo and is not
// itself an index; nil when none is.
func (ix *Indexer) firstChild(ctx context.Context, repo string, children []descriptor) (*manifestDoc, error) {
	for i, c := range children {
		if i == 16 {
			break // an index of many platforms: the first ones say enough
		}
		if c.MediaType == ociIndex || c.MediaType == dockerList {
			continue
		}
		cm, err := ix.Store.GetManifest(ctx, repo, c.Digest)
		if errors.Is(err, metadata.ErrManifestNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		var md manifestDoc
		if json.Unmarshal(cm.Payload, &md) == nil && md.Config != nil {
			return &md, nil
		}
	}
	return nil, nil
}

// readConfig reads config blob c of repo, bounded by MaxConfigSize; nil when it is
// larger, not stored or not JSON.
func (ix *Indexer) readConfig(ctx context.Context, repo string, c descriptor) (*configDoc, error) {
	if c.Size > MaxConfigSize || c.Digest.Validate() != nil {
		return nil, nil
	}
	b, err := ix.Store.RepositoryBlob(ctx, repo, c.Digest)
	if errors.Is(err, metadata.ErrBlobNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if b.Size > MaxConfigSize {
		return nil, nil
	}
	rc, _, err := ix.Blobs.Open(ctx, c.Digest, b.Location)
	if err != nil {
		return nil, fmt.Errorf("open config %s: %w", c.Digest, err)
	}
	defer rc.Close()
	var cfg configDoc
	if err := json.NewDecoder(io.LimitReader(rc, MaxConfigSize)).Decode(&cfg); err != nil {
		return nil, nil
	}
	return &cfg, nil
}

// BackfillBatch is how many repositories Backfill reads per store call.
const BackfillBatch = 200

// Backfill indexes every repository never indexed (stored before search existed),
// BackfillBatch at a time, and returns how many it indexed. It is idempotent and safe
// on several replicas at once (each writes the same documents). A repository whose
// config cannot be read is logged and marked indexed with what is known (its
// kind), so a broken one is not read again at every start.
func (ix *Indexer) Backfill(ctx context.Context) (int, error) {
	n := 0
	var after int64
	for {
		batch, err := ix.Store.PendingSearchDocs(ctx, after, BackfillBatch)
		if err != nil {
			return n, err
		}
		for _, p := range batch {
			after = p.RepoID
			var doc metadata.SearchDoc
			if p.Manifest != nil {
				doc, err = ix.Doc(ctx, *p.Manifest)
				if err != nil {
					if ctx.Err() != nil {
						return n, ctx.Err()
					}
					ix.log().WarnContext(ctx, "search: backfill", "repo", p.Repository, "err", err)
				}
			}
			doc.IfPending = true
			if err := ix.Store.SetSearchDoc(ctx, p.Repository, doc); err != nil {
				return n, err
			}
			n++
		}
		if len(batch) < BackfillBatch {
			return n, nil
		}
	}
}

// RunBackfill runs Backfill in the background of a serving hub, logging what it did;
// it returns when done or when ctx ends.
func (ix *Indexer) RunBackfill(ctx context.Context) {
	start := time.Now()
	n, err := ix.Backfill(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		ix.log().WarnContext(ctx, "search: backfill stopped; it resumes at the next start", "indexed", n, "err", err)
	case n > 0:
		ix.log().InfoContext(ctx, "search: backfill done", "indexed", n, "took", time.Since(start).Round(time.Millisecond))
	}
}
