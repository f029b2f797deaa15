package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hubctl/hubctl/internal/workflow/archive"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

var _ executor.Archiver = (*Executor)(nil)

// resolve maps a job's path to a directory of the host and a slash path inside it:
// relative paths are the workspace's, and the job's cache path (absolute, as steps in
// containers see it) is the job's cache directory. Anything else is refused.
func (x *Executor) resolve(spec *executor.JobSpec, p string) (dir, rel string, err error) {
	j, err := x.job(spec)
	if err != nil {
		return "", "", err
	}
	if !path.IsAbs(p) {
		rel = path.Clean(p)
		if !filepath.IsLocal(filepath.FromSlash(rel)) && rel != "." {
			return "", "", fmt.Errorf("local executor: path %q leaves the workspace", p)
		}
		return j.workspace, rel, nil
	}
	cp := path.Clean(spec.CachePath)
	clean := path.Clean(p)
	if spec.CachePath == "" || (clean != cp && !strings.HasPrefix(clean, cp+"/")) {
		return "", "", fmt.Errorf("local executor: %q is neither in the workspace nor the job's cache path", p)
	}
	rel = "cache"
	if clean != cp {
		rel = "cache/" + strings.TrimPrefix(clean, cp+"/")
	}
	return j.dir, rel, nil
}

// ExportPath streams a tar of the job's path (see executor.Archiver).
func (x *Executor) ExportPath(ctx context.Context, spec *executor.JobSpec, p string) (io.ReadCloser, error) {
	dir, rel, err := x.resolve(spec, p)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(rel))); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local executor: %s: %w", p, executor.ErrNotFound)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Create(pw, dir, rel, noLimits)) }()
	return pr, nil
}

// noLimits: the engine bounds what it stores as it reads.
var noLimits = archive.Limits{Bytes: 1 << 62, Entries: 1 << 30}

// ImportPath extracts a tar into the job's dir (see executor.Archiver).
func (x *Executor) ImportPath(ctx context.Context, spec *executor.JobSpec, p string, tr io.Reader) error {
	dir, rel, err := x.resolve(spec, p)
	if err != nil {
		return err
	}
	if err := archive.Extract(tr, filepath.Join(dir, filepath.FromSlash(rel)), archive.Limits{Bytes: 1 << 62, Entries: 1 << 30}); err != nil {
		return fmt.Errorf("local executor: import into %s: %w", p, err)
	}
	return nil
}
