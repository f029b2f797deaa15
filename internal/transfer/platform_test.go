package transfer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatforms(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want []v1.Platform
	}{
		{"", nil},
		{" , ", nil},
		{"linux/amd64", []v1.Platform{{OS: "linux", Architecture: "amd64"}}},
		{"linux/amd64,linux/arm64/v8", []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		{" linux/arm/v7 , windows/amd64 ,", []v1.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}, {OS: "windows", Architecture: "amd64"}}},
		{"windows/amd64:10.0.17763.1234", []v1.Platform{{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1234"}}},
	} {
		got, err := ParsePlatforms(tt.in)
		if err != nil {
			t.Errorf("ParsePlatforms(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParsePlatforms(%q) = %+v, want %+v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if !got[i].Equals(tt.want[i]) {
				t.Errorf("ParsePlatforms(%q)[%d] = %+v, want %+v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
	for _, in := range []string{"linux", "/amd64", "linux/", "linux/amd64,arm64", "linux/amd64/v1/extra"} {
		if got, err := ParsePlatforms(in); err == nil {
			t.Errorf("ParsePlatforms(%q) = %+v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "want os/arch[/variant], like linux/amd64") {
			t.Errorf("ParsePlatforms(%q) error %q does not say what is wanted", in, err)
		}
	}
}

func TestPlatformString(t *testing.T) {
	t.Parallel()
	for want, p := range map[string]*ocispec.Platform{
		"unknown":         nil,
		"linux/amd64":     {OS: "linux", Architecture: "amd64"},
		"linux/arm/v7":    {OS: "linux", Architecture: "arm", Variant: "v7"},
		"unknown/unknown": {OS: "unknown", Architecture: "unknown"},
	} {
		if got := PlatformString(p); got != want {
			t.Errorf("PlatformString(%+v) = %q, want %q", p, got, want)
		}
	}
}

// buildxIndex is an index as buildx pushes it: images for linux/amd64, linux/arm64
// (no variant), linux/arm/v7 and linux/arm/v6, then attestation manifests for the
// amd64 and arm64 images, with index annotations and a field ocispec does not know.
type buildxIndex struct {
	raw                        []byte
	amd64, arm64, armv7, armv6 ocispec.Descriptor
	attestAMD64, attestARM64   ocispec.Descriptor
}

func newBuildxIndex(t *testing.T) buildxIndex {
	t.Helper()
	desc := func(seed string, p *ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(seed), Size: int64(100 + len(seed)), Platform: p}
	}
	var b buildxIndex
	b.amd64 = desc("amd64", &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	b.arm64 = desc("arm64", &ocispec.Platform{OS: "linux", Architecture: "arm64"})
	b.armv7 = desc("armv7", &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})
	b.armv6 = desc("armv6", &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"})
	attest := func(seed string, of ocispec.Descriptor) ocispec.Descriptor {
		d := desc(seed, &ocispec.Platform{OS: "unknown", Architecture: "unknown"})
		d.Annotations = map[string]string{attestationRef: of.Digest.String(), "vnd.docker.reference.type": "attestation-manifest"}
		return d
	}
	b.attestAMD64 = attest("attest-amd64", b.amd64)
	b.attestARM64 = attest("attest-arm64", b.arm64)
	doc := map[string]any{
		"schemaVersion": 2,
		"mediaType":     ocispec.MediaTypeImageIndex,
		"manifests":     []ocispec.Descriptor{b.amd64, b.arm64, b.armv7, b.armv6, b.attestAMD64, b.attestARM64},
		"annotations":   map[string]string{"org.opencontainers.image.created": "2025-01-01T00:00:00Z"},
		"x-extra":       map[string]any{"kept": true},
	}
	b.raw = mustJSON(t, doc)
	return b
}

func platforms(t *testing.T, s string) []v1.Platform {
	t.Helper()
	p, err := ParsePlatforms(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilterIndexSingle(t *testing.T) {
	t.Parallel()
	b := newBuildxIndex(t)
	for _, tt := range []struct {
		want  string
		child ocispec.Descriptor
	}{
		{"linux/amd64", b.amd64},
		// arm64's only variant is v8: asking for it finds a child that names none, and
		// asking for none finds it too.
		{"linux/arm64/v8", b.arm64},
		{"linux/arm64", b.arm64},
		{"linux/arm/v7", b.armv7},
		{"linux/arm/v6", b.armv6},
	} {
		t.Run(tt.want, func(t *testing.T) {
			single, out, err := filterIndex(b.raw, platforms(t, tt.want))
			if err != nil {
				t.Fatal(err)
			}
			if single == nil || out != nil {
				t.Fatalf("got single %v and %d bytes, want the child alone", single, len(out))
			}
			if single.Digest != tt.child.Digest || single.Size != tt.child.Size || single.MediaType != tt.child.MediaType {
				t.Fatalf("child %+v, want %+v", single, tt.child)
			}
			d, err := SelectPlatform(b.raw, platforms(t, tt.want))
			if err != nil || d.Digest != tt.child.Digest || d.Size != tt.child.Size || d.MediaType != tt.child.MediaType || d.Platform != nil {
				t.Fatalf("SelectPlatform = %+v, %v", d, err)
			}
		})
	}
}

// filtered decodes what filterIndex returned.
func filtered(t *testing.T, out []byte) (map[string]json.RawMessage, []ocispec.Descriptor) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var ms []ocispec.Descriptor
	if err := json.Unmarshal(doc["manifests"], &ms); err != nil {
		t.Fatal(err)
	}
	return doc, ms
}

func digestsOf(ds []ocispec.Descriptor) []digest.Digest {
	var out []digest.Digest
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	return out
}

func TestFilterIndexSeveral(t *testing.T) {
	t.Parallel()
	b := newBuildxIndex(t)
	var orig map[string]json.RawMessage
	if err := json.Unmarshal(b.raw, &orig); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want string
		kept []ocispec.Descriptor
	}{
		// Attestations follow the images they describe, after them.
		{"two with attestations", "linux/amd64,linux/arm64", []ocispec.Descriptor{b.amd64, b.arm64, b.attestAMD64, b.attestARM64}},
		{"one attested, one not", "linux/arm/v7,linux/amd64", []ocispec.Descriptor{b.amd64, b.armv7, b.attestAMD64}},
		{"unattested only", "linux/arm/v7,linux/arm/v6", []ocispec.Descriptor{b.armv7, b.armv6}},
		// Two platforms asked, one present: still an index, of one image.
		{"one of two present", "linux/arm64,linux/s390x", []ocispec.Descriptor{b.arm64, b.attestARM64}},
		// No variant asked matches every variant.
		{"every arm", "linux/arm", []ocispec.Descriptor{b.armv7, b.armv6}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			single, out, err := filterIndex(b.raw, platforms(t, tt.want))
			if err != nil {
				t.Fatal(err)
			}
			if single != nil {
				t.Fatalf("got the single child %s, want an index", single.Digest)
			}
			doc, ms := filtered(t, out)
			if !slices.Equal(digestsOf(ms), digestsOf(tt.kept)) {
				t.Fatalf("kept %v, want %v", digestsOf(ms), digestsOf(tt.kept))
			}
			for i, m := range ms {
				if PlatformString(m.Platform) != PlatformString(tt.kept[i].Platform) || m.Size != tt.kept[i].Size ||
					m.Annotations[attestationRef] != tt.kept[i].Annotations[attestationRef] {
					t.Errorf("descriptor %d changed: %+v, want %+v", i, m, tt.kept[i])
				}
			}
			for k, v := range orig {
				if k == "manifests" {
					continue
				}
				if got, ok := doc[k]; !ok || string(got) != string(v) {
					t.Errorf("field %q = %s, want %s as it was", k, got, v)
				}
			}
			if len(doc) != len(orig) {
				t.Errorf("fields %d, want %d", len(doc), len(orig))
			}
		})
	}
	if _, err := SelectPlatform(b.raw, platforms(t, "linux/arm")); err == nil || !strings.Contains(err.Error(), "several manifests match linux/arm") {
		t.Errorf("SelectPlatform of an ambiguous platform: %v", err)
	}
	if _, err := SelectPlatform(b.raw, platforms(t, "linux/amd64,linux/arm64")); err == nil || !strings.Contains(err.Error(), "choose one platform, not 2") {
		t.Errorf("SelectPlatform of two platforms: %v", err)
	}
}

func TestFilterIndexNoMatch(t *testing.T) {
	t.Parallel()
	b := newBuildxIndex(t)
	_, _, err := filterIndex(b.raw, platforms(t, "windows/amd64,linux/s390x"))
	want := "no manifest for platform windows/amd64, linux/s390x in the index (it has linux/amd64, linux/arm64, linux/arm/v7, linux/arm/v6)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q (attestations are not platforms)", err, want)
	}
	if _, err := SelectPlatform(b.raw, platforms(t, "linux/ppc64le")); err == nil || !strings.Contains(err.Error(), "no manifest for platform linux/ppc64le") {
		t.Fatalf("SelectPlatform: %v", err)
	}
	if _, _, err := filterIndex([]byte(`not json`), platforms(t, "linux/amd64")); err == nil || !strings.Contains(err.Error(), "parse index") {
		t.Fatalf("bad JSON: %v", err)
	}
}

// TestFilterIndexKeepingEverything: a filter that keeps every child still re-encodes
// the index (keys sorted, whitespace dropped), so its digest changes although nothing
// was filtered out, which breaks references and signatures by digest of the index.
func TestFilterIndexKeepingEverything(t *testing.T) {
	t.Parallel()
	ti := newTestIndex(t, "all", "linux/amd64", "linux/arm64")
	single, out, err := filterIndex(ti.index.raw, platforms(t, "linux/amd64,linux/arm64"))
	if err != nil || single != nil {
		t.Fatal(single, err)
	}
	if digest.FromBytes(out) != ti.index.desc.Digest {
		t.Fatalf("keeping every child changed the index:\n%s\nto\n%s", ti.index.raw, out)
	}
}
