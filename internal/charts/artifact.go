package charts

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Artifact is a chart as an OCI artifact, laid out as helm pushes it: the config is
// Chart.yaml as JSON, the layers are the archive and, when there is one, the
// provenance file (sorted by digest, as helm sorts them), and the manifest carries
// helm's annotations.
type Artifact struct {
	Meta     *Meta
	Config   []byte
	Archive  []byte
	Prov     []byte // nil without provenance
	Manifest []byte
	// Descriptors of the manifest, config and layers.
	ManifestDesc, ConfigDesc, ArchiveDesc, ProvDesc ocispec.Descriptor
}

// Blobs are the config and layers with their bytes, for pushing.
func (a *Artifact) Blobs() []Blob {
	bs := []Blob{{Desc: a.ConfigDesc, Data: a.Config}, {Desc: a.ArchiveDesc, Data: a.Archive}}
	if a.Prov != nil {
		bs = append(bs, Blob{Desc: a.ProvDesc, Data: a.Prov})
	}
	return bs
}

// Blob is a blob of an artifact with its bytes.
type Blob struct {
	Desc ocispec.Descriptor
	Data []byte
}

// NewArtifact checks the chart archive tgz (and its provenance, nil for none) and lays
// it out as helm would push it, with created (zero: now) as its creation time.
func NewArtifact(tgz, prov []byte, created time.Time) (*Artifact, error) {
	ch, err := LoadArchive(tgz)
	if err != nil {
		return nil, err
	}
	if len(prov) > MaxProvSize {
		return nil, invalid("provenance file is %d bytes, over the limit of %d", len(prov), MaxProvSize)
	}
	cfg, err := Config(ch.Metadata)
	if err != nil {
		return nil, err
	}
	a := &Artifact{Meta: ch.Metadata, Config: cfg, Archive: tgz, Prov: prov}
	a.ConfigDesc = ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	a.ArchiveDesc = ocispec.Descriptor{MediaType: ChartLayerMediaType, Digest: digest.FromBytes(tgz), Size: int64(len(tgz))}
	layers := []ocispec.Descriptor{a.ArchiveDesc}
	if prov != nil {
		a.ProvDesc = ocispec.Descriptor{MediaType: ProvLayerMediaType, Digest: digest.FromBytes(prov), Size: int64(len(prov))}
		layers = append(layers, a.ProvDesc)
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].Digest < layers[j].Digest })
	if created.IsZero() {
		created = time.Now()
	}
	m := ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      a.ConfigDesc,
		Layers:      layers,
		Annotations: Annotations(ch.Metadata, created),
	}
	if a.Manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	a.ManifestDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(a.Manifest), Size: int64(len(a.Manifest))}
	return a, nil
}

// Annotations are the manifest annotations helm writes for a chart: the standard
// OCI ones from Chart.yaml, then the chart's own annotations (which may not replace
// title and version).
func Annotations(md *Meta, created time.Time) map[string]string {
	a := map[string]string{}
	set := func(k, v string) {
		if strings.TrimSpace(v) != "" {
			a[k] = v
		}
	}
	set(ocispec.AnnotationDescription, md.Description)
	set(ocispec.AnnotationTitle, md.Name)
	set(ocispec.AnnotationVersion, md.Version)
	set(ocispec.AnnotationURL, md.Home)
	set(ocispec.AnnotationCreated, created.UTC().Format(time.RFC3339))
	if len(md.Sources) > 0 {
		set(ocispec.AnnotationSource, md.Sources[0])
	}
	var authors []string
	for _, m := range md.Maintainers {
		if m == nil {
			continue
		}
		s := m.Name
		if m.Email != "" {
			s += " (" + m.Email + ")"
		}
		authors = append(authors, s)
	}
	set(ocispec.AnnotationAuthors, strings.Join(authors, ", "))
	for k, v := range md.Annotations {
		if k == ocispec.AnnotationTitle || k == ocispec.AnnotationVersion {
			continue
		}
		a[k] = v
	}
	return a
}
