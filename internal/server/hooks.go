package server

import (
	"context"

	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/registry"
)

// artifactHooks runs several registry.ArtifactHooks on each manifest put, in order
// (the chart repository's, then the search index's); the first refusal refuses the
// put, and each hook's stored function runs after the manifest is stored.
type artifactHooks []registry.ArtifactHook

func (hs artifactHooks) CheckManifest(ctx context.Context, m metadata.Manifest, tags []string) (func(context.Context) error, error) {
	var after []func(context.Context) error
	for _, h := range hs {
		fn, err := h.CheckManifest(ctx, m, tags)
		if err != nil {
			return nil, err
		}
		if fn != nil {
			after = append(after, fn)
		}
	}
	if len(after) == 0 {
		return nil, nil
	}
	return func(ctx context.Context) error {
		for _, fn := range after {
			if err := fn(ctx); err != nil {
				return err
			}
		}
		return nil
	}, nil
}
