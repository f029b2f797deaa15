package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
	digest "github.com/opencontainers/go-digest"
)

// maxConfigSize bounds the image config a page reads from the blob store; a larger
// one is not shown (configs are a few KiB).
const maxConfigSize = 4 << 20

// pullCommand is one copyable command line.
type pullCommand struct {
	Tool    string
	Command string
}

// pullCommands are the ways to pull repo at ref (":tag" or "@digest") from host.
func pullCommands(host, repo, ref string) []pullCommand {
	full := host + "/" + repo + ref
	return []pullCommand{
		{"docker", "docker pull " + full},
		{"crane", "crane pull " + full + " image.tar"},
		{"hubctl", "hubctl pull " + full},
	}
}

// descriptor is the part of an OCI descriptor the pages show.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType"`
	Annotations  map[string]string `json:"annotations"`
	Platform     *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

// manifestDoc is an image manifest or an index, read leniently: the registry
// validated it at push.
type manifestDoc struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *descriptor       `json:"config"`
	Layers       []descriptor      `json:"layers"`
	Manifests    []descriptor      `json:"manifests"`
	Annotations  map[string]string `json:"annotations"`
}

func (d manifestDoc) isIndex() bool {
	return d.Manifests != nil || strings.Contains(d.MediaType, "index") || strings.Contains(d.MediaType, "manifest.list")
}

// imageConfigDoc is the part of an image config the page shows.
type imageConfigDoc struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant"`
	Created      string `json:"created"`
	Config       struct {
		User       string            `json:"User"`
		Env        []string          `json:"Env"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	History []struct {
		CreatedBy  string `json:"created_by"`
		EmptyLayer bool   `json:"empty_layer"`
	} `json:"history"`
}

// keyValue is one label or annotation.
type keyValue struct{ Key, Value string }

// platformRow is one child of an index.
type platformRow struct {
	Platform string
	Digest   string
	URL      string
	Size     int64 // config and layers, compressed; 0 when the child is not here
	Missing  bool  // the child manifest is not stored in this repository
}

// layerRow is a layer, or a history step that made none.
type layerRow struct {
	Digest    string
	Size      int64
	CreatedBy string
	Empty     bool
}

// configView is the image config as the page shows it.
type configView struct {
	Platform   string
	Created    string
	User       string
	WorkingDir string
	Entrypoint string
	Cmd        string
	Env        []string
	Labels     []keyValue
}

// manifestPage is a tag or a manifest.
type manifestPage struct {
	basePage
	Repository  string
	Namespace   string
	Short       string
	Tag         string
	Digest      string
	MediaType   string
	Kind        string // "Image index", "Image", "Artifact"
	Size        int64  // the manifest and what it references, compressed
	PullTag     []pullCommand
	PullDigest  []pullCommand
	Platforms   []platformRow
	Config      *configView
	Layers      []layerRow
	Annotations []keyValue
	manifestDepth
}

func (h *Handler) manifest(w http.ResponseWriter, r *http.Request, repo string, byTag bool, ref string) {
	ctx := r.Context()
	if !h.mayView(w, r, repo) {
		return
	}
	var err error
	var m metadata.Manifest
	if byTag {
		if !reference.IsTag(ref) {
			h.notFound(w, r)
			return
		}
		m, err = h.o.Meta.GetManifestByTag(ctx, repo, ref)
	} else {
		d, perr := reference.ParseDigest(ref)
		if perr != nil {
			h.notFound(w, r)
			return
		}
		m, err = h.o.Meta.GetManifest(ctx, repo, d)
	}
	if errors.Is(err, metadata.ErrTagNotFound) || errors.Is(err, metadata.ErrManifestNotFound) || errors.Is(err, metadata.ErrRepositoryNotFound) {
		h.notFound(w, r)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	rw := row(repo)
	p := manifestPage{basePage: h.base(r, repo), Repository: repo, Namespace: rw.Namespace, Short: rw.Short,
		Digest: m.Digest.String(), MediaType: m.MediaType, Size: m.Size}
	host := h.registryHost(r)
	if byTag {
		p.Tag = ref
		p.Title = repo + ":" + ref
		p.PullTag = pullCommands(host, repo, ":"+ref)
	} else {
		p.Title = repo + "@" + shortDigest(p.Digest)
	}
	p.PullDigest = pullCommands(host, repo, "@"+p.Digest)
	var doc manifestDoc
	if err := json.Unmarshal(m.Payload, &doc); err != nil {
		h.internal(w, r, fmt.Errorf("manifest %s@%s: %w", repo, m.Digest, err))
		return
	}
	p.Annotations = sortedPairs(doc.Annotations)
	switch {
	case doc.isIndex():
		p.Kind = "Image index"
		if err := h.fillIndex(ctx, &p, repo, doc); err != nil {
			h.internal(w, r, err)
			return
		}
	default:
		p.Kind = "Image"
		if doc.ArtifactType != "" || (doc.Config != nil && !isImageConfig(doc.Config.MediaType)) {
			p.Kind = "Artifact"
		}
		if err := h.fillImage(ctx, &p, repo, doc); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	if err := h.fillDepth(ctx, &p, doc, viewerOf(r)); err != nil {
		h.internal(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "manifest", p)
}

// fillIndex lists an index's children with their platforms and sizes.
func (h *Handler) fillIndex(ctx context.Context, p *manifestPage, repo string, doc manifestDoc) error {
	for _, c := range doc.Manifests {
		pr := platformRow{Platform: "unknown", Digest: c.Digest, URL: "/" + repo + "/-/manifests/" + c.Digest}
		if c.Platform != nil {
			pr.Platform = c.Platform.OS + "/" + c.Platform.Architecture
			if c.Platform.Variant != "" {
				pr.Platform += "/" + c.Platform.Variant
			}
		}
		if c.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			pr.Platform = "attestation"
		}
		d, err := digest.Parse(c.Digest)
		if err != nil {
			pr.Missing = true
			p.Platforms = append(p.Platforms, pr)
			continue
		}
		child, err := h.o.Meta.GetManifest(ctx, repo, d)
		if errors.Is(err, metadata.ErrManifestNotFound) {
			pr.Missing = true
		} else if err != nil {
			return err
		} else {
			var cd manifestDoc
			if json.Unmarshal(child.Payload, &cd) == nil {
				pr.Size = contentSize(cd)
			}
			p.Size += pr.Size
		}
		p.Platforms = append(p.Platforms, pr)
	}
	return nil
}

// contentSize is what pulling an image manifest downloads beyond the manifest: its
// config and layers, compressed.
func contentSize(d manifestDoc) int64 {
	var n int64
	if d.Config != nil {
		n += d.Config.Size
	}
	for _, l := range d.Layers {
		n += l.Size
	}
	return n
}

// fillImage reads an image's config and lists its layers beside the config's history.
func (h *Handler) fillImage(ctx context.Context, p *manifestPage, repo string, doc manifestDoc) error {
	p.Size += contentSize(doc)
	var cfg *imageConfigDoc
	if doc.Config != nil && isImageConfig(doc.Config.MediaType) && doc.Config.Size <= maxConfigSize {
		var err error
		if cfg, err = h.readConfig(ctx, repo, doc.Config.Digest); err != nil {
			return err
		}
	}
	layers := doc.Layers
	if cfg != nil {
		cv := &configView{Platform: cfg.OS + "/" + cfg.Architecture, Created: cfg.Created, User: cfg.Config.User,
			WorkingDir: cfg.Config.WorkingDir, Entrypoint: shellWords(cfg.Config.Entrypoint), Cmd: shellWords(cfg.Config.Cmd),
			Env: cfg.Config.Env, Labels: sortedPairs(cfg.Config.Labels)}
		if cfg.Variant != "" {
			cv.Platform += "/" + cfg.Variant
		}
		p.Config = cv
		for _, step := range cfg.History {
			if step.EmptyLayer {
				p.Layers = append(p.Layers, layerRow{CreatedBy: step.CreatedBy, Empty: true})
				continue
			}
			lr := layerRow{CreatedBy: step.CreatedBy}
			if len(layers) > 0 {
				lr.Digest, lr.Size = layers[0].Digest, layers[0].Size
				layers = layers[1:]
			}
			p.Layers = append(p.Layers, lr)
		}
	}
	for _, l := range layers {
		p.Layers = append(p.Layers, layerRow{Digest: l.Digest, Size: l.Size})
	}
	return nil
}

// readConfig reads and parses the config blob d of repo; nil when it is not stored
// (a manifest whose config was never pushed is refused by the registry, but the blob
// may have been collected since) or does not parse.
func (h *Handler) readConfig(ctx context.Context, repo, d string) (*imageConfigDoc, error) {
	dg, err := digest.Parse(d)
	if err != nil {
		return nil, nil
	}
	b, err := h.o.Meta.RepositoryBlob(ctx, repo, dg)
	if errors.Is(err, metadata.ErrBlobNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	rc, _, err := h.o.Blobs.Open(ctx, dg, b.Location)
	if err != nil {
		h.o.Log.WarnContext(ctx, "web: open image config", "repo", repo, "digest", d, "err", err)
		return nil, nil
	}
	defer rc.Close()
	var cfg imageConfigDoc
	if err := json.NewDecoder(io.LimitReader(rc, maxConfigSize)).Decode(&cfg); err != nil {
		return nil, nil
	}
	return &cfg, nil
}

func isImageConfig(mt string) bool {
	return mt == "application/vnd.oci.image.config.v1+json" || mt == "application/vnd.docker.container.image.v1+json"
}

func sortedPairs(m map[string]string) []keyValue {
	out := make([]keyValue, 0, len(m))
	for k, v := range m {
		out = append(out, keyValue{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// shellWords shows an exec-form command as a shell would read it.
func shellWords(args []string) string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// shortDigest is a digest's algorithm and first 12 hex digits.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}
