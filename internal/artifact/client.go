package artifact

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/transfer"
)

// Client runs artifact actions through a transfer engine.
type Client struct {
	Engine *transfer.Engine
}

// Result is what a push or attach stored.
type Result struct {
	Reference string `json:"reference"` // with the digest
	Digest    digest.Digest
	// Files are the paths a pull wrote.
	Files []string `json:"files,omitempty"`
}

// Push builds an artifact of files and pushes it to ref (HOST/REPO:TAG).
func (c *Client) Push(ctx context.Context, ref string, files []File, bo BuildOptions, o transfer.Options) (Result, error) {
	dl, err := transfer.ParseLocation(ref)
	if err != nil {
		return Result{}, err
	}
	if !dl.IsRegistry() {
		return Result{}, fmt.Errorf("%s: push to a registry reference", ref)
	}
	b, err := Build(files, bo)
	if err != nil {
		return Result{}, err
	}
	defer b.Cleanup()
	res, err := c.Engine.CopyLocations(ctx, transfer.Custom("files", b.Source, nil), dl, o)
	if err != nil {
		return Result{}, err
	}
	return Result{Reference: res.Reference, Digest: res.Digest}, nil
}

// Attach builds an artifact of files whose subject is the manifest subjectRef names,
// and pushes it by digest to the subject's repository; registries without the
// referrers API get the referrers tag schema's index updated as well.
func (c *Client) Attach(ctx context.Context, subjectRef string, files []File, bo BuildOptions, o transfer.Options) (Result, error) {
	sref, err := distclient.ParseRef(subjectRef)
	if err != nil {
		return Result{}, err
	}
	desc, err := c.Engine.Client.HeadManifest(ctx, sref)
	if err != nil {
		return Result{}, fmt.Errorf("subject %s: %w", subjectRef, err)
	}
	subject := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	bo.Subject = &subject
	b, err := Build(files, bo)
	if err != nil {
		return Result{}, err
	}
	defer b.Cleanup()
	dst := distclient.Ref{Repo: sref.Repo, Digest: b.Descriptor().Digest.String()}
	dl, err := transfer.ParseLocation(dst.String())
	if err != nil {
		return Result{}, err
	}
	res, err := c.Engine.CopyLocations(ctx, transfer.Custom("files", b.Source, nil), dl, o)
	if err != nil {
		return Result{}, err
	}
	return Result{Reference: res.Reference, Digest: res.Digest}, nil
}

// Pull fetches the artifact at ref into dir (see Extract).
func (c *Client) Pull(ctx context.Context, ref, dir string, o transfer.Options) (Result, error) {
	sl, err := transfer.ParseLocation(ref)
	if err != nil {
		return Result{}, err
	}
	if !sl.IsRegistry() {
		return Result{}, fmt.Errorf("%s: pull from a registry reference", ref)
	}
	if dir == "" {
		dir = "."
	}
	sink, err := NewSink(dir)
	if err != nil {
		return Result{}, err
	}
	defer sink.Cleanup()
	res, err := c.Engine.CopyLocations(ctx, sl, transfer.Custom(dir, nil, sink), o)
	if err != nil {
		return Result{}, err
	}
	_, raw := sink.Root()
	m, err := ParseManifest(raw)
	if err != nil {
		return Result{}, err
	}
	files, err := Extract(ctx, sink, m, dir)
	if err != nil {
		return Result{}, err
	}
	return Result{Reference: res.Reference, Digest: res.Digest, Files: files}, nil
}

// Node is a manifest in a tree of referrers.
type Node struct {
	Reference    string            `json:"reference,omitempty"`
	Digest       digest.Digest     `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Referrers    []*Node           `json:"referrers"`
}

// Discover returns the manifest ref names with what refers to it, and what refers to
// those in turn, down to depth levels (0: no bound), through the referrers API or its
// tag-schema fallback.
func (c *Client) Discover(ctx context.Context, ref string, depth int) (*Node, error) {
	r, err := distclient.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	desc, err := c.Engine.Client.HeadManifest(ctx, r)
	if err != nil {
		return nil, err
	}
	root := &Node{Reference: r.String(), Digest: desc.Digest, MediaType: desc.MediaType, Size: desc.Size}
	seen := map[digest.Digest]bool{desc.Digest: true}
	var walk func(n *Node, level int) error
	walk = func(n *Node, level int) error {
		n.Referrers = []*Node{}
		if depth > 0 && level >= depth {
			return nil
		}
		refs, err := c.Engine.Client.Referrers(ctx, r.Repo, n.Digest)
		if err != nil {
			return err
		}
		for _, d := range refs {
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			ch := &Node{Digest: d.Digest, MediaType: d.MediaType, ArtifactType: d.ArtifactType, Size: d.Size, Annotations: d.Annotations}
			n.Referrers = append(n.Referrers, ch)
			if err := walk(ch, level+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	return root, nil
}
