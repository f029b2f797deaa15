// Package executor is the one small interface between the workflow engine and what
// runs a job's containers (docs/design/workflows.md, "Executors"). It is Woodpecker's
// backend shape (pipeline/backend/types/backend.go): the engine knows runs, jobs and
// steps; an executor knows containers, processes or Kubernetes Jobs. The engine imports
// this package only, never an implementation (executor/local, executor/docker,
// executor/kube), so the implementations can be tested alone and swapped per hub.
package executor

import (
	"context"
	"errors"
	"io"
	"time"
)

// Executor runs the steps of one job run. Every method is idempotent on the ids in
// its JobSpec and StepSpec, so an engine restarted after a crash calls them again to
// re-attach: Find says what exists, StartStep of a step that already started finds it
// instead of starting it twice, TailStep resumes a log at a byte offset.
type Executor interface {
	// Name is the executor's kind ("local", "docker", "kube"), recorded with the job.
	Name() string
	// SetupWorkflow creates what the job's steps share: the workspace, the cache
	// mount, a network, the services. It is called once per job run before its first
	// step and again (finding what exists) after a restart.
	SetupWorkflow(ctx context.Context, job *JobSpec) error
	// StartStep starts step, or finds it already started (ErrNotFound is never the
	// answer: a step that ran and was removed is started again only by the engine's
	// decision, after Find).
	StartStep(ctx context.Context, job *JobSpec, step *StepSpec) error
	// WaitStep blocks until step ends, or ctx ends, and returns its final state.
	WaitStep(ctx context.Context, job *JobSpec, step *StepSpec) (*StepState, error)
	// TailStep streams step's combined output (stdout then stderr as they come) from
	// byte offset, following it until the step ends; the reader ends with the log.
	TailStep(ctx context.Context, job *JobSpec, step *StepSpec, offset int64) (io.ReadCloser, error)
	// DestroyStep stops (with the job's grace period) and removes step's container or
	// process. Destroying what does not exist is not an error.
	DestroyStep(ctx context.Context, job *JobSpec, step *StepSpec) error
	// DestroyWorkflow removes everything of the job run: steps, services, network,
	// workspace. Destroying what does not exist is not an error.
	DestroyWorkflow(ctx context.Context, job *JobSpec) error
	// Find reports the steps of job that exist (started, running or ended), by step
	// index, so an engine that lost track after a crash starts only the others.
	Find(ctx context.Context, job *JobSpec) (map[int]*StepState, error)
}

// ErrNotFound is what Find-like lookups wrap when the job run has nothing left.
var ErrNotFound = errors.New("executor: not found")

// JobSpec is one job run as an executor needs it. IDs are the store's, so names made
// from them (containers, volumes, Jobs) are deterministic across restarts.
type JobSpec struct {
	// RunID and JobID are the workflow run's and the job run's ids.
	RunID string
	JobID string
	// Name is the job's display name ("test (linux, amd64)"), for labels and logs.
	Name string
	// Namespace and Workflow name where the run belongs, for labels.
	Namespace string
	Workflow  string
	// Image is the default image of the job's steps.
	Image string
	// Env is the job's environment (workflow env, job env, the HUBCTL_* variables),
	// in order; a step's Env is applied over it.
	Env []EnvVar
	// Secrets are the values of the secrets the job may read, by name. They reach
	// steps as environment variables only, never labels, never logs.
	Secrets map[string]string
	// Registry holds credentials for pulling the job's images (the hub's job token).
	Registry *RegistryAuth
	// Resources are the limits of each step's container; zero means none.
	Resources Resources
	// Services are the job's side containers, reachable from steps by Name.
	Services []Service
	// WorkspaceDir is where steps start (their working directory unless a step says
	// otherwise), shared by the job's steps; "/workspace" in containers.
	WorkspaceDir string
	// CacheDir, when set, is mounted at CachePath in every step; CacheKey names it.
	CacheKey  string
	CachePath string
	// Agent, on an executor that is a FileAgent, is what the job's own containers
	// move through the hub with its token; nil when nothing.
	Agent *AgentFiles
	// StopGrace is how long a cancelled step gets between SIGTERM and SIGKILL; 0
	// means 10 s.
	StopGrace time.Duration
	// Labels are added to everything the executor creates (beside its own).
	Labels map[string]string
	// Steps are all the job's steps in order, known before the first starts, for
	// executors that declare them up front (kube: one pod, a container per step).
	// StartStep still gets each step; an executor may ignore this list.
	Steps []StepSpec
	// Timeout bounds the whole job run (the engine enforces it too); 0 means none.
	// The kube executor sets the Job's activeDeadlineSeconds from it, so a Job whose
	// engine is gone still ends.
	Timeout time.Duration
}

// DefaultWorkspace is where a container executor mounts the workspace when the job
// names none; DefaultStopGrace the stop grace period when it gives none.
const (
	DefaultWorkspace = "/workspace"
	DefaultStopGrace = 10 * time.Second
)

// Workspace is the job's workspace directory in its containers.
func (j *JobSpec) Workspace() string {
	if j.WorkspaceDir != "" {
		return j.WorkspaceDir
	}
	return DefaultWorkspace
}

// Grace is how long a cancelled step gets between SIGTERM and SIGKILL.
func (j *JobSpec) Grace() time.Duration {
	if j.StopGrace > 0 {
		return j.StopGrace
	}
	return DefaultStopGrace
}

// StepSpec is one step of a job run.
type StepSpec struct {
	// Index is the step's position in the job (0-based): its identity.
	Index int
	// Name is the step's display name.
	Name string
	// Image is the step's image; "" means the job's.
	Image string
	// Run is a shell script, run as /bin/sh -e -c; "" runs the image's entrypoint
	// with Args.
	Run  string
	Args []string
	// Env is the step's own environment, applied over the job's.
	Env []EnvVar
	// Secrets are the names of the job's secrets this step gets as variables.
	Secrets []string
	// Workdir is the step's working directory, relative to the workspace or absolute.
	Workdir string
	// Timeout bounds the step; 0 means the job's.
	Timeout time.Duration
}

// StepState is what an executor knows of a step.
type StepState struct {
	// Running is true until the step has ended.
	Running bool
	// ExitCode is the step's exit status once ended.
	ExitCode int
	// OOMKilled says the step was killed for exceeding its memory limit.
	OOMKilled bool
	// TimedOut says the executor stopped the step because it ran past its
	// StepSpec.Timeout.
	TimedOut bool
	// Error is what went wrong outside the step's own program (an image that could
	// not be pulled, a container that could not start); "" otherwise.
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// Output is the content of the step's $HUBCTL_OUTPUT file (KEY=VALUE lines),
	// at most 1 MiB, read when the step ended.
	Output []byte
}

// EnvVar is one environment variable, kept in order.
type EnvVar struct {
	Name  string
	Value string
}

// RegistryAuth is the credentials an executor pulls images with.
type RegistryAuth struct {
	// Registry is the host[:port] the credentials are for.
	Registry string
	Username string
	// Password is a password or an access token, exchanged at the registry's token
	// service.
	Password string
	// Token, when set, is a registry bearer token used as it is (the hub's job
	// token, which no token service exchanges); Username and Password are then unused.
	Token string
}

// Resources are a container's limits.
type Resources struct {
	MilliCPU int64
	Memory   int64 // bytes
}

// Service is a side container of a job (a database, a cache), running for the whole
// job and reachable from its steps by Name.
type Service struct {
	Name  string
	Image string
	Env   []EnvVar
	Args  []string
}

// MaxOutput is the most of a step's $HUBCTL_OUTPUT file an executor returns.
const MaxOutput = 1 << 20

// AgentFiles is what a FileAgent executor's job moves itself, with `hubctl
// workflow-agent` and the job's $HUBCTL_TOKEN: the artifacts of the jobs it needs
// and its cache before its first step, its own artifacts and cache after its last.
type AgentFiles struct {
	// RunID and JobID are the run's and the job run's ids in the hub (JobSpec.JobID
	// carries the engine's prefix).
	RunID, JobID int64
	// Restore says the jobs it needs kept artifacts.
	Restore bool
	// Save are the job's artifacts.
	Save []NamedPath
	// Cache, when the job keeps a cache, is its path (JobSpec.CachePath): restored
	// from the hub before the first step (Restore is set then), saved after the last
	// when the key had none. The hub evaluates the key itself.
	Cache string
}

// NamedPath is an artifact: its name and its path under the workspace.
type NamedPath struct{ Name, Path string }

// FileAgent is an executor whose jobs move their artifacts themselves, through the
// hub's job-token endpoints, instead of through an Archiver (the Kubernetes
// executor: the hub cannot reach a job's pod). The engine sets JobSpec.Agent.
type FileAgent interface {
	// WaitSaved waits, after the last step succeeded, for the job's save of its
	// artifacts to end: nil when all were saved.
	WaitSaved(ctx context.Context, job *JobSpec) error
}
