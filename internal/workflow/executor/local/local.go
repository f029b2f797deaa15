// Package local is an executor.Executor that runs a job's steps as processes of the
// host (`/bin/sh -e -c` for run:) in a temporary workspace directory. It runs no
// container: a step's image, services and resources are ignored and a step sees the
// host's programs; the job's cache is a directory of the job ($HUBCTL_CACHE), which the
// engine fills from the hub and saves back (archive.go). It exists for the engine's tests and for `hubctl workflow run
// --local` on machines without Docker, and is never the hub's default executor: on a
// hub, steps written for containers must run in containers.
//
// Processes do not survive the engine that started them, so Find knows only the steps
// this Executor started: after a restart the engine fails a step that was running
// rather than starting it twice.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// Executor runs steps as host processes under a root directory.
type Executor struct {
	root string
	mu   sync.Mutex
	jobs map[string]*job
}

type job struct {
	dir, workspace string
	steps          map[int]*step
}

type step struct {
	cmd     *exec.Cmd
	logPath string
	outPath string
	done    chan struct{}
	grace   time.Duration
	mu      sync.Mutex
	state   executor.StepState
}

var _ executor.Executor = (*Executor)(nil)

// idRe is what a job id may be: it names a directory.
var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// New returns an executor keeping its workspaces and logs under root, which it creates.
func New(root string) (*Executor, error) {
	if root == "" {
		return nil, errors.New("local executor: a root directory is required")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("local executor: %w", err)
	}
	return &Executor{root: root, jobs: map[string]*job{}}, nil
}

// Name is "local".
func (x *Executor) Name() string { return "local" }

func (x *Executor) job(spec *executor.JobSpec) (*job, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	j := x.jobs[spec.JobID]
	if j == nil {
		return nil, fmt.Errorf("local executor: job %s: %w", spec.JobID, executor.ErrNotFound)
	}
	return j, nil
}

// SetupWorkflow makes the job's workspace directory (spec.WorkspaceDir is set to it).
func (x *Executor) SetupWorkflow(ctx context.Context, spec *executor.JobSpec) error {
	if !idRe.MatchString(spec.JobID) {
		return fmt.Errorf("local executor: job id %q is not a plain name", spec.JobID)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if j := x.jobs[spec.JobID]; j != nil {
		spec.WorkspaceDir = j.workspace
		return nil
	}
	dir := filepath.Join(x.root, "job-"+spec.JobID)
	ws := filepath.Join(dir, "workspace")
	if err := os.MkdirAll(ws, 0o700); err != nil {
		return fmt.Errorf("local executor: %w", err)
	}
	if spec.CachePath != "" {
		if err := os.MkdirAll(filepath.Join(dir, "cache"), 0o700); err != nil {
			return fmt.Errorf("local executor: %w", err)
		}
	}
	x.jobs[spec.JobID] = &job{dir: dir, workspace: ws, steps: map[int]*step{}}
	spec.WorkspaceDir = ws
	return nil
}

// StartStep starts step's script as a process group, or finds it started.
func (x *Executor) StartStep(ctx context.Context, spec *executor.JobSpec, st *executor.StepSpec) error {
	j, err := x.job(spec)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if j.steps[st.Index] != nil {
		return nil
	}
	if st.Run == "" {
		return fmt.Errorf("local executor: step %d: only run: steps run as host processes (no image entrypoint)", st.Index)
	}
	wd := j.workspace
	if st.Workdir != "" {
		if filepath.IsAbs(st.Workdir) || !filepath.IsLocal(st.Workdir) {
			return fmt.Errorf("local executor: step %d: workdir %q must lie inside the workspace", st.Index, st.Workdir)
		}
		wd = filepath.Join(j.workspace, st.Workdir)
		if err := os.MkdirAll(wd, 0o700); err != nil {
			return fmt.Errorf("local executor: %w", err)
		}
	}
	s := &step{
		logPath: filepath.Join(j.dir, fmt.Sprintf("step-%d.log", st.Index)),
		outPath: filepath.Join(j.dir, fmt.Sprintf("step-%d.out", st.Index)),
		done:    make(chan struct{}),
		grace:   spec.StopGrace,
	}
	if s.grace <= 0 {
		s.grace = 10 * time.Second
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("local executor: %w", err)
	}
	if err := os.WriteFile(s.outPath, nil, 0o600); err != nil {
		logf.Close()
		return fmt.Errorf("local executor: %w", err)
	}
	cmd := exec.Command("/bin/sh", "-e", "-c", st.Run)
	cmd.Dir = wd
	cmd.Env = stepEnv(spec, st, j.workspace, s.outPath)
	if spec.CachePath != "" {
		cmd.Env = append(cmd.Env, "HUBCTL_CACHE="+filepath.Join(j.dir, "cache"))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd = cmd
	s.state = executor.StepState{Running: true, StartedAt: time.Now()}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("local executor: step %d: %w", st.Index, err)
	}
	j.steps[st.Index] = s
	go func() {
		err := cmd.Wait()
		logf.Close()
		out, _ := readAtMost(s.outPath, executor.MaxOutput)
		s.mu.Lock()
		s.state.Running = false
		s.state.FinishedAt = time.Now()
		s.state.Output = out
		s.state.ExitCode = cmd.ProcessState.ExitCode()
		if s.state.ExitCode < 0 { // killed by a signal
			s.state.ExitCode = 128 + int(cmd.ProcessState.Sys().(syscall.WaitStatus).Signal())
		}
		if err != nil && cmd.ProcessState == nil {
			s.state.Error = err.Error()
		}
		s.mu.Unlock()
		close(s.done)
	}()
	return nil
}

// stepEnv is a step's environment: a minimal one of the host (PATH), the job's, the
// step's, the secrets it names, and the HUBCTL_* variables.
func stepEnv(spec *executor.JobSpec, st *executor.StepSpec, ws, out string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + ws}
	for _, e := range spec.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	for _, e := range st.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	for _, name := range st.Secrets {
		if v, ok := spec.Secrets[name]; ok {
			env = append(env, name+"="+v)
		}
	}
	return append(env, "HUBCTL_WORKSPACE="+ws, "HUBCTL_OUTPUT="+out)
}

func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

func (x *Executor) step(spec *executor.JobSpec, st *executor.StepSpec) (*step, error) {
	j, err := x.job(spec)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	s := j.steps[st.Index]
	if s == nil {
		return nil, fmt.Errorf("local executor: job %s step %d: %w", spec.JobID, st.Index, executor.ErrNotFound)
	}
	return s, nil
}

// WaitStep waits for the step's process to end.
func (x *Executor) WaitStep(ctx context.Context, spec *executor.JobSpec, st *executor.StepSpec) (*executor.StepState, error) {
	s, err := x.step(spec, st)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return s.snapshot(), nil
}

func (s *step) snapshot() *executor.StepState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Output = append([]byte(nil), s.state.Output...)
	return &st
}

// TailStep follows the step's log from offset until the step has ended and the log is
// read to its end.
func (x *Executor) TailStep(ctx context.Context, spec *executor.JobSpec, st *executor.StepSpec, offset int64) (io.ReadCloser, error) {
	s, err := x.step(spec, st)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("local executor: %w", err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("local executor: %w", err)
	}
	return &follower{ctx: ctx, f: f, done: s.done}, nil
}

// follower reads a growing file until its writer is done.
type follower struct {
	ctx  context.Context
	f    *os.File
	done <-chan struct{}
}

func (r *follower) Read(p []byte) (int, error) {
	for {
		n, err := r.f.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
		select {
		case <-r.done:
			// The writer has closed: what is left is read by the next Read, if any.
			if n, err := r.f.Read(p); n > 0 {
				return n, nil
			} else if err != nil && err != io.EOF {
				return 0, err
			}
			return 0, io.EOF
		case <-r.ctx.Done():
			return 0, context.Cause(r.ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *follower) Close() error { return r.f.Close() }

// DestroyStep stops the step's process group (SIGTERM, then SIGKILL after the grace
// period).
func (x *Executor) DestroyStep(ctx context.Context, spec *executor.JobSpec, st *executor.StepSpec) error {
	s, err := x.step(spec, st)
	if errors.Is(err, executor.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.stop()
	return nil
}

func (s *step) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(s.grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
}

// DestroyWorkflow stops every step of the job and removes its directory.
func (x *Executor) DestroyWorkflow(ctx context.Context, spec *executor.JobSpec) error {
	x.mu.Lock()
	j := x.jobs[spec.JobID]
	delete(x.jobs, spec.JobID)
	x.mu.Unlock()
	if j == nil {
		return nil
	}
	for _, s := range j.steps {
		s.stop()
	}
	if err := os.RemoveAll(j.dir); err != nil {
		return fmt.Errorf("local executor: %w", err)
	}
	return nil
}

// Find reports the steps of the job this executor started.
func (x *Executor) Find(ctx context.Context, spec *executor.JobSpec) (map[int]*executor.StepState, error) {
	x.mu.Lock()
	j := x.jobs[spec.JobID]
	x.mu.Unlock()
	out := map[int]*executor.StepState{}
	if j == nil {
		return out, nil
	}
	x.mu.Lock()
	steps := make(map[int]*step, len(j.steps))
	for i, s := range j.steps {
		steps[i] = s
	}
	x.mu.Unlock()
	for i, s := range steps {
		out[i] = s.snapshot()
	}
	return out, nil
}
