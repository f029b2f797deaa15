package registry

import (
	"context"

	"github.com/hubctl/hubctl/internal/metadata"
)

// ArtifactHook sees manifests before the registry stores them, so that artifacts the
// hub understands (helm charts) are checked and recorded. It is one call on the
// manifest PUT path; nil hooks nothing.
type ArtifactHook interface {
	// CheckManifest is called with a parsed manifest (Payload set) and the tags it is
	// being put under ("" for none) before anything is stored. An error refuses the
	// put (an *errcode.Error goes to the client as it is). When it returns a function,
	// the registry calls it after the manifest and its tags are stored.
	CheckManifest(ctx context.Context, m metadata.Manifest, tags []string) (stored func(context.Context) error, err error)
}

// checkArtifact runs the hook, if any.
func (h *Handler) checkArtifact(ctx context.Context, m metadata.Manifest, tags []string) (func(context.Context) error, error) {
	if h.o.Artifacts == nil {
		return nil, nil
	}
	return h.o.Artifacts.CheckManifest(ctx, m, tags)
}
