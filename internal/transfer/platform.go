package transfer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatforms reads a comma-separated platform list ("linux/amd64,linux/arm64/v8").
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := v1.ParsePlatform(f)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return nil, fmt.Errorf("invalid platform %q: want os/arch[/variant], like linux/amd64", f)
		}
		out = append(out, *p)
	}
	return out, nil
}

// attestationRef is the annotation buildx puts on attestation manifests inside an
// index, naming the image manifest they describe.
const attestationRef = "vnd.docker.reference.digest"

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// PlatformString is "os/arch[/variant]", or "unknown" for a descriptor without one.
func PlatformString(p *ocispec.Platform) string {
	if p == nil {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func matches(p *ocispec.Platform, want []v1.Platform) bool {
	if p == nil {
		return false
	}
	have := v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
	// arm64's only variant is v8: an unspecified one means it.
	if have.Architecture == "arm64" && have.Variant == "" {
		have.Variant = "v8"
	}
	for _, w := range want {
		if w.Architecture == "arm64" && w.Variant == "" {
			w.Variant = "v8"
		}
		if have.Satisfies(w) {
			return true
		}
	}
	return false
}

// filterIndex keeps the children of an index that match the platforms (and the
// attestations of those children). With one platform asked and one child left, it
// returns that child's descriptor, to be copied as a single manifest. Other fields of
// the index are kept as they were.
func filterIndex(raw []byte, want []v1.Platform) (single *ocispec.Descriptor, out []byte, err error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, nil, fmt.Errorf("parse index: %w", err)
	}
	var kept []ocispec.Descriptor
	keptDigests := map[digest.Digest]bool{}
	for _, m := range idx.Manifests {
		if matches(m.Platform, want) {
			kept = append(kept, m)
			keptDigests[m.Digest] = true
		}
	}
	if len(kept) == 0 {
		var have []string
		for _, m := range idx.Manifests {
			if m.Annotations[attestationRef] == "" {
				have = append(have, PlatformString(m.Platform))
			}
		}
		var asked []string
		for _, w := range want {
			asked = append(asked, w.String())
		}
		return nil, nil, fmt.Errorf("no manifest for platform %s in the index (it has %s)",
			strings.Join(asked, ", "), strings.Join(slices.Compact(have), ", "))
	}
	if len(want) == 1 && len(kept) == 1 {
		return &kept[0], nil, nil
	}
	for _, m := range idx.Manifests {
		if ref := m.Annotations[attestationRef]; ref != "" && keptDigests[digest.Digest(ref)] {
			kept = append(kept, m)
		}
	}
	if len(kept) == len(idx.Manifests) {
		return nil, raw, nil // everything kept: the index as it is, same digest
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse index: %w", err)
	}
	list, err := json.Marshal(kept)
	if err != nil {
		return nil, nil, err
	}
	doc["manifests"] = list
	out, err = json.Marshal(doc)
	return nil, out, err
}

// SelectPlatform returns the descriptor of the index's child for the one platform.
func SelectPlatform(index []byte, want []v1.Platform) (ocispec.Descriptor, error) {
	if len(want) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("choose one platform, not %d", len(want))
	}
	child, _, err := filterIndex(index, want)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if child == nil {
		return ocispec.Descriptor{}, fmt.Errorf("several manifests match %s", want[0])
	}
	return ocispec.Descriptor{MediaType: child.MediaType, Digest: child.Digest, Size: child.Size}, nil
}
