// Package chartstore defines what the hub remembers of the helm charts pushed to it:
// one record per chart manifest, so the classic repository index, listings and search
// are queries. Package sqlstore implements it on SQLite and PostgreSQL; the suite in
// chartstoretest judges an implementation.
package chartstore

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned for a chart version that is not recorded (or whose tag no
// longer points at it).
var ErrNotFound = errors.New("chart version not found")

// ErrManifestNotFound is returned by RecordChart when the manifest is not (or no
// longer) in the repository.
var ErrManifestNotFound = errors.New("chart manifest not found")

// Maintainer is a Chart.yaml maintainer.
type Maintainer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Dependency is a Chart.yaml dependency, as listed (not resolved).
type Dependency struct {
	Name       string `json:"name"`
	Version    string `json:"version,omitempty"`
	Repository string `json:"repository,omitempty"`
	Condition  string `json:"condition,omitempty"`
	Alias      string `json:"alias,omitempty"`
}

// Version is one chart version: a chart manifest in a repository.
type Version struct {
	Repository string
	Digest     digest.Digest // the manifest
	Name       string
	Version    string
	AppVersion string
	// Description, Icon, Keywords, Maintainers, Dependencies and Deprecated are copied
	// from Chart.yaml.
	Description  string
	Icon         string
	Keywords     []string
	Maintainers  []Maintainer
	Dependencies []Dependency
	Deprecated   bool
	// Metadata is the whole Chart.yaml as JSON: the manifest's config blob.
	Metadata []byte
	// ChartDigest and ChartSize describe the .tgz layer; its digest is what the
	// classic index lists.
	ChartDigest digest.Digest
	ChartSize   int64
	// ProvDigest is the .prov layer, "" without provenance.
	ProvDigest digest.Digest
	ProvSize   int64
	CreatedAt  time.Time
	// EntryYAML and EntryJSON are the version's classic index entries as the chart
	// repository renders them, opaque to the store, and EntryFormat the version of
	// the renderer that made them (0: none).
	EntryFormat          int
	EntryYAML, EntryJSON []byte

	// Public is set by reads: whether the repository is public.
	Public bool
}

// Tag is the OCI tag of the version: '+' written '_'.
func (v Version) Tag() string {
	b := []byte(v.Version)
	for i, c := range b {
		if c == '+' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Query selects chart versions. Only versions whose tag points at their manifest are
// ever returned.
type Query struct {
	// Namespace, when set, keeps the charts of the namespace's repositories named
	// NAMESPACE/CHART: those a classic repository of the namespace can list (two charts
	// of one name in deeper repositories would collide in its index).
	Namespace string
	// Name, when set, keeps one chart.
	Name string
	// Version, when set, keeps one version.
	Version string
	// Term, when set, keeps versions whose name, description or keywords contain it,
	// without regard to case.
	Term string
	// Manifests, when set, keeps the versions of these manifests.
	Manifests []digest.Digest
	// Keys returns only Repository, Digest, Name, Version, CreatedAt and Public, for
	// callers that only need to know what is there (the index's ETag).
	Keys bool
	// Entries returns the keys with ChartDigest, Metadata and the index entries:
	// what an index is made of.
	Entries bool
	// Limit bounds the rows (0: no bound).
	Limit int
}

// Settings are a namespace's chart settings.
type Settings struct {
	// AllowOverwrite lets a push replace an existing version with other content.
	AllowOverwrite bool
}

// Unrecorded is a chart manifest without a record, for the backfill after an
// upgrade (or after a failure between storing a manifest and recording it).
type Unrecorded struct {
	Repository string
	Digest     digest.Digest
	Payload    []byte
	CreatedAt  time.Time
}

// Index is what a namespace's classic index lists (the versions Query{Namespace}
// selects), as of one generation of the namespace.
type Index struct {
	// Generation changes, in the same transaction, with every change to what the
	// index lists: a version recorded or deleted, a version's tag moved or deleted, a
	// repository's visibility. A namespace never written has generation 0.
	Generation int64
	// Versions is nil when the caller knew the generation already.
	Versions []Version
}

// ClaimTTL is how long a claim on a chart version holds it when its push fails
// before the version is recorded.
const ClaimTTL = 30 * time.Second

// Claim is a push's claim on a chart version (its tag in a repository) for one chart
// archive, taken before the manifest is stored.
type Claim struct {
	Repository string
	Tag        string
	Manifest   digest.Digest // the manifest being pushed
	Chart      digest.Digest // its chart archive
	// TTL is how long the claim lasts unless recorded first; 0 means ClaimTTL.
	TTL time.Duration
}

// Claimed is what ClaimChartVersion found.
type Claimed struct {
	// Current is the manifest the tag points at, "" when there is none.
	Current digest.Digest
	// Holder is the chart archive that holds the version: the archive recorded for
	// Current, else that of an unexpired claim; "" when the version is free or Current
	// has no record (a manifest pushed before charts were recorded, or not a chart).
	Holder digest.Digest
}

// Store keeps the chart records.
type Store interface {
	// RecordChart records v (replacing a record of the same manifest), or returns
	// ErrManifestNotFound when the manifest is not in the repository.
	RecordChart(ctx context.Context, v Version) error
	// Charts lists the versions q selects, ordered by repository, then name, then
	// version (string order: callers sort by semver).
	Charts(ctx context.Context, q Query) ([]Version, error)
	// ChartIndex returns the versions the classic index of namespace lists with their
	// generation, both read in one snapshot. When the generation is known, Versions
	// is nil (a warm index costs one lookup of a number). keys asks for Query.Keys
	// fields only; without it, for Query.Entries fields.
	ChartIndex(ctx context.Context, namespace string, known int64, keys bool) (Index, error)
	// ClaimChartVersion claims c's version for c.Chart unless another archive holds it
	// (Claimed.Holder, then nothing is claimed), in one transaction with reading who
	// holds it, so two pushes of one version cannot both find it free. A claim lasts
	// until the version is recorded (RecordChart of c.Chart removes it) or for
	// ClaimTTL.
	ClaimChartVersion(ctx context.Context, c Claim) (Claimed, error)
	// UnrecordedCharts lists up to limit manifests whose artifact type is
	// configMediaType and that have no record.
	UnrecordedCharts(ctx context.Context, configMediaType string, limit int) ([]Unrecorded, error)
	// ChartSettings returns a namespace's settings (the defaults when none were set).
	ChartSettings(ctx context.Context, namespace string) (Settings, error)
	// SetChartSettings stores a namespace's settings.
	SetChartSettings(ctx context.Context, namespace string, s Settings) error
}
