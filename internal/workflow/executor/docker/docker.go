// Package docker is the workflow executor that runs a job's steps and services as
// containers of a Docker engine (docs/design/workflows.md, "Executors"). It talks to
// the engine only through its API (github.com/moby/moby/client, API version
// negotiated: the oldest engine it knows is 20.10, API 1.41), so the engine may be
// remote: nothing is read from or written to a host path.
//
// Per job run it makes one network (hubctl-<job>) and one workspace volume
// (hubctl-<job>-workspace); steps are containers named hubctl-<job>-<index>, services
// hubctl-<job>-svc-<name> reachable by their name on the network. Everything it
// creates carries the labels hubctl.run, hubctl.job (and hubctl.step or
// hubctl.service), and it only ever lists, stops or removes what carries hubctl.job:
// containers of anyone else are never touched. The Docker socket is never mounted.
package docker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// Labels the executor puts on what it creates, and filters on.
const (
	LabelRun     = "hubctl.run"
	LabelJob     = "hubctl.job"
	LabelStep    = "hubctl.step"
	LabelService = "hubctl.service"
	LabelRole    = "hubctl.role"
	LabelCache   = "hubctl.cache"
	// LabelNamespace and LabelWorkflow say where the run belongs, for people
	// looking at the engine ("docker ps --filter label=hubctl.workflow=release").
	LabelNamespace = "hubctl.namespace"
	LabelWorkflow  = "hubctl.workflow"
)

// DefaultWorkspace is where the workspace volume is mounted when the job names none.
const DefaultWorkspace = executor.DefaultWorkspace

// Executor runs job steps as Docker containers. It is safe for concurrent use.
type Executor struct {
	api *client.Client
	own bool // api was made by New, so Close closes it
	// hostNet runs steps in the host's network namespace (WithHostNetwork).
	hostNet bool

	mu    sync.Mutex
	locks map[string]*jobLock
	// files are the jobs' files (WriteFile) by job id and name, written into each
	// step's workspace before it starts.
	files map[string]map[string][]byte
	// destroyed are the containers this executor stopped and removed itself
	// (DestroyStep, DestroyWorkflow), by id, with when: a WaitStep on one of them
	// reports a cancelled step, not a vanished one.
	destroyed map[string]time.Time
}

type jobLock struct {
	sync.Mutex
	users int
}

// lockJob serialises, within this executor, what must not race for one key (making a
// job's network, starting a step); it returns the unlock.
func (e *Executor) lockJob(key string) func() {
	e.mu.Lock()
	if e.locks == nil {
		e.locks = map[string]*jobLock{}
	}
	l := e.locks[key]
	if l == nil {
		l = &jobLock{}
		e.locks[key] = l
	}
	l.users++
	e.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		e.mu.Lock()
		if l.users--; l.users == 0 {
			delete(e.locks, key)
		}
		e.mu.Unlock()
	}
}

var _ executor.Executor = (*Executor)(nil)

// Option configures New.
type Option func(*options)

type options struct {
	api     *client.Client
	host    string
	hostNet bool
}

// WithHostNetwork runs steps in the host's network namespace instead of the job's
// bridge network, so they reach what listens on the host's loopback (a hub on
// 127.0.0.1) and everything else the host reaches. Jobs with services are refused:
// services are reached by name on the job's network only.
func WithHostNetwork() Option { return func(o *options) { o.hostNet = true } }

// WithClient makes the executor use api (its owner closes it).
func WithClient(api *client.Client) Option { return func(o *options) { o.api = api } }

// WithHost makes the executor talk to the engine at host ("unix:///var/run/docker.sock",
// "tcp://127.0.0.1:2375") instead of the one DOCKER_HOST names.
func WithHost(host string) Option { return func(o *options) { o.host = host } }

// New returns an executor for the engine that DOCKER_HOST (and DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH) name, or the local socket; the API version is negotiated on the
// first call. It does not contact the engine: Ping does.
func New(opts ...Option) (*Executor, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.api != nil {
		return &Executor{api: o.api, hostNet: o.hostNet}, nil
	}
	copts := []client.Opt{client.FromEnv}
	if o.host != "" {
		copts = append(copts, client.WithHost(o.host))
	}
	api, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker executor: %w", err)
	}
	return &Executor{api: api, own: true, hostNet: o.hostNet}, nil
}

// Close releases the engine connection New made.
func (e *Executor) Close() error {
	if e.own {
		return e.api.Close()
	}
	return nil
}

// Ping checks that the engine answers (and negotiates the API version).
func (e *Executor) Ping(ctx context.Context) error {
	if _, err := e.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("docker executor: engine not reachable: %w", err)
	}
	return nil
}

// Name is "docker".
func (e *Executor) Name() string { return "docker" }

// Names of Docker objects must match [a-zA-Z0-9][a-zA-Z0-9_.-]*; job ids go into them.
var (
	idPattern      = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	servicePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

func checkJob(job *executor.JobSpec) error {
	if job == nil {
		return errors.New("docker executor: no job")
	}
	if !idPattern.MatchString(job.JobID) {
		return fmt.Errorf("docker executor: job id %q is not usable in a container name (letters, digits, _ . -, at most 128)", job.JobID)
	}
	for _, s := range job.Services {
		if !servicePattern.MatchString(s.Name) {
			return fmt.Errorf("docker executor: service name %q is not a DNS label (lower-case letters, digits, -)", s.Name)
		}
		if s.Image == "" {
			return fmt.Errorf("docker executor: service %q has no image", s.Name)
		}
	}
	return nil
}

func checkStep(job *executor.JobSpec, step *executor.StepSpec) error {
	if err := checkJob(job); err != nil {
		return err
	}
	if step == nil {
		return errors.New("docker executor: no step")
	}
	if step.Index < 0 {
		return fmt.Errorf("docker executor: step index %d is negative", step.Index)
	}
	return nil
}

func networkName(job *executor.JobSpec) string   { return "hubctl-" + job.JobID }
func workspaceName(job *executor.JobSpec) string { return "hubctl-" + job.JobID + "-workspace" }
func stepName(job *executor.JobSpec, i int) string {
	return "hubctl-" + job.JobID + "-" + strconv.Itoa(i)
}
func serviceName(job *executor.JobSpec, name string) string {
	return "hubctl-" + job.JobID + "-svc-" + name
}

// labels are the job's own labels under the executor's, which win.
func labels(job *executor.JobSpec, extra ...string) map[string]string {
	m := make(map[string]string, len(job.Labels)+4)
	for k, v := range job.Labels {
		m[k] = v
	}
	m[LabelRun] = job.RunID
	m[LabelJob] = job.JobID
	if job.Namespace != "" {
		m[LabelNamespace] = job.Namespace
	}
	if job.Workflow != "" {
		m[LabelWorkflow] = job.Workflow
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// jobFilter selects what belongs to job.
func jobFilter(job *executor.JobSpec) client.Filters {
	return make(client.Filters).Add("label", LabelJob+"="+job.JobID)
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
func isConflict(err error) bool { return cerrdefs.IsConflict(err) }
