package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// outputDir is where, under the workspace, steps write their $HUBCTL_OUTPUT files.
const outputDir = ".hubctl"

func outputPath(job *executor.JobSpec, index int) string {
	return path.Join(job.Workspace(), outputDir, "output-"+strconv.Itoa(index))
}

// StartStep creates and starts the step's container, pulling its image if the engine
// lacks it. A step whose container exists already is found, not started again.
func (e *Executor) StartStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec) error {
	if err := checkStep(job, step); err != nil {
		return err
	}
	cfg, mounts, err := stepConfig(job, step)
	if err != nil {
		return err
	}
	// Two calls racing in this process must not both start a container that one of
	// them created: a second start would run an ended step again. Across processes
	// the engine's job lease keeps a step to one caller at a time.
	unlock := e.lockJob(job.JobID + "/" + strconv.Itoa(step.Index))
	defer unlock()
	if c, err := e.findStep(ctx, job, step.Index); err != nil {
		return err
	} else if c != nil && c.State != container.StateCreated {
		return nil
	}
	host, netcfg, err := e.stepHost(ctx, job, mounts)
	if err != nil {
		return err
	}
	if err := e.ensureImage(ctx, job, cfg.Image); err != nil {
		return err
	}
	name := stepName(job, step.Index)
	id, created, err := e.createOrFind(ctx, job, name, cfg, host, netcfg)
	if err != nil {
		return err
	}
	if !created {
		ins, err := e.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return fmt.Errorf("docker executor: inspect %s: %w", name, err)
		}
		if ins.Container.State != nil && ins.Container.State.Status != container.StateCreated {
			return nil // another StartStep got there first
		}
	}
	if err := e.resetOutput(ctx, id, job, step.Index); err != nil {
		return err
	}
	if err := e.copyFiles(ctx, id, job); err != nil {
		return err
	}
	if _, err := e.api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("docker executor: start %s: %w", name, err)
	}
	return nil
}

// stepConfig is the container the step runs in and the volumes it mounts; it checks
// the spec without talking to the engine.
func stepConfig(job *executor.JobSpec, step *executor.StepSpec) (*container.Config, []mount.Mount, error) {
	image := step.Image
	if image == "" {
		image = job.Image
	}
	if image == "" {
		return nil, nil, fmt.Errorf("docker executor: step %d (%s) has no image and the job none", step.Index, step.Name)
	}
	ws := job.Workspace()
	if !path.IsAbs(ws) {
		return nil, nil, fmt.Errorf("docker executor: workspace %q is not an absolute path", ws)
	}
	workdir := ws
	if step.Workdir != "" {
		if path.IsAbs(step.Workdir) {
			workdir = path.Clean(step.Workdir)
		} else {
			workdir = path.Join(ws, step.Workdir)
			if workdir != ws && !strings.HasPrefix(workdir, ws+"/") {
				return nil, nil, fmt.Errorf("docker executor: step %d: workdir %q leaves the workspace", step.Index, step.Workdir)
			}
		}
	}
	secrets := make([]executor.EnvVar, 0, len(step.Secrets))
	for _, name := range step.Secrets {
		v, ok := job.Secrets[name]
		if !ok {
			return nil, nil, fmt.Errorf("docker executor: step %d asks for secret %q, which the job does not have", step.Index, name)
		}
		secrets = append(secrets, executor.EnvVar{Name: name, Value: v})
	}
	env := mergeEnv(job.Env, step.Env, secrets, []executor.EnvVar{
		{Name: "HUBCTL_WORKSPACE", Value: ws},
		{Name: "HUBCTL_OUTPUT", Value: outputPath(job, step.Index)},
	})
	if err := checkEnv(env); err != nil {
		return nil, nil, err
	}

	mounts := []mount.Mount{{Type: mount.TypeVolume, Source: workspaceName(job), Target: ws}}
	if job.CacheKey != "" && job.CachePath != "" {
		if !path.IsAbs(job.CachePath) {
			return nil, nil, fmt.Errorf("docker executor: cache path %q is not an absolute path", job.CachePath)
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: cacheName(job.CacheKey), Target: job.CachePath})
	}

	secs := int((job.Grace() + time.Second - 1) / time.Second)
	cfg := &container.Config{
		Image:       image,
		Env:         envList(env),
		WorkingDir:  workdir,
		Labels:      labels(job, LabelStep, strconv.Itoa(step.Index)),
		StopTimeout: &secs,
	}
	if step.Run != "" {
		cfg.Entrypoint = []string{"/bin/sh", "-e", "-c"}
		cfg.Cmd = []string{step.Run}
	} else if len(step.Args) > 0 {
		cfg.Cmd = step.Args
	}
	return cfg, mounts, nil
}

// stepHost makes sure the network and the volumes exist (with their labels: the
// engine would otherwise make an unlabelled volume on its own) and returns the
// step's host and network settings.
func (e *Executor) stepHost(ctx context.Context, job *executor.JobSpec, mounts []mount.Mount) (*container.HostConfig, *network.NetworkingConfig, error) {
	netID, err := e.ensureNetwork(ctx, job)
	if err != nil {
		return nil, nil, err
	}
	if err := e.ensureVolume(ctx, workspaceName(job), labels(job, LabelRole, "workspace")); err != nil {
		return nil, nil, err
	}
	if job.CacheKey != "" && job.CachePath != "" {
		if err := e.ensureVolume(ctx, cacheName(job.CacheKey), cacheLabels(job)); err != nil {
			return nil, nil, err
		}
	}
	useInit := true // an init process forwards SIGTERM to the step, so a stop ends it within grace
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(netID),
		Mounts:      mounts,
		Resources:   resources(job),
		Init:        &useInit,
	}
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netID: {}}}
	if e.hostNet {
		host.NetworkMode, netcfg = container.NetworkMode(network.NetworkHost), nil
	}
	return host, netcfg, nil
}

// resetOutput writes an empty $HUBCTL_OUTPUT (and its directory, writable by any
// user) into the created container's workspace through the archive API, so the step
// can append to it and an earlier attempt's output is not read back.
func (e *Executor) resetOutput(ctx context.Context, id string, job *executor.JobSpec, index int) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	hdrs := []*tar.Header{
		{Name: outputDir + "/", Typeflag: tar.TypeDir, Mode: 0o777, ModTime: now},
		{Name: outputDir + "/output-" + strconv.Itoa(index), Typeflag: tar.TypeReg, Mode: 0o666, ModTime: now},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := e.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{
		DestinationPath: job.Workspace(),
		Content:         &buf,
	}); err != nil {
		return fmt.Errorf("docker executor: prepare output of step %d: %w", index, err)
	}
	return nil
}

// findStep returns the container of the step, or nil.
func (e *Executor) findStep(ctx context.Context, job *executor.JobSpec, index int) (*container.Summary, error) {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: jobFilter(job).Add("label", LabelStep+"="+strconv.Itoa(index)),
	})
	if err != nil {
		return nil, fmt.Errorf("docker executor: list containers: %w", err)
	}
	for i := range res.Items {
		for _, n := range res.Items[i].Names {
			if strings.TrimPrefix(n, "/") == stepName(job, index) {
				return &res.Items[i], nil
			}
		}
	}
	return nil, nil
}

func (e *Executor) mustFindStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec) (string, error) {
	if err := checkStep(job, step); err != nil {
		return "", err
	}
	c, err := e.findStep(ctx, job, step.Index)
	if err != nil {
		return "", err
	}
	if c == nil {
		return "", fmt.Errorf("docker executor: step %d of job %s: %w", step.Index, job.JobID, executor.ErrNotFound)
	}
	return c.ID, nil
}

// WaitStep waits for the step's container to stop and returns its state, with the
// step's $HUBCTL_OUTPUT. A step with a Timeout that is still running that long after
// it started (by the engine's clock, so the bound survives a restart) is stopped with
// the job's grace period and reported with Error "timed out after …".
func (e *Executor) WaitStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec) (*executor.StepState, error) {
	id, err := e.mustFindStep(ctx, job, step)
	if err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	if step.Timeout > 0 {
		ins, err := e.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return nil, fmt.Errorf("docker executor: inspect step %d: %w", step.Index, err)
		}
		if s := ins.Container.State; s != nil && s.Running {
			if started := parseTime(s.StartedAt); !started.IsZero() {
				timer := time.NewTimer(time.Until(started.Add(step.Timeout)))
				defer timer.Stop()
				timeout = timer.C
			}
		}
	}
	w := e.api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	// A wait on an engine that restarted, or over a connection that silently died,
	// may never answer: the container is looked at now and then, so a step whose
	// container is gone fails instead of running forever.
	check := time.NewTicker(vanishCheck)
	defer check.Stop()
	timedOut := false
	for done := false; !done; {
		select {
		case <-w.Result:
			done = true
		case err := <-w.Error:
			if err != nil {
				if ctx.Err() == nil && e.gone(ctx, id) {
					if e.destroyedHere(id) {
						return destroyedState(), nil
					}
					return nil, vanished(step)
				}
				return nil, fmt.Errorf("docker executor: wait for step %d: %w", step.Index, err)
			}
			done = true
		case <-check.C:
			if e.gone(ctx, id) {
				if e.destroyedHere(id) {
					return destroyedState(), nil
				}
				return nil, vanished(step)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			timeout, timedOut = nil, true
			secs := int((job.Grace() + time.Second - 1) / time.Second)
			if _, err := e.api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("docker executor: stop step %d after its timeout: %w", step.Index, err)
			}
		}
	}
	if !timedOut && ctx.Err() == nil && !e.destroyedHere(id) && e.going(ctx, id) {
		// This executor did not remove it (a cancel's DestroyStep): someone else did
		// (docker rm -f), or the engine lost it.
		return nil, vanished(step)
	}
	st, err := e.state(ctx, job, id, step.Index)
	if errors.Is(err, executor.ErrNotFound) && e.destroyedHere(id) {
		return destroyedState(), nil
	}
	if err == nil && timedOut {
		st.TimedOut = true
		if st.Error == "" {
			st.Error = fmt.Sprintf("timed out after %s", step.Timeout)
		}
	}
	return st, err
}

// state inspects the container; an ended step's output is read back.
func (e *Executor) state(ctx context.Context, job *executor.JobSpec, id string, index int) (*executor.StepState, error) {
	ins, err := e.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("docker executor: step %d: %w", index, executor.ErrNotFound)
		}
		return nil, fmt.Errorf("docker executor: inspect step %d: %w", index, err)
	}
	s := ins.Container.State
	if s == nil {
		return nil, fmt.Errorf("docker executor: step %d: engine reported no state", index)
	}
	st := &executor.StepState{
		Running:    s.Running || s.Restarting || s.Paused,
		ExitCode:   s.ExitCode,
		OOMKilled:  s.OOMKilled,
		Error:      s.Error,
		StartedAt:  parseTime(s.StartedAt),
		FinishedAt: parseTime(s.FinishedAt),
	}
	if s.Status == container.StateCreated && st.Error == "" {
		st.Error = "the container was created but never started"
	}
	if !st.Running {
		out, err := e.readOutput(ctx, id, outputPath(job, index))
		if err != nil {
			if e.going(ctx, id) {
				// Removed under us (a cancel's DestroyStep): the engine answers the
				// copy with a tar error rather than not-found. A cancelled step's
				// outputs are not wanted; its end is.
				return st, nil
			}
			return nil, err
		}
		st.Output = out
	}
	return st, nil
}

// removalWait bounds how long DestroyWorkflow waits for containers being removed by
// someone else before it removes the job's volumes and network.
const removalWait = 10 * time.Second

// vanishCheck is how often WaitStep makes sure the step's container still exists.
var vanishCheck = 5 * time.Second

// vanished is WaitStep's error for a step whose container was removed under it.
func vanished(step *executor.StepSpec) error {
	return fmt.Errorf("docker executor: step %d: its container is gone (removed while it ran, or its Docker engine lost it): %w",
		step.Index, executor.ErrNotFound)
}

// gone reports whether the engine answers that container id does not exist (an
// engine that does not answer says nothing: the wait goes on).
func (e *Executor) gone(ctx context.Context, id string) bool {
	_, err := e.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return isNotFound(err)
}

// going reports whether container id is gone or being removed.
func (e *Executor) going(ctx context.Context, id string) bool {
	ins, err := e.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return isNotFound(err)
	}
	s := ins.Container.State
	return s == nil || s.Dead || s.Status == container.StateRemoving || s.Status == container.StateDead
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// readOutput reads file from the container through the engine's archive API (the
// engine may be remote), at most executor.MaxOutput bytes; a missing file is empty.
func (e *Executor) readOutput(ctx context.Context, id, file string) ([]byte, error) {
	res, err := e.api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: file})
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("docker executor: read %s: %w", file, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("docker executor: read %s: %w", file, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue // a step that replaced the file with a link or a directory gets nothing
		}
		out, err := io.ReadAll(io.LimitReader(tr, executor.MaxOutput))
		if err != nil {
			return nil, fmt.Errorf("docker executor: read %s: %w", file, err)
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
}

// TailStep follows the step's combined stdout and stderr from byte offset.
func (e *Executor) TailStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("docker executor: negative log offset %d", offset)
	}
	id, err := e.mustFindStep(ctx, job, step)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	logs, err := e.api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("docker executor: logs of step %d: %w", step.Index, err)
	}
	pr, pw := io.Pipe()
	go func() {
		// "docker logs --since" is not exact to the byte: read from the start and skip.
		w := &skipWriter{w: pw, skip: offset}
		_, err := stdcopy.StdCopy(w, w, logs)
		logs.Close()
		pw.CloseWithError(err)
	}()
	return &tail{PipeReader: pr, cancel: cancel}, nil
}

type tail struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (t *tail) Close() error {
	t.cancel()
	return t.PipeReader.Close()
}

// skipWriter drops the first skip bytes written to it.
type skipWriter struct {
	w    io.Writer
	skip int64
}

func (s *skipWriter) Write(p []byte) (int, error) {
	if s.skip >= int64(len(p)) {
		s.skip -= int64(len(p))
		return len(p), nil
	}
	n := s.skip
	s.skip = 0
	if _, err := s.w.Write(p[n:]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// DestroyStep stops the step's container (SIGTERM, then SIGKILL after the job's
// grace period) and removes it.
func (e *Executor) DestroyStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec) error {
	if err := checkStep(job, step); err != nil {
		return err
	}
	c, err := e.findStep(ctx, job, step.Index)
	if err != nil || c == nil {
		return err
	}
	return e.destroyContainer(ctx, job, c.ID)
}

func (e *Executor) destroyContainer(ctx context.Context, job *executor.JobSpec, id string) error {
	e.markDestroyed(id)
	secs := int((job.Grace() + time.Second - 1) / time.Second)
	if _, err := e.api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !isNotFound(err) {
		return fmt.Errorf("docker executor: stop %s: %w", id, err)
	}
	if _, err := e.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) && !isConflict(err) {
		// Conflict: a removal is already in progress.
		return fmt.Errorf("docker executor: remove %s: %w", id, err)
	}
	return nil
}

// DestroyWorkflow removes the job's containers (steps and services, stopped with the
// grace period, in parallel), its workspace volume and its network. The cache volume
// stays for the next run.
func (e *Executor) DestroyWorkflow(ctx context.Context, job *executor.JobSpec) error {
	if err := checkJob(job); err != nil {
		return err
	}
	e.forgetFiles(job)
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: jobFilter(job)})
	if err != nil {
		return fmt.Errorf("docker executor: list containers: %w", err)
	}
	errc := make(chan error, len(res.Items))
	for _, c := range res.Items {
		go func(id string) { errc <- e.destroyContainer(ctx, job, id) }(c.ID)
	}
	var errs []error
	for range res.Items {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// A container someone else is removing (a conflict above) still holds the
	// volumes and the network: wait, briefly, for it to go.
	for deadline := time.Now().Add(removalWait); ; {
		left, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: jobFilter(job)})
		if err != nil || len(left.Items) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	vols, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: jobFilter(job)})
	if err != nil {
		return fmt.Errorf("docker executor: list volumes: %w", err)
	}
	for _, v := range vols.Items {
		if _, err := e.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("docker executor: remove volume %s: %w", v.Name, err))
		}
	}
	nets, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: jobFilter(job)})
	if err != nil {
		return fmt.Errorf("docker executor: list networks: %w", err)
	}
	for _, n := range nets.Items {
		if _, err := e.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("docker executor: remove network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Find reports the job's step containers by index, with their state (and, for ended
// steps, their output).
func (e *Executor) Find(ctx context.Context, job *executor.JobSpec) (map[int]*executor.StepState, error) {
	if err := checkJob(job); err != nil {
		return nil, err
	}
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: jobFilter(job).Add("label", LabelStep),
	})
	if err != nil {
		return nil, fmt.Errorf("docker executor: list containers: %w", err)
	}
	out := make(map[int]*executor.StepState, len(res.Items))
	for _, c := range res.Items {
		idx, err := strconv.Atoi(c.Labels[LabelStep])
		if err != nil || idx < 0 {
			continue
		}
		st, err := e.state(ctx, job, c.ID, idx)
		if errors.Is(err, executor.ErrNotFound) {
			continue // removed while we looked
		}
		if err != nil {
			return nil, err
		}
		out[idx] = st
	}
	return out, nil
}

// destroyedKeep bounds how long a destroyed container is remembered: a WaitStep
// still waiting on it answers well within that.
const destroyedKeep = 10 * time.Minute

// markDestroyed remembers that this executor removes container id.
func (e *Executor) markDestroyed(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if e.destroyed == nil {
		e.destroyed = map[string]time.Time{}
	}
	for k, t := range e.destroyed {
		if now.Sub(t) > destroyedKeep {
			delete(e.destroyed, k)
		}
	}
	e.destroyed[id] = now
}

// destroyedHere reports whether this executor removed container id.
func (e *Executor) destroyedHere(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.destroyed[id]
	return ok
}

// destroyedState is what WaitStep answers for a step this executor stopped and
// removed while it waited (a cancel): ended, not successful, its outputs gone.
func destroyedState() *executor.StepState {
	return &executor.StepState{ExitCode: 137, Error: "stopped and removed (cancelled)"}
}
