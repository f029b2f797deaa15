package dockerarchive

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxIndexJSON bounds index.json and the manifests read from an archive's OCI layout.
const maxIndexJSON = 4 << 20

// native is an image manifest an archive holds as it was pulled (Docker 25+ writes an
// OCI layout beside manifest.json; an engine on the containerd image store keeps the
// registry's manifest and compressed layers), served instead of a synthesized one so
// a push of it reproduces the registry's digests.
type native struct {
	desc  ocispec.Descriptor
	raw   []byte
	blobs map[digest.Digest]entry
}

// findNative looks in the archive's OCI layout (index.json, blobs/) for the image
// manifest of the config r loaded whose layers are all there, compressed. It returns
// nil when there is none: an archive of the classic image store holds uncompressed
// layers, which are compressed the deterministic way instead.
func (r *Reader) findNative() *native {
	raw, err := r.idx.readAll("index.json", maxIndexJSON)
	if err != nil {
		return nil
	}
	var idx ocispec.Index
	if json.Unmarshal(raw, &idx) != nil {
		return nil
	}
	queue := idx.Manifests
	for depth := 0; depth < 3 && len(queue) > 0; depth++ {
		var next []ocispec.Descriptor
		for _, d := range queue {
			body := r.layoutBlob(d, maxIndexJSON)
			if body == nil {
				continue
			}
			switch d.MediaType {
			case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
				var child ocispec.Index
				if json.Unmarshal(body, &child) == nil {
					next = append(next, child.Manifests...)
				}
				continue
			}
			if n := r.nativeOf(d, body); n != nil {
				return n
			}
		}
		queue = next
	}
	return nil
}

// nativeOf returns the manifest body as the image's native manifest when it is the
// loaded config's, with every layer compressed and present.
func (r *Reader) nativeOf(d ocispec.Descriptor, body []byte) *native {
	var m ocispec.Manifest
	if json.Unmarshal(body, &m) != nil || m.Config.Digest != r.configD.Digest || len(m.Layers) != len(r.layers) {
		return nil
	}
	switch mt := m.MediaType; {
	case mt == "" && d.MediaType == "":
		return nil
	case mt == "":
		m.MediaType = d.MediaType
	}
	if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != MediaTypeManifest {
		return nil
	}
	n := &native{desc: ocispec.Descriptor{MediaType: m.MediaType, Digest: d.Digest, Size: int64(len(body))}, raw: body,
		blobs: map[digest.Digest]entry{}}
	for _, l := range m.Layers {
		if !strings.Contains(l.MediaType, "gzip") && !strings.Contains(l.MediaType, "zstd") {
			return nil
		}
		e, err := r.idx.lookup("blobs/" + l.Digest.Algorithm().String() + "/" + l.Digest.Encoded())
		if err != nil || e.size != l.Size {
			return nil
		}
		n.blobs[l.Digest] = e
	}
	return n
}

// layoutBlob reads a small blob of the archive's OCI layout and checks its digest;
// nil when it is missing, too large or does not match.
func (r *Reader) layoutBlob(d ocispec.Descriptor, limit int64) []byte {
	if d.Digest.Validate() != nil {
		return nil
	}
	b, err := r.idx.readAll("blobs/"+d.Digest.Algorithm().String()+"/"+d.Digest.Encoded(), limit)
	if err != nil || d.Digest.Algorithm().FromBytes(b) != d.Digest {
		return nil
	}
	return b
}

// prepareNative makes the native manifest and its blobs what the Reader serves.
func (r *Reader) prepareNative(n *native) {
	blobs := map[digest.Digest]func() io.Reader{}
	for d, e := range n.blobs {
		blobs[d] = func() io.Reader { return r.idx.section(e) }
	}
	r.manifest = bytes.Clone(n.raw)
	r.rootD = n.desc
	r.blobs = blobs
	r.prepared = true
}
