package registry

import (
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
)

// Manifest media types the registry stores.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// manifestDoc is the union of the fields of image manifests and indexes we read.
type manifestDoc struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// parsedManifest is what a manifest PUT needs to know about the document.
type parsedManifest struct {
	mediaType    string
	artifactType string
	subject      digest.Digest
	annotations  map[string]string
	refs         metadata.References
}

// isIndexType reports whether mt lists other manifests.
func isIndexType(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList
}

func isManifestType(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// nonDistributable reports layers that are fetched from elsewhere (foreign or
// non-distributable), which a registry must accept without holding their bytes.
func nonDistributable(d ocispec.Descriptor) bool {
	return strings.Contains(d.MediaType, ".nondistributable.") || d.MediaType == mediaTypeDockerForeignLayer
}

func validDescriptor(d ocispec.Descriptor, what string) error {
	if _, err := reference.ParseDigest(string(d.Digest)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s %s: negative size", what, d.Digest)
	}
	return nil
}

// parseManifest validates a manifest body against its content type and extracts what
// the store records.
func parseManifest(contentType string, payload []byte) (parsedManifest, error) {
	var doc manifestDoc
	if err := json.Unmarshal(payload, &doc); err != nil {
		return parsedManifest{}, fmt.Errorf("manifest is not valid JSON: %w", err)
	}
	if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
		return parsedManifest{}, fmt.Errorf("schemaVersion must be 2")
	}
	ct := ""
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err == nil {
			ct = mt
		} else {
			ct = contentType
		}
	}
	mt := doc.MediaType
	switch {
	case mt != "" && ct != "" && mt != ct:
		return parsedManifest{}, fmt.Errorf("Content-Type %q does not match the manifest's mediaType %q", ct, mt)
	case mt == "" && ct != "":
		mt = ct
	case mt == "" && doc.Config != nil:
		mt = ocispec.MediaTypeImageManifest
	case mt == "" && doc.Manifests != nil:
		mt = ocispec.MediaTypeImageIndex
	}
	p := parsedManifest{mediaType: mt, artifactType: doc.ArtifactType, annotations: doc.Annotations}
	switch {
	case isManifestType(mt):
		if doc.Config == nil {
			return p, fmt.Errorf("image manifest has no config")
		}
		if doc.Manifests != nil {
			return p, fmt.Errorf("image manifest must not have manifests")
		}
		if err := validDescriptor(*doc.Config, "config"); err != nil {
			return p, err
		}
		if p.artifactType == "" {
			p.artifactType = doc.Config.MediaType
		}
		p.refs.Blobs = append(p.refs.Blobs, doc.Config.Digest)
		for i, l := range doc.Layers {
			if err := validDescriptor(l, fmt.Sprintf("layer %d", i)); err != nil {
				return p, err
			}
			if !nonDistributable(l) {
				p.refs.Blobs = append(p.refs.Blobs, l.Digest)
			}
		}
	case isIndexType(mt):
		if doc.Config != nil || doc.Layers != nil {
			return p, fmt.Errorf("index must not have config or layers")
		}
		for i, m := range doc.Manifests {
			if err := validDescriptor(m, fmt.Sprintf("manifest %d", i)); err != nil {
				return p, err
			}
			p.refs.Manifests = append(p.refs.Manifests, m.Digest)
		}
	default:
		return p, fmt.Errorf("unsupported manifest media type %q", mt)
	}
	if doc.Subject != nil {
		if err := validDescriptor(*doc.Subject, "subject"); err != nil {
			return p, err
		}
		p.subject = doc.Subject.Digest
	}
	return p, nil
}
