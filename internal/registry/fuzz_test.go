package registry

import (
	"testing"
)

// Manifests, paths and Content-Range values come straight from clients: the parsers
// must never panic, and what they accept must be self-consistent.

func FuzzParseManifest(f *testing.F) {
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:`+
		`e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}`))
	f.Add("application/vnd.oci.image.index.v1+json", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:abc","size":1}]}`))
	f.Add("", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`))
	f.Add("text/plain; charset=utf-8", []byte(`null`))
	f.Fuzz(func(t *testing.T, contentType string, payload []byte) {
		p, err := parseManifest(contentType, payload)
		if err != nil {
			return
		}
		if !isManifestType(p.mediaType) && !isIndexType(p.mediaType) {
			t.Fatalf("accepted unsupported media type %q", p.mediaType)
		}
		if isIndexType(p.mediaType) && len(p.refs.Blobs) != 0 {
			t.Fatalf("index with blob references: %v", p.refs.Blobs)
		}
		for _, d := range append(p.refs.Blobs, p.refs.Manifests...) {
			if d.Validate() != nil {
				t.Fatalf("accepted invalid digest %q", d)
			}
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/b/manifests/x", "/v2/a/blobs/uploads/", "/v2/_catalog", "/v2//tags/list", "/v2/a/referrers/sha256:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, ok := parseRoute(p)
		if !ok {
			return
		}
		switch rt.kind {
		case "base", "catalog":
			if rt.name != "" {
				t.Fatalf("%q: %s with a name", p, rt.kind)
			}
		case "tags", "manifest", "blob", "uploads", "upload", "referrers":
		default:
			t.Fatalf("%q: unknown kind %q", p, rt.kind)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-99", "bytes 0-99/100", "bytes=5-9", "9-5", "-", "x-y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := parseContentRange(s)
		if err == nil && (start < 0 || end < start) {
			t.Fatalf("%q gave %d-%d", s, start, end)
		}
	})
}
