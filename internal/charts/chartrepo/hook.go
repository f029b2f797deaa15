// Package chartrepo is the hub's side of helm charts: it recognises a chart when its
// manifest is pushed (checking it and recording its metadata in the store), serves a
// classic chart repository per namespace (/charts/NS/index.yaml, .tgz, .prov) from
// those records, the ChartMuseum API (/api/NS/charts…) whose uploads become the same
// OCI artifacts, and the hub's chart listing and search (/charts/-/…). See
// docs/charts.md.
package chartrepo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Store is the database the chart repository reads and writes: the registry's
// metadata and the chart records, one database.
type Store interface {
	metadata.Store
	chartstore.Store
}

// Hook checks chart manifests as the registry stores them and records them; it
// implements registry.ArtifactHook.
type Hook struct {
	Store Store
	Blobs blobstore.Store
	Log   *slog.Logger
}

// maxConfigSize bounds a chart's config blob (Chart.yaml as JSON).
const maxConfigSize = 1 << 20

// chartManifest is a chart's manifest, as far as the hook reads it.
type chartManifest struct {
	config, chart, prov ocispec.Descriptor
	annotations         map[string]string
}

func parseChartManifest(payload []byte) (chartManifest, error) {
	var m ocispec.Manifest
	var cm chartManifest
	if err := json.Unmarshal(payload, &m); err != nil {
		return cm, invalid("chart manifest: %v", err)
	}
	cm.config, cm.annotations = m.Config, m.Annotations
	for _, l := range m.Layers {
		switch {
		case charts.IsChartLayer(l.MediaType):
			if cm.chart.Digest != "" {
				return cm, invalid("chart manifest has two chart layers")
			}
			cm.chart = l
		case l.MediaType == charts.ProvLayerMediaType:
			if cm.prov.Digest != "" {
				return cm, invalid("chart manifest has two provenance layers")
			}
			cm.prov = l
		default:
			return cm, invalid("chart manifest has a layer of unknown media type %q", l.MediaType)
		}
	}
	if cm.chart.Digest == "" {
		return cm, invalid("chart manifest has no %s layer", charts.ChartLayerMediaType)
	}
	if cm.chart.Size > charts.MaxArchiveSize {
		return cm, invalid("chart archive is %d bytes, over the limit of %d", cm.chart.Size, charts.MaxArchiveSize)
	}
	if cm.config.Size > maxConfigSize || cm.prov.Size > charts.MaxProvSize {
		return cm, invalid("chart config or provenance is too large")
	}
	return cm, nil
}

// invalid is a chart refused for its content: MANIFEST_INVALID.
func invalid(format string, args ...any) error {
	return errcode.New(errcode.ManifestInvalid, format, args...)
}

// CheckManifest implements registry.ArtifactHook: a chart must be a helm chart whose
// Chart.yaml names the repository's last component, tagged only with its version, not
// replacing another version's content unless the namespace allows overwrites. The
// record is written once the manifest is stored.
func (h *Hook) CheckManifest(ctx context.Context, m metadata.Manifest, tags []string) (func(context.Context) error, error) {
	if !charts.IsChartManifest(m.ArtifactType) {
		return nil, nil
	}
	v, err := h.check(ctx, m, tags)
	if err != nil || v == nil {
		return nil, err
	}
	return func(ctx context.Context) error { return h.record(ctx, *v) }, nil
}

// record records v with its index entries.
func (h *Hook) record(ctx context.Context, v chartstore.Version) error {
	if err := IndexEntries(&v); err != nil {
		return err
	}
	return h.Store.RecordChart(ctx, v)
}

// check returns the record of chart manifest m, or nil when a blob it names is not in
// the repository (the registry refuses the manifest for that itself).
func (h *Hook) check(ctx context.Context, m metadata.Manifest, tags []string) (*chartstore.Version, error) {
	cm, err := parseChartManifest(m.Payload)
	if err != nil {
		return nil, err
	}
	cfg, err := h.readBlob(ctx, m.Repository, cm.config, maxConfigSize)
	if err != nil || cfg == nil {
		return nil, err
	}
	md, err := charts.ParseConfig(cfg)
	if err != nil {
		return nil, refusal(err)
	}
	if err := charts.CheckRepository(m.Repository, md.Name); err != nil {
		return nil, refusal(err)
	}
	tgz, err := h.readBlob(ctx, m.Repository, cm.chart, charts.MaxArchiveSize)
	if err != nil || tgz == nil {
		return nil, err
	}
	ch, err := charts.LoadArchive(tgz)
	if err != nil {
		return nil, refusal(err)
	}
	if ch.Metadata.Name != md.Name || ch.Metadata.Version != md.Version {
		return nil, invalid("the chart archive is %s %s but the manifest's config says %s %s",
			ch.Metadata.Name, ch.Metadata.Version, md.Name, md.Version)
	}
	want := charts.TagOf(md.Version)
	for _, t := range tags {
		if t != "" && t != want {
			return nil, invalid("chart %s version %s must be tagged %s, not %s (helm tags a chart with its version, '+' written '_')",
				md.Name, md.Version, want, t)
		}
		if t == "" {
			continue
		}
		if err := h.checkOverwrite(ctx, m, cm, md.Name, md.Version, t); err != nil {
			return nil, err
		}
	}
	v := &chartstore.Version{
		Repository: m.Repository, Digest: m.Digest, Name: md.Name, Version: md.Version, AppVersion: md.AppVersion,
		Description: md.Description, Icon: md.Icon, Keywords: md.Keywords, Deprecated: md.Deprecated,
		Metadata: cfg, ChartDigest: cm.chart.Digest, ChartSize: cm.chart.Size,
		ProvDigest: cm.prov.Digest, ProvSize: cm.prov.Size, CreatedAt: createdAt(cm.annotations),
	}
	fillLists(v, md)
	return v, nil
}

// fillLists copies Chart.yaml's maintainers and dependencies into v.
func fillLists(v *chartstore.Version, md *charts.Meta) {
	for _, mt := range md.Maintainers {
		if mt != nil {
			v.Maintainers = append(v.Maintainers, chartstore.Maintainer{Name: mt.Name, Email: mt.Email, URL: mt.URL})
		}
	}
	for _, d := range md.Dependencies {
		if d != nil {
			v.Dependencies = append(v.Dependencies, chartstore.Dependency{Name: d.Name, Version: d.Version,
				Repository: d.Repository, Condition: d.Condition, Alias: d.Alias})
		}
	}
}

// createdAt is the manifest's creation annotation (helm sets it), else now.
func createdAt(a map[string]string) time.Time {
	if t, err := time.Parse(time.RFC3339, a[ocispec.AnnotationCreated]); err == nil {
		return t.UTC()
	}
	return time.Now().UTC()
}

// checkOverwrite refuses to move a version's tag onto another chart unless the
// namespace allows overwrites. The same archive pushed again is no overwrite, whether
// the manifest is byte for byte the same or not (helm stamps each push with its time,
// and adding a provenance file makes a new manifest of the same chart).
//
// The version is claimed for this archive in the transaction that reads who holds it
// (the record of the manifest its tag points at, or the claim of a push in flight), so
// two first pushes of one version with different archives cannot both pass: the
// second is refused as if it came after the first.
func (h *Hook) checkOverwrite(ctx context.Context, m metadata.Manifest, cm chartManifest, name, version, tag string) error {
	st, err := h.Store.ChartSettings(ctx, namespaceOf(m.Repository))
	if err != nil {
		return err
	}
	if st.AllowOverwrite {
		return nil
	}
	c, err := h.Store.ClaimChartVersion(ctx, chartstore.Claim{Repository: m.Repository, Tag: tag, Manifest: m.Digest, Chart: cm.chart.Digest})
	if err != nil {
		return err
	}
	switch {
	case c.Holder == cm.chart.Digest:
		return nil
	case c.Holder != "":
		return versionExists(name, version, m.Repository, c.Current)
	case c.Current == "" || c.Current == m.Digest:
		return nil
	}
	// The tag points at a manifest without a record (pushed before this hub recorded
	// charts, or not a chart): judge it by its chart layer.
	old, err := h.Store.GetManifest(ctx, m.Repository, c.Current)
	if errors.Is(err, metadata.ErrManifestNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if ocm, err := parseChartManifest(old.Payload); err == nil && ocm.chart.Digest == cm.chart.Digest {
		return nil
	}
	return versionExists(name, version, m.Repository, c.Current)
}

// versionExists is the refusal of an overwrite: 409, whether the version was stored
// (at manifest prev) or is being pushed with other content right now (prev "").
func versionExists(name, version, repo string, prev digest.Digest) error {
	at := string(prev)
	if at == "" {
		at = "being pushed now"
	}
	return errcode.New(errcode.Denied, "chart %s version %s already exists in %s (%s); versions are immutable here: delete it first, or push a new version",
		name, version, repo, at).WithStatus(http.StatusConflict)
}

// refusal turns a chart's content error into MANIFEST_INVALID, passing others on.
func refusal(err error) error {
	var ie *charts.InvalidError
	if errors.As(err, &ie) {
		return invalid("%s", ie.Reason)
	}
	return err
}

// readBlob reads a small blob of the repository whole, checking its digest; nil
// without error when the repository does not hold it.
func (h *Hook) readBlob(ctx context.Context, repo string, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, invalid("chart manifest: %v", err)
	}
	b, err := h.Store.RepositoryBlob(ctx, repo, desc.Digest)
	if errors.Is(err, metadata.ErrBlobNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if b.Size > limit {
		return nil, invalid("blob %s is %d bytes, over the limit of %d for a chart", desc.Digest, b.Size, limit)
	}
	rc, _, err := h.Blobs.Open(ctx, desc.Digest, b.Location)
	if errors.Is(err, blobstore.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", desc.Digest, err)
	}
	if digest.FromBytes(raw) != desc.Digest && desc.Digest.Algorithm().FromBytes(raw) != desc.Digest {
		return nil, fmt.Errorf("blob %s: stored bytes do not match their digest", desc.Digest)
	}
	return raw, nil
}

// namespaceOf is the first component of a repository name.
func namespaceOf(repo string) string {
	for i := 0; i < len(repo); i++ {
		if repo[i] == '/' {
			return repo[:i]
		}
	}
	return repo
}
