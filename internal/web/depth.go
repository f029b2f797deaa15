package web

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// referrerRow is a manifest whose subject is the one shown: a signature, an SBOM, an
// attestation, a readme.
type referrerRow struct {
	Digest       string
	URL          string
	ArtifactType string
	Kind         string // "Signature", "SBOM", "Attestation", "Readme" or "Artifact"
	Size         int64
}

// manifestDepth is what the tag and manifest pages show beyond the manifest itself
// (docs/design/web.md slice 4).
type manifestDepth struct {
	Referrers []referrerRow
	// MoreReferrers counts those not listed (beyond maxReferrersShown).
	MoreReferrers int
	// UniqueSize is what no other manifest of the namespace references; -1 when not
	// known.
	UniqueSize int64
	History    []historyRow
	CanPush    bool
	// Readme is sanitised HTML (readme.go); ReadmeFrom says where it came from.
	Readme     template.HTML
	ReadmeFrom string
}

// Readme sources, in the order they are looked for.
const (
	// ReadmeArtifactType marks a referrer whose first layer is the image's readme.
	ReadmeArtifactType = "text/markdown"
	// ReadmeLabel is a config label or manifest annotation holding a readme in Markdown.
	ReadmeLabel = "io.hubctl.image.readme"
	// DescriptionLabel is the OCI description, shown when there is no readme.
	DescriptionLabel = "org.opencontainers.image.description"
	// maxReadmeSize bounds a readme read from a blob.
	maxReadmeSize = 256 << 10
	// maxReferrersShown bounds the referrers listed (a busy image may have many
	// signatures).
	maxReferrersShown = 100
)

// fillDepth adds referrers, the unique size, the tag's history and the readme.
func (h *Handler) fillDepth(ctx context.Context, p *manifestPage, doc manifestDoc, v *viewer) error {
	p.UniqueSize = -1
	d, err := digest.Parse(p.Digest)
	if err != nil {
		return nil
	}
	refs, err := h.o.Meta.Referrers(ctx, p.Repository, d, "")
	if err != nil {
		return err
	}
	for _, m := range refs {
		kind := referrerKind(m.ArtifactType)
		if len(p.Referrers) < maxReferrersShown {
			p.Referrers = append(p.Referrers, referrerRow{Digest: m.Digest.String(), URL: "/" + p.Repository + "/-/manifests/" + m.Digest.String(),
				ArtifactType: m.ArtifactType, Kind: kind, Size: m.Size})
		} else {
			p.MoreReferrers++
		}
	}
	if h.o.History != nil {
		if p.UniqueSize, err = h.o.History.UniqueSize(ctx, p.Repository, d); err != nil {
			return err
		}
	}
	if err := h.fillHistory(ctx, p, v); err != nil {
		return err
	}
	text, from, err := h.readmeText(ctx, p, refs)
	if err != nil {
		return err
	}
	if text != "" {
		p.Readme, p.ReadmeFrom = renderMarkdown(text), from
	}
	return nil
}

// referrerKind names what an artifact type is, for people.
func referrerKind(at string) string {
	switch {
	case at == ReadmeArtifactType:
		return "Readme"
	case containsAny(at, "signature", "cosign", "notary"):
		return "Signature"
	case containsAny(at, "spdx", "cyclonedx", "sbom", "syft"):
		return "SBOM"
	case containsAny(at, "in-toto", "attestation", "provenance", "vex"):
		return "Attestation"
	}
	return "Artifact"
}

// readReadme reads the first layer of readme artifact d of repo, bounded; "" when it
// has none or it is not stored.
func (h *Handler) readReadme(ctx context.Context, repo string, d digest.Digest) (string, error) {
	m, err := h.o.Meta.GetManifest(ctx, repo, d)
	if errors.Is(err, metadata.ErrManifestNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	var doc manifestDoc
	if json.Unmarshal(m.Payload, &doc) != nil || len(doc.Layers) == 0 {
		return "", nil
	}
	ld, err := digest.Parse(doc.Layers[0].Digest)
	if err != nil {
		return "", nil
	}
	b, err := h.o.Meta.RepositoryBlob(ctx, repo, ld)
	if errors.Is(err, metadata.ErrBlobNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	rc, _, err := h.o.Blobs.Open(ctx, ld, b.Location)
	if err != nil {
		h.o.Log.WarnContext(ctx, "web: open readme", "repo", repo, "digest", ld, "err", err)
		return "", nil
	}
	defer rc.Close()
	text, err := io.ReadAll(io.LimitReader(rc, maxReadmeSize))
	if err != nil {
		h.o.Log.WarnContext(ctx, "web: read readme", "repo", repo, "digest", ld, "err", err)
		return "", nil
	}
	return string(text), nil
}

// repoReadme is the readme the repository page shows: that of its "latest" tag, else
// of its most recently pushed one.
type repoReadme struct {
	Readme     template.HTML
	ReadmeFrom string
	ReadmeTag  string
}

// fillRepoReadme finds the repository page's readme: that of latest, else of the newest tag.
func (h *Handler) fillRepoReadme(ctx context.Context, p *repoPage) error {
	pick, err := h.readmeTag(ctx, p.Repository)
	if err != nil || pick.Name == "" {
		return err
	}
	d, err := digest.Parse(pick.Digest)
	if err != nil {
		return nil
	}
	m, err := h.o.Meta.GetManifest(ctx, p.Repository, d)
	if errors.Is(err, metadata.ErrManifestNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	var doc manifestDoc
	if json.Unmarshal(m.Payload, &doc) != nil {
		return nil
	}
	mp := manifestPage{Repository: p.Repository, Digest: m.Digest.String(), Annotations: sortedPairs(doc.Annotations)}
	if !doc.isIndex() {
		if err := h.fillImage(ctx, &mp, p.Repository, doc); err != nil {
			return err
		}
	}
	text, from, err := h.readmeText(ctx, &mp, nil)
	if err != nil || text == "" {
		return err
	}
	p.Readme, p.ReadmeFrom, p.ReadmeTag = renderMarkdown(text), from, pick.Name
	return nil
}

// readmeText finds the readme of the manifest p shows: an attached text/markdown
// referrer (refs; nil: looked up here), else the readme label, else the description.
func (h *Handler) readmeText(ctx context.Context, p *manifestPage, refs []metadata.Manifest) (text, from string, err error) {
	if refs == nil {
		d, err := digest.Parse(p.Digest)
		if err != nil {
			return "", "", nil
		}
		if refs, err = h.o.Meta.Referrers(ctx, p.Repository, d, ReadmeArtifactType); err != nil {
			return "", "", err
		}
	}
	for _, m := range refs {
		if m.ArtifactType != ReadmeArtifactType {
			continue
		}
		if text, err = h.readReadme(ctx, p.Repository, m.Digest); err != nil {
			return "", "", err
		}
		if text != "" {
			return text, "attached readme " + shortDigest(m.Digest.String()), nil
		}
	}
	labels := map[string]string{}
	for _, kv := range p.Annotations {
		labels[kv.Key] = kv.Value
	}
	if p.Config != nil {
		for _, kv := range p.Config.Labels {
			labels[kv.Key] = kv.Value
		}
	}
	for _, k := range []string{ReadmeLabel, DescriptionLabel} {
		if labels[k] != "" {
			return labels[k], "label " + k, nil
		}
	}
	return "", "", nil
}
