package executor

import (
	"context"
	"io"
)

// Archiver is what an executor implements to move files between a job run's
// workspace (or cache path) and the engine, for artifacts and caches
// (docs/workflows.md, "Artifacts and caches"). It is optional: the engine asks an
// executor for it with a type assertion, and a job declaring artifacts or a cache on
// an executor without it fails with that reason.
type Archiver interface {
	// ExportPath returns a tar stream of path (relative to the job's workspace, or
	// absolute inside the job's filesystem, as the cache path is), its entries
	// named from path's base name down ("dist/a.txt" for "build/dist"), as docker's
	// archive API names them. A path that does not exist is ErrNotFound.
	ExportPath(ctx context.Context, job *JobSpec, path string) (io.ReadCloser, error)
	// ImportPath extracts the tar stream into dir (relative to the workspace, or
	// absolute), made if missing. The engine passes only streams it has checked
	// (no absolute names, no "..", no links out, no devices); an executor still
	// never writes outside dir.
	ImportPath(ctx context.Context, job *JobSpec, dir string, tar io.Reader) error
}
