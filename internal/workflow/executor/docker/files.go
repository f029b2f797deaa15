package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

var _ executor.FileWriter = (*Executor)(nil)

// FilePath is where steps read the job's file name: the workspace's .hubctl
// directory (beside the steps' $HUBCTL_OUTPUT files), on the job's volume.
func (e *Executor) FilePath(job *executor.JobSpec, name string) string {
	return path.Join(job.Workspace(), outputDir, name)
}

// WriteFile keeps data as the job's file name, written into every step container
// started from now on (StartStep), and copies it now into the job's step containers
// that are created or running, through the archive API. The workspace is a volume
// the steps share, so the step running now reads the new content at once.
func (e *Executor) WriteFile(ctx context.Context, job *executor.JobSpec, name string, data []byte) error {
	if err := checkJob(job); err != nil {
		return err
	}
	if err := executor.CheckFileName(name, data); err != nil {
		return err
	}
	e.mu.Lock()
	if e.files == nil {
		e.files = map[string]map[string][]byte{}
	}
	if e.files[job.JobID] == nil {
		e.files[job.JobID] = map[string][]byte{}
	}
	e.files[job.JobID][name] = slices.Clone(data)
	e.mu.Unlock()

	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: jobFilter(job)})
	if err != nil {
		return fmt.Errorf("docker executor: list containers: %w", err)
	}
	for _, c := range res.Items {
		if _, step := c.Labels[LabelStep]; !step {
			continue // services do not mount the workspace
		}
		if c.State != container.StateRunning && c.State != container.StateCreated {
			continue
		}
		if err := e.copyFiles(ctx, c.ID, job); err != nil {
			return err
		}
	}
	return nil
}

// copyFiles writes the job's files into container id's workspace as one archive.
func (e *Executor) copyFiles(ctx context.Context, id string, job *executor.JobSpec) error {
	e.mu.Lock()
	files := map[string][]byte{}
	for n, d := range e.files[job.JobID] {
		files[n] = d
	}
	e.mu.Unlock()
	if len(files) == 0 {
		return nil
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Name: outputDir + "/", Typeflag: tar.TypeDir, Mode: 0o777, ModTime: now}); err != nil {
		return err
	}
	for _, n := range names {
		// Readable by whatever user the step's image runs as, like the token in its
		// environment; written only by the engine.
		if err := tw.WriteHeader(&tar.Header{Name: outputDir + "/" + n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n])), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := e.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: job.Workspace(), Content: &buf}); err != nil {
		return fmt.Errorf("docker executor: write the job's files: %w", err)
	}
	return nil
}

// forgetFiles drops the job's files, when the job is destroyed.
func (e *Executor) forgetFiles(job *executor.JobSpec) {
	e.mu.Lock()
	delete(e.files, job.JobID)
	e.mu.Unlock()
}
