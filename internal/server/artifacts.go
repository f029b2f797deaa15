package server

import (
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// artifactOptions are the engine's artifact, cache and retention settings of
// workflows.*: artifacts and caches live in the hub's blob store, their rows in the
// metadata store (docs/workflows.md, "Artifacts and caches").
func artifactOptions(w config.Workflows, store engine.ArtifactStore, blobs blobstore.Store) engine.ArtifactOptions {
	o := engine.ArtifactOptions{
		Store: store, Blobs: blobs,
		MaxSize: int64(w.Artifacts.MaxSize), MaxRunSize: int64(w.Artifacts.MaxRunSize),
		CacheMaxSize: int64(w.Cache.MaxSize), CacheMaxTotal: int64(w.Cache.MaxTotal),
		Retention: w.Retention,
	}
	if w.Retention == 0 {
		o.Retention = -1 // kept for ever
	}
	return o
}
