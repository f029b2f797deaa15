package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

var _ executor.FileWriter = (*Executor)(nil)

// filesDir is where a job's files live: beside its logs, outside the workspace, so a
// step that archives its workspace does not take them along.
func (x *Executor) filesDir(spec *executor.JobSpec) string {
	return filepath.Join(x.root, "job-"+spec.JobID, "files")
}

// FilePath is the file's path on the host, where the job's processes read it.
func (x *Executor) FilePath(spec *executor.JobSpec, name string) string {
	return filepath.Join(x.filesDir(spec), name)
}

// WriteFile writes the file under a temporary name and renames it over the old one,
// so a step reading it sees the old token or the new one, never half of either.
func (x *Executor) WriteFile(ctx context.Context, spec *executor.JobSpec, name string, data []byte) error {
	if err := executor.CheckFileName(name, data); err != nil {
		return err
	}
	if _, err := x.job(spec); err != nil {
		return err
	}
	dir := x.filesDir(spec)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local executor: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return fmt.Errorf("local executor: %w", err)
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("local executor: write %s: %w", name, werr)
	}
	return nil
}
