// Package charts holds what the chart client and the hub's chart repository share: the
// media types helm stores charts under in a registry, the mapping between chart versions
// and OCI tags, semver ordering and ranges, and the reading and checking of a chart
// archive (.tgz) with the helm v4 SDK.
package charts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// Media types of a chart stored in a registry, as helm pushes it (helm's
// pkg/registry constants; repeated so the server side does not link helm's registry
// client).
const (
	// ConfigMediaType is the config of a chart's manifest: Chart.yaml as JSON.
	ConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	// ChartLayerMediaType is the layer holding the chart archive (.tgz).
	ChartLayerMediaType = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	// ProvLayerMediaType is the layer holding the provenance file (.prov).
	ProvLayerMediaType = "application/vnd.cncf.helm.chart.provenance.v1.prov"
	// LegacyChartLayerMediaType is what helm 3.0–3.7 wrote for the archive.
	LegacyChartLayerMediaType = "application/tar+gzip"
)

// MaxArchiveSize bounds a chart archive the hub reads (ChartMuseum's default upload
// limit); helm itself refuses charts over 100 MiB decompressed.
const MaxArchiveSize = 20 << 20

// MaxProvSize bounds a provenance file.
const MaxProvSize = 1 << 20

// TagOf is the OCI tag of a chart version: OCI tags cannot hold '+', so helm writes
// build metadata's '+' as '_' (helm/helm#10250).
func TagOf(version string) string { return strings.ReplaceAll(version, "+", "_") }

// VersionOf is the chart version an OCI tag names: TagOf undone.
func VersionOf(tag string) string { return strings.ReplaceAll(tag, "_", "+") }

// FileName is the archive name helm gives a chart version: NAME-VERSION.tgz.
func FileName(name, version string) string { return name + "-" + version + ".tgz" }

// IsChartManifest reports whether a manifest's config media type (or artifactType)
// says it is a helm chart.
func IsChartManifest(configOrArtifactType string) bool {
	return configOrArtifactType == ConfigMediaType
}

// IsChartLayer reports whether a layer media type holds a chart archive.
func IsChartLayer(mt string) bool {
	return mt == ChartLayerMediaType || mt == LegacyChartLayerMediaType
}

// ParseVersion parses a chart version the way helm does (semver, a leading "v"
// allowed).
func ParseVersion(v string) (*semver.Version, error) { return semver.NewVersion(v) }

// SortVersions sorts chart versions newest first by semver; versions that do not
// parse go last, in string order. helm sorts the same way (helm/helm#32581: string
// order puts 1.10.0 before 1.9.0).
func SortVersions(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool { return VersionLess(vs[j], vs[i]) })
}

// VersionLess reports whether chart version a sorts before b in semver order.
func VersionLess(a, b string) bool {
	va, ea := semver.NewVersion(a)
	vb, eb := semver.NewVersion(b)
	switch {
	case ea != nil && eb != nil:
		return a < b
	case ea != nil:
		return true
	case eb != nil:
		return false
	}
	if c := va.Compare(vb); c != 0 {
		return c < 0
	}
	// Build metadata does not order in semver; keep a stable answer anyway.
	return a < b
}

// ErrNoMatch is returned by Select when no version satisfies the constraint.
var ErrNoMatch = errors.New("no chart version matches")

// Select picks the version of vs that want names: an exact version (compared after
// mapping '_' to '+'), or the highest one satisfying a semver range such as "~1.2",
// "^2" or ">=1.0 <2.0". An empty want picks the highest stable version, as helm does.
func Select(vs []string, want string) (string, error) {
	want = strings.TrimSpace(want)
	for _, v := range vs {
		if want != "" && (v == want || v == VersionOf(want)) {
			return v, nil
		}
	}
	cs := want
	if cs == "" {
		cs = ">0.0.0-0"
		if !hasStable(vs) {
			cs = "*-0"
		} else {
			cs = "*"
		}
	}
	c, err := semver.NewConstraint(cs)
	if err != nil {
		return "", fmt.Errorf("version %q is neither a version nor a semver range: %w", want, err)
	}
	sorted := append([]string(nil), vs...)
	SortVersions(sorted)
	for _, v := range sorted {
		sv, err := semver.NewVersion(v)
		if err == nil && c.Check(sv) {
			return v, nil
		}
	}
	if want == "" {
		return "", fmt.Errorf("%w: no versions", ErrNoMatch)
	}
	return "", fmt.Errorf("%w %q", ErrNoMatch, want)
}

func hasStable(vs []string) bool {
	for _, v := range vs {
		if sv, err := semver.NewVersion(v); err == nil && sv.Prerelease() == "" {
			return true
		}
	}
	return false
}

// Meta is what the hub records of a chart version: Chart.yaml as helm reads it.
type Meta = chart.Metadata

// InvalidError is a chart refused for its content (not a chart, a bad Chart.yaml, a
// name or version that does not fit where it is pushed); callers answer it as the
// client's mistake.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// LoadArchive reads a chart archive (at most MaxArchiveSize bytes) and returns its
// metadata, validated as helm validates it. A truncated or corrupt archive, one without
// Chart.yaml and one whose Chart.yaml helm refuses are *InvalidError.
func LoadArchive(tgz []byte) (*chart.Chart, error) {
	if len(tgz) > MaxArchiveSize {
		return nil, invalid("chart archive is %d bytes, over the limit of %d", len(tgz), MaxArchiveSize)
	}
	if len(tgz) < 2 || tgz[0] != 0x1f || tgz[1] != 0x8b {
		return nil, invalid("not a chart archive: a chart is a gzip-compressed tar (.tgz)")
	}
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil {
		return nil, invalid("not a valid chart archive: %v", err)
	}
	if ch.Metadata == nil {
		return nil, invalid("not a valid chart archive: no Chart.yaml")
	}
	if err := ch.Validate(); err != nil {
		return nil, invalid("invalid chart: %v", err)
	}
	if _, err := semver.NewVersion(ch.Metadata.Version); err != nil {
		return nil, invalid("invalid chart: version %q is not semver", ch.Metadata.Version)
	}
	return ch, nil
}

// ParseConfig reads the config blob of a chart manifest (Chart.yaml as JSON) and
// checks it as helm checks Chart.yaml.
func ParseConfig(raw []byte) (*Meta, error) {
	var md Meta
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&md); err != nil {
		return nil, invalid("chart config is not Chart.yaml as JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("chart config has data after its JSON object")
	}
	if err := md.Validate(); err != nil {
		return nil, invalid("invalid chart: %v", err)
	}
	return &md, nil
}

// CheckRepository checks that a chart of this name may live in repository: helm
// pulls oci://HOST/NS/NAME, so the repository's last component must be the chart's
// name.
func CheckRepository(repository, name string) error {
	if base := path.Base(repository); base != name {
		return invalid("chart %q cannot be stored in repository %s: the repository's last component must be the chart's name (push to %s/%s)",
			name, repository, path.Dir(repository), name)
	}
	return nil
}

// Config is the config blob helm writes for a chart: its metadata as JSON.
func Config(md *Meta) ([]byte, error) { return json.Marshal(md) }

// Summary describes a chart in a listing or search of the hub (GET
// /charts/-/search): its repository, newest version and that version's details, and
// every version, newest first.
type Summary struct {
	Repository  string `json:"repository"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	AppVersion  string `json:"app_version,omitempty"`
	Description string `json:"description,omitempty"`
	Deprecated  bool   `json:"deprecated,omitempty"`
	// Versions are every version, newest first, with their app versions.
	Versions []VersionSummary `json:"versions"`
}

// VersionSummary is one version in a Summary.
type VersionSummary struct {
	Version    string `json:"version"`
	AppVersion string `json:"app_version,omitempty"`
}

// Settings are a namespace's chart settings (GET/PUT /charts/-/settings/NS).
type Settings struct {
	AllowOverwrite bool `json:"allow_overwrite"`
}
