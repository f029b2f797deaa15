package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/workflow"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// engineStore is what the workflow engine and its pull check need of the store.
type engineStore interface {
	engine.Store
	engine.ArtifactStore
	accounts.Store
	UserByID(ctx context.Context, id int64) (accounts.User, error)
}

// WorkflowExecutor is what serve needs of an executor (Docker or Kubernetes).
type WorkflowExecutor interface {
	executor.Executor
	Ping(ctx context.Context) error
	Close() error
}

// DockerExecutor makes the executor of `workflows.executor: docker` (hostNetwork:
// `workflows.docker.network: host`). hubctl's serve command sets it to the Docker
// executor's constructor: that executor's own tests start a hub, so this package
// cannot import it. Nil runs no engine, with a warning.
var DockerExecutor func(hostNetwork bool) (WorkflowExecutor, error)

// KubeExecutor makes the executor of `workflows.executor: kubernetes` for
// workflows.kube (namespace, kubeconfig; "" is the in-cluster configuration).
// hubctl's serve command sets it, so this package does not import client-go. Nil runs
// no engine, with a warning.
var KubeExecutor func(cfg config.WorkflowsKube) (WorkflowExecutor, error)

// KubeCheckWorkflow makes, for workflows.kube.agent_image, what refuses, when a
// workflow is applied to a hub whose executor is kubernetes, what that executor cannot
// run (caches; artifacts without an agent image). hubctl's serve command sets it to
// the Kubernetes executor's CheckWorkflowWith.
var KubeCheckWorkflow func(agentImage string) func(*workflow.Workflow) error

// workflowCheck is the hub API's CheckWorkflow for cfg's executor, or nil.
func workflowCheck(cfg config.Config) func(*workflow.Workflow) error {
	if cfg.Workflows.Executor != config.WorkflowExecutorKubernetes || KubeCheckWorkflow == nil {
		return nil
	}
	check := KubeCheckWorkflow(cfg.Workflows.Kube.AgentImage)
	if cfg.Workflows.Kube.AgentImage != "" || cfg.ExternalURL != "" {
		return check
	}
	// Without an external URL the hub cannot publish its own agent image (agentImage):
	// the refusal of artifacts says so beside agent_image.
	return func(wf *workflow.Workflow) error {
		err := check(wf)
		var errs workflow.Errors
		if errors.As(err, &errs) {
			for i := range errs {
				if strings.Contains(errs[i].Msg, "agent_image") {
					errs[i].Msg += " (or its external_url, from which the hub then publishes its own agent image)"
				}
			}
		}
		return err
	}
}

// dockerPingTimeout bounds the check, at start, that the executor's engine or
// cluster answers.
const dockerPingTimeout = 5 * time.Second

// workflowEngine is the engine serve runs and what to release when it stops.
type workflowEngine struct {
	*engine.Engine
	close func() error
}

// newWorkflowEngine returns the workflow engine of cfg.Workflows, or nil when it is
// off (executor none) or the Docker engine does not answer: serve still starts then,
// keeps workflows and queues their runs, and says once why none runs here.
func newWorkflowEngine(ctx context.Context, cfg config.Config, store engineStore, blobs blobstore.Store, hub string, creds jobCredentials, log *slog.Logger) (*workflowEngine, error) {
	x, what := newWorkflowExecutor(ctx, cfg, log)
	if x == nil {
		return nil, nil
	}
	pol := &authz.Policy{Store: store}
	mayPull := func(ctx context.Context, id int64, repository string) (bool, error) {
		u, err := store.UserByID(ctx, id)
		if errors.Is(err, accounts.ErrNotFound) {
			return false, nil // the account that applied it is gone
		}
		if err != nil {
			return false, err
		}
		return pol.MayPull(ctx, u, repository)
	}
	inst, err := workflowInstance(cfg.Data)
	if err != nil {
		_ = x.Close()
		return nil, err
	}
	o := engine.Options{Store: store, Executor: x, MayPull: mayPull, MaxJobs: cfg.Workflows.MaxJobs,
		Interval: cfg.Workflows.Interval, Hub: hub, Registry: hub, Tokens: creds.tokens, Secrets: creds.secrets,
		Logger: log.With("component", "workflows"), Artifacts: artifactOptions(cfg.Workflows, store, blobs),
		// One name per data directory: a restart takes its running jobs back at once.
		ID: "hub-" + inst}
	if cfg.Workflows.Executor == config.WorkflowExecutorDocker {
		// A Docker engine may be shared by several hubs, each numbering its job runs
		// from 1: what each makes is named and labelled with its instance. (A
		// Kubernetes namespace is one hub's: workflows.kube.namespace.)
		o.JobIDPrefix = inst + "-"
		o.Labels = map[string]string{"hubctl.hub": inst}
	}
	e, err := engine.New(o)
	if err != nil {
		_ = x.Close()
		return nil, err
	}
	log.Info("workflows: running jobs with the "+what+" executor", "max_jobs", cfg.Workflows.MaxJobs, "hub", hub)
	return &workflowEngine{Engine: e, close: x.Close}, nil
}

// newWorkflowExecutor returns the executor cfg names and its display name, or nil
// (with the one line that says why no workflow runs here).
func newWorkflowExecutor(ctx context.Context, cfg config.Config, log *slog.Logger) (WorkflowExecutor, string) {
	var (
		x   WorkflowExecutor
		err error
	)
	switch cfg.Workflows.Executor {
	case config.WorkflowExecutorDocker:
		if DockerExecutor == nil {
			log.Warn("workflows: this build has no Docker executor, so no workflow runs on this replica")
			return nil, ""
		}
		if x, err = DockerExecutor(cfg.Workflows.Docker.Network == config.WorkflowNetworkHost); err != nil {
			log.Warn("workflows: no Docker engine, so no workflow runs on this replica", "err", err)
			return nil, ""
		}
	case config.WorkflowExecutorKubernetes:
		if KubeExecutor == nil {
			log.Warn("workflows: this build has no Kubernetes executor, so no workflow runs on this replica")
			return nil, ""
		}
		if x, err = KubeExecutor(cfg.Workflows.Kube); err != nil {
			log.Warn("workflows: no Kubernetes cluster, so no workflow runs on this replica", "err", err)
			return nil, ""
		}
	default:
		log.Info("workflows: no executor (workflows.executor: none): runs are queued, none runs on this replica")
		return nil, ""
	}
	what, peer := "Docker", "Docker engine"
	if cfg.Workflows.Executor == config.WorkflowExecutorKubernetes {
		what, peer = "Kubernetes", "Kubernetes API server"
	}
	pctx, cancel := context.WithTimeout(ctx, dockerPingTimeout)
	defer cancel()
	if err := x.Ping(pctx); err != nil {
		_ = x.Close()
		log.Warn("workflows: the "+peer+" does not answer, so no workflow runs on this replica (set workflows.executor: none to silence this)", "err", err)
		return nil, ""
	}
	return x, what
}

// hubURL is the hub's address for job steps (HUBCTL_HUB): external_url, else the
// listening address (127.0.0.1 for an unspecified one, which a container reaches only
// with host networking).
func hubURL(cfg config.Config, addr net.Addr, tls bool) string {
	if u := registryURL(cfg, addr, tls); u != "" {
		return u
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return ""
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
}
