package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

var _ executor.Archiver = (*Executor)(nil)

// filesName is the job's files container: created, never started, with the job's
// workspace and cache volumes mounted, so the archive API (GET/PUT
// /containers/{id}/archive, in every engine since API 1.20) reads and writes them
// before the first step and after the last, with nothing read from a host path.
func filesName(job *executor.JobSpec) string { return "hubctl-" + job.JobID + "-files" }

// LabelFiles marks the job's files container (hubctl.role=files).
const roleFiles = "files"

// filesContainer creates (or finds) the job's files container and returns its id.
func (e *Executor) filesContainer(ctx context.Context, job *executor.JobSpec) (string, error) {
	if err := checkJob(job); err != nil {
		return "", err
	}
	if job.Image == "" {
		return "", fmt.Errorf("docker executor: artifacts and caches are moved through a container of the job's image: the job needs an image")
	}
	if err := e.ensureImage(ctx, job, job.Image); err != nil {
		return "", err
	}
	ws := job.Workspace()
	if !path.IsAbs(ws) {
		return "", fmt.Errorf("docker executor: workspace %q is not an absolute path", ws)
	}
	if err := e.ensureVolume(ctx, workspaceName(job), labels(job, LabelRole, "workspace")); err != nil {
		return "", err
	}
	mounts := []mount.Mount{{Type: mount.TypeVolume, Source: workspaceName(job), Target: ws}}
	if job.CacheKey != "" && job.CachePath != "" {
		if !path.IsAbs(job.CachePath) {
			return "", fmt.Errorf("docker executor: cache path %q is not an absolute path", job.CachePath)
		}
		if err := e.ensureVolume(ctx, cacheName(job.CacheKey), cacheLabels(job)); err != nil {
			return "", err
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: cacheName(job.CacheKey), Target: job.CachePath})
	}
	cfg := &container.Config{
		Image: job.Image,
		// Never run: a command is only what create asks of an image without one.
		Cmd:    []string{"/hubctl-files-never-started"},
		Labels: labels(job, LabelRole, roleFiles),
	}
	host := &container.HostConfig{NetworkMode: container.NetworkMode(network.NetworkNone), Mounts: mounts}
	id, _, err := e.createOrFind(ctx, job, filesName(job), cfg, host, nil)
	return id, err
}

// inside resolves p (relative to the workspace, or absolute) to an absolute path of
// the job's filesystem that lies in the workspace or the cache path.
func inside(job *executor.JobSpec, p string) (string, error) {
	ws := job.Workspace()
	abs := path.Clean(p)
	if !path.IsAbs(p) {
		abs = path.Join(ws, p)
	}
	for _, root := range []string{ws, job.CachePath} {
		if root != "" && (abs == root || strings.HasPrefix(abs, root+"/")) {
			return abs, nil
		}
	}
	return "", fmt.Errorf("docker executor: %q is neither in the workspace nor the job's cache path", p)
}

// ExportPath streams a tar of path out of the job's volumes (see executor.Archiver).
func (e *Executor) ExportPath(ctx context.Context, job *executor.JobSpec, p string) (io.ReadCloser, error) {
	abs, err := inside(job, p)
	if err != nil {
		return nil, err
	}
	id, err := e.filesContainer(ctx, job)
	if err != nil {
		return nil, err
	}
	res, err := e.api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: abs})
	if isNotFound(err) {
		return nil, fmt.Errorf("docker executor: %s: %w", p, executor.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("docker executor: export %s: %w", p, err)
	}
	return res.Content, nil
}

// ImportPath extracts tar into dir of the job's volumes (see executor.Archiver). The
// directories down to dir are made first: the engine extracts only into a directory
// that exists.
func (e *Executor) ImportPath(ctx context.Context, job *executor.JobSpec, dir string, tr io.Reader) error {
	abs, err := inside(job, dir)
	if err != nil {
		return err
	}
	id, err := e.filesContainer(ctx, job)
	if err != nil {
		return err
	}
	for _, root := range []string{job.Workspace(), job.CachePath} {
		if root == "" || abs == root || !strings.HasPrefix(abs, root+"/") {
			continue
		}
		if err := e.makeDirs(ctx, id, root, strings.TrimPrefix(abs, root+"/")); err != nil {
			return err
		}
		break
	}
	if _, err := e.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: abs, Content: tr}); err != nil {
		return fmt.Errorf("docker executor: import into %s: %w", dir, err)
	}
	return nil
}

// makeDirs makes the directories of rel under root through the archive API.
func (e *Executor) makeDirs(ctx context.Context, id, root, rel string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	p := ""
	for _, el := range strings.Split(rel, "/") {
		p = path.Join(p, el)
		if err := tw.WriteHeader(&tar.Header{Name: p + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := e.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: root, Content: &buf}); err != nil {
		return fmt.Errorf("docker executor: make %s in %s: %w", rel, root, err)
	}
	return nil
}
