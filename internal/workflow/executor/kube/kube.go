// Package kube is the workflow executor that runs a job run as one Kubernetes
// batch/v1 Job (docs/design/workflows.md, "Executors", "Kubernetes"), through
// k8s.io/client-go only: the cluster may be anywhere the kubeconfig points.
//
// Per job run it makes, in its namespace:
//   - the Job hubctl-<job id> (backoffLimit 0: retries are the engine's), whose one pod
//     runs the job's services as native sidecars (init containers with restartPolicy
//     Always, svc-<name>, reachable from the steps by name: the names resolve to
//     127.0.0.1 through hostAliases, as every container of a pod shares its network),
//     then every step but the last as an init container (step-<index>, in order: each
//     starts when the one before succeeded, and the first that fails fails the pod),
//     and the last step as the pod's one container;
//   - the Secret hubctl-<job id>-env holding every sensitive environment value (the
//     job's secrets and its $HUBCTL_TOKEN): containers read them through secretKeyRef,
//     so no secret is in the pod spec in clear;
//   - the Secret hubctl-<job id>-pull (kubernetes.io/dockerconfigjson), the job's
//     credentials for pulling its images from the hub, named in imagePullSecrets.
//
// The Secrets are owned by the Job (ownerReferences), so deleting the Job deletes
// them; DestroyWorkflow deletes them as well. Everything carries the labels
// hubctl.run and hubctl.job, and the executor only ever reads or deletes what carries
// hubctl.job: anything else in the namespace is never touched. The workspace is an
// emptyDir (or a generic ephemeral volume, a PVC made with the pod and deleted with
// it, WithWorkspaceVolume) mounted at /workspace in every step. A job's cache is an
// emptyDir mounted at its cache path in every step, filled from the hub and saved to
// it by the job's agent containers (WithAgentImage): the hub keeps caches, not the
// cluster.
//
// Jobs outlive the hub: the executor is executor.Identified, so an engine that stops
// leaves them, and the engine that claims the job run next re-attaches (Find, then
// StartStep finding the Job by its name and its hubctl.job and hubctl.run labels);
// nothing is made twice. The pull Secret's password is the job token, which the hub's
// /token takes as the password of the user hubctl-job (tokenserver.JobUser), and is
// renewed with the job's current token whenever a step starts.
//
// $HUBCTL_OUTPUT: a step with `run:` runs under a small /bin/sh wrapper that, when the
// script ends, copies the output file to the container's termination message
// (/dev/termination-log), which the kubelet reports in the container's status. The
// kubelet keeps at most 4096 bytes of a container's message (and 12 KiB for all the
// containers of a pod), so a step whose output file is larger fails with a clear
// line in its log instead of losing outputs; steps without `run:` have no output.
package kube

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// Labels the executor puts on what it creates, and selects on.
const (
	LabelRun  = "hubctl.run"
	LabelJob  = "hubctl.job"
	LabelRole = "hubctl.role"
	// AnnotationNamespace and AnnotationWorkflow say where the run belongs (as
	// annotations: hub names need not be valid label values).
	AnnotationNamespace = "hubctl.namespace"
	AnnotationWorkflow  = "hubctl.workflow"
	// AnnotationSteps is the number of steps the Job's pod runs.
	AnnotationSteps = "hubctl.steps"
)

// DefaultWorkspace is where the workspace is mounted when the job names none.
const DefaultWorkspace = executor.DefaultWorkspace

// MaxOutput is the most of $HUBCTL_OUTPUT a step can return through its termination
// message: the kubelet's cap on one container's message.
const MaxOutput = 4096

const (
	// defaultPullGrace is how long a step may wait on an image that cannot be pulled
	// (ErrImagePull, ImagePullBackOff) or a container that cannot be made before the
	// executor reports it failed: the kubelet retries both for ever.
	defaultPullGrace = 2 * time.Minute
	// deadlineSlack is added to the job's timeout for the Job's
	// activeDeadlineSeconds: the engine's own timeout normally fires first (and
	// reports it); the deadline ends a Job whose engine is gone.
	deadlineSlack = time.Minute
	// finishedTTL lets Kubernetes delete a finished Job the engine never destroyed
	// (an engine that stopped for good); long past any lease, so Find still sees it.
	finishedTTL = 24 * time.Hour
)

// Executor runs job runs as Kubernetes Jobs in one namespace. It is safe for
// concurrent use.
type Executor struct {
	api       kubernetes.Interface
	namespace string
	poll      time.Duration
	pullGrace time.Duration
	// workspace, when set, makes the workspace a generic ephemeral volume.
	workspaceClass string
	workspaceSize  resource.Quantity
	// agentImage holds /hubctl, whose workflow-agent moves a job's artifacts and cache.
	agentImage string
	now        func() time.Time
}

var (
	_ executor.Executor   = (*Executor)(nil)
	_ executor.Identified = (*Executor)(nil)
	_ executor.FileAgent  = (*Executor)(nil)
)

// Option configures New.
type Option func(*Executor)

// WithPoll sets how often WaitStep, TailStep and the deletion of a Job look at the
// cluster again (default 500 ms).
func WithPoll(d time.Duration) Option { return func(e *Executor) { e.poll = d } }

// WithPullGrace sets how long a step may wait on an image that cannot be pulled
// before it fails (default 2 minutes).
func WithPullGrace(d time.Duration) Option { return func(e *Executor) { e.pullGrace = d } }

// WithWorkspaceVolume makes each job's workspace a PersistentVolumeClaim of size in
// storage class ("": the cluster's default class), made with the pod and deleted with
// it (a generic ephemeral volume), instead of an emptyDir on the node.
func WithWorkspaceVolume(class string, size resource.Quantity) Option {
	return func(e *Executor) { e.workspaceClass, e.workspaceSize = class, size }
}

// WithAgentImage sets the image, holding the hubctl binary at /hubctl, that moves a
// job's artifacts and cache (`hubctl workflow-agent`) in an init container before its
// first step and a last container after its last; "" makes a job with artifacts or a
// cache fail.
func WithAgentImage(image string) Option { return func(e *Executor) { e.agentImage = image } }

// WithWorkspaceClaim is WithWorkspaceVolume with the size in bytes (the hub's
// workflows.kube.workspace_size and workspace_class); 0 bytes keeps the emptyDir.
func WithWorkspaceClaim(class string, bytes int64) Option {
	if bytes <= 0 {
		return func(*Executor) {}
	}
	return WithWorkspaceVolume(class, *resource.NewQuantity(bytes, resource.BinarySI))
}

// New returns an executor that makes its Jobs in namespace through api.
func New(api kubernetes.Interface, namespace string, opts ...Option) (*Executor, error) {
	if api == nil {
		return nil, errors.New("kube executor: no Kubernetes client")
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, fmt.Errorf("kube executor: namespace %q: %s", namespace, errs[0])
	}
	e := &Executor{api: api, namespace: namespace, poll: 500 * time.Millisecond, pullGrace: defaultPullGrace, now: time.Now}
	for _, o := range opts {
		o(e)
	}
	if e.poll <= 0 {
		e.poll = 500 * time.Millisecond
	}
	return e, nil
}

// RESTConfig loads the client configuration of kubeconfig, or the in-cluster one
// (the pod's service account) when kubeconfig is "".
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kube executor: in-cluster configuration (set workflows.kube.kubeconfig outside a cluster): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kube executor: kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// NewFromConfig returns an executor for the cluster cfg points at.
func NewFromConfig(cfg *rest.Config, namespace string, opts ...Option) (*Executor, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "hubctl-workflows"
	api, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube executor: %w", err)
	}
	return New(api, namespace, opts...)
}

// Ping checks that the cluster answers and that the executor may list Jobs in its
// namespace.
func (e *Executor) Ping(ctx context.Context) error {
	if _, err := e.api.BatchV1().Jobs(e.namespace).List(ctx, metav1.ListOptions{Limit: 1, LabelSelector: LabelJob}); err != nil {
		return fmt.Errorf("kube executor: list Jobs in namespace %s: %w", e.namespace, err)
	}
	return nil
}

// Close releases nothing: client-go's connections are pooled by its transport.
func (e *Executor) Close() error { return nil }

// Name is "kube".
func (e *Executor) Name() string { return "kube" }

// Identity is "": every replica whose executor makes Jobs in the cluster reaches the
// same Jobs, so a job run is pinned to no replica. Being executor.Identified is what
// matters: the engine leaves a job's Job running when it stops or loses the job's
// lease, and whichever engine claims the job run next re-attaches to it (StartStep
// and Find find the Job by its name and labels; nothing is made twice).
func (e *Executor) Identity(ctx context.Context) (string, error) { return "", nil }

// Namespace is where the executor makes its Jobs.
func (e *Executor) Namespace() string { return e.namespace }

var (
	// Job ids go into object names (DNS-1123 labels, at most 63 with "hubctl-" and
	// "-pull") and label values.
	idPattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$`)
	servicePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,57}[a-z0-9])?$`)
)

func checkJob(job *executor.JobSpec) error {
	if job == nil {
		return errors.New("kube executor: no job")
	}
	if !idPattern.MatchString(job.JobID) {
		return fmt.Errorf("kube executor: job id %q is not usable in a Kubernetes name (lower-case letters, digits, -, at most 48)", job.JobID)
	}
	if errs := validation.IsValidLabelValue(job.RunID); job.RunID == "" || len(errs) > 0 {
		return fmt.Errorf("kube executor: run id %q is not a valid label value", job.RunID)
	}
	for k, v := range job.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("kube executor: label %q: %s", k, errs[0])
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("kube executor: label %s value %q: %s", k, v, errs[0])
		}
	}
	seen := map[string]bool{}
	for _, s := range job.Services {
		if !servicePattern.MatchString(s.Name) {
			return fmt.Errorf("kube executor: service name %q is not a DNS label (lower-case letters, digits, -, at most 59)", s.Name)
		}
		if seen[s.Name] {
			return fmt.Errorf("kube executor: two services named %q", s.Name)
		}
		seen[s.Name] = true
		if s.Image == "" {
			return fmt.Errorf("kube executor: service %q has no image", s.Name)
		}
	}
	if job.CacheKey != "" && (job.Agent == nil || job.Agent.Cache == "") {
		// The engine gives the cache to the job's agent (AgentFiles.Cache): the hub
		// keeps it, nothing on the cluster outlives the pod.
		return errors.New("kube executor: the job's cache is moved by its agent (JobSpec.Agent.Cache), which the job has not")
	}
	if job.Agent != nil && job.Agent.Cache != "" {
		c := job.Agent.Cache
		if !path.IsAbs(c) || path.Clean(c) != c || c == "/" || c == job.Workspace() {
			return fmt.Errorf("kube executor: cache path %q is not a clean absolute path other than / and the workspace", c)
		}
	}
	return nil
}

func checkStep(job *executor.JobSpec, step *executor.StepSpec) error {
	if err := checkJob(job); err != nil {
		return err
	}
	if step == nil {
		return errors.New("kube executor: no step")
	}
	if step.Index < 0 {
		return fmt.Errorf("kube executor: step index %d is negative", step.Index)
	}
	return nil
}

func jobName(job *executor.JobSpec) string        { return "hubctl-" + job.JobID }
func envSecretName(job *executor.JobSpec) string  { return "hubctl-" + job.JobID + "-env" }
func pullSecretName(job *executor.JobSpec) string { return "hubctl-" + job.JobID + "-pull" }
func stepContainer(i int) string                  { return "step-" + strconv.Itoa(i) }
func serviceContainer(name string) string         { return "svc-" + name }

// labels are the job's own labels under the executor's, which win.
func labels(job *executor.JobSpec, extra ...string) map[string]string {
	m := make(map[string]string, len(job.Labels)+3)
	for k, v := range job.Labels {
		m[k] = v
	}
	m[LabelRun] = job.RunID
	m[LabelJob] = job.JobID
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

func annotations(job *executor.JobSpec, steps int) map[string]string {
	m := map[string]string{AnnotationSteps: strconv.Itoa(steps)}
	if job.Namespace != "" {
		m[AnnotationNamespace] = job.Namespace
	}
	if job.Workflow != "" {
		m[AnnotationWorkflow] = job.Workflow
	}
	return m
}

func jobSelector(job *executor.JobSpec) string { return LabelJob + "=" + job.JobID }

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
func isExists(err error) bool   { return apierrors.IsAlreadyExists(err) }
