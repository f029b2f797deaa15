// Package deploy is `hubctl deploy`: the deploy spec (deploy.yaml), and the plans
// that run a service's image on Docker hosts behind hubctl's proxy mode or on
// Kubernetes through helm. This file set holds the spec: Parse reads a file
// strictly (unknown keys are errors, each with its line and column) and fills the
// defaults; docs/deploy.md documents it and docs/deploy.schema.json describes it for
// editors.
package deploy

import (
	"time"

	"github.com/hubctl/hubctl/internal/deploy/proxy"
)

// MaxFileSize is the largest deploy file read.
const MaxFileSize = 1 << 20

// Defaults of the spec's optional fields. The health check's are the proxy's, so a
// spec that says nothing gets what the proxy would do.
const (
	DefaultReplicas        = 1
	DefaultHealthInterval  = proxy.DefaultHealthInterval
	DefaultHealthTimeout   = proxy.DefaultHealthTimeout
	DefaultHealthThreshold = proxy.DefaultHealthThreshold
	DefaultHealthPath      = proxy.DefaultHealthPath
	DefaultDeployTimeout   = proxy.DefaultDeployTimeout
	DefaultDrainTimeout    = proxy.DefaultDrainTimeout
	DefaultStopTimeout     = 10 * time.Second
	DefaultKubeTimeout     = 5 * time.Minute
	DefaultImagePath       = "image"
	// LocalHost names the Docker engine of the environment (DOCKER_HOST, or the
	// default socket), the host a spec without hosts deploys to.
	LocalHost = "local"
)

// Bounds of the spec.
const (
	MaxReplicas  = 100
	MaxHostsList = 64
	maxTimeout   = time.Hour
)

// Spec is a parsed deploy file: one service, where it runs (Docker hosts or
// Kubernetes), and its accessories.
type Spec struct {
	Service Service
	// Hosts are the Docker engines the service runs on; a spec without hosts and
	// without kubernetes has one, LocalHost.
	Hosts []Host
	// Kubernetes, when set, deploys the service with helm instead of on Hosts.
	Kubernetes  *Kubernetes
	Accessories []Accessory
}

// Service is what runs: one image, as replicas (tasks) spread over the hosts.
type Service struct {
	Name string
	// Image is a reference as written; a deploy resolves it to a digest and pins it.
	Image    string
	Replicas int
	Command  []string
	Env      []EnvVar
	// Secrets are names of values the deploy fills in as environment variables: from
	// the hub's secret store of the image's namespace, or hubctl's environment without
	// a hub. Never written to the spec or the deploy history.
	Secrets   []Secret
	Ports     []Port
	Volumes   []Volume
	Labels    map[string]string
	Resources Resources
	// Proxy is how HTTP reaches the tasks; nil for a service that serves no HTTP.
	Proxy  *Proxy
	Health HealthCheck
	// StopTimeout is how long a stopped task has between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// DrainTimeout is how long requests in flight on old tasks have to finish.
	DrainTimeout time.Duration
	// DeployTimeout bounds the wait for new tasks to become healthy.
	DeployTimeout time.Duration
	Pos           Pos
}

// EnvVar is NAME=value for the task's environment.
type EnvVar struct {
	Name  string
	Value string
	Pos   Pos
}

// Secret is a secret's name, which is also the environment variable it becomes.
type Secret struct {
	Name string
	Pos  Pos
}

// Port is a port a task publishes on its host, bypassing the proxy (for what is not
// HTTP, or an accessory). HostIP empty means every address of the host.
type Port struct {
	HostIP        string
	HostPort      int // 0: not published, only exposed
	ContainerPort int
	Protocol      string // tcp or udp
	Pos           Pos
}

// Volume is a named volume (Named) or a host directory mounted into the task.
type Volume struct {
	Source   string
	Target   string
	ReadOnly bool
	Named    bool
	Pos      Pos
}

// Resources are a task's limits; zero means none.
type Resources struct {
	MilliCPU int64
	Memory   int64
}

// Proxy is the service's HTTP routing through hubctl's proxy on each host.
type Proxy struct {
	// Port is the tasks' HTTP port the proxy forwards to.
	Port int
	// Hosts are the request hosts routed to the service; none: every host no other
	// service on the proxy names.
	Hosts []string
	// TLS, when set, makes the proxy terminate HTTPS: with certificate files or
	// ACME.
	TLS *ProxyTLS
}

// ProxyTLS is how the proxy gets its certificate: files (Cert and Key, PEM, read
// where hubctl runs and copied into the proxy container), or ACME; one of the two.
type ProxyTLS struct {
	Cert string
	Key  string
	ACME *ACME
}

// ACME is the proxy getting its certificates from an ACME CA, as `hubctl serve
// --tls=acme` does.
type ACME struct {
	// Domains are the names certificates are asked for.
	Domains []string
	// Directory is the CA's directory URL; empty: Let's Encrypt.
	Directory string
	// Email is the account's contact; empty: none.
	Email string
}

// HealthCheck decides when a task serves: an HTTP GET of Path on the proxy port, or
// Command run inside the task; Threshold passes in a row, each within Timeout,
// checked every Interval.
type HealthCheck struct {
	Path      string
	Command   []string
	Interval  time.Duration
	Timeout   time.Duration
	Threshold int
}

// Host is one Docker engine and what differs for the tasks there.
type Host struct {
	Name string
	// Docker is the engine's address: unix:///path, ssh://user@host[:port] (the
	// engine over SSH) or tcp://host:port (with TLS); empty for LocalHost means the
	// environment's engine.
	Docker string
	TLS    *DockerTLS
	// Replicas is the tasks placed here; -1 when the host takes a share of the rest.
	Replicas int
	// Env, Labels, Resources and Command override the service's on this host.
	Env       []EnvVar
	Labels    map[string]string
	Resources *Resources
	Command   []string
	Pos       Pos
}

// DockerTLS are the client files for a tcp:// engine.
type DockerTLS struct {
	CA   string
	Cert string
	Key  string
}

// Kubernetes is a helm release of the service's chart.
type Kubernetes struct {
	// Chart is oci://HOST/REPO/CHART (a hub's chart, or any OCI registry's), or a
	// chart name in the classic repository Repo.
	Chart   string
	Repo    string
	Version string
	// Release defaults to the service's name.
	Release    string
	Namespace  string
	Context    string
	Kubeconfig string
	// Values are given to the chart; the pinned image is written under ImagePath
	// (repository, tag and digest).
	Values    map[string]any
	ImagePath string
	// Timeout bounds helm's wait for the release to be ready.
	Timeout time.Duration
}

// Accessory is a long-lived side service (a database, a cache) started once on one
// host and left running by deploys.
type Accessory struct {
	Name      string
	Image     string
	Host      string
	Command   []string
	Env       []EnvVar
	Secrets   []Secret
	Ports     []Port
	Volumes   []Volume
	Labels    map[string]string
	Resources Resources
	Pos       Pos
}

// Placement returns how many tasks of the service run on each host, in Hosts'
// order: hosts with replicas set get that many, and the rest of Service.Replicas
// is spread evenly over the others, the first ones taking one more.
func (s *Spec) Placement() []int {
	out := make([]int, len(s.Hosts))
	rest := s.Service.Replicas
	var free []int
	for i, h := range s.Hosts {
		if h.Replicas >= 0 {
			out[i] = h.Replicas
			rest -= h.Replicas
		} else {
			free = append(free, i)
		}
	}
	if len(free) == 0 || rest <= 0 {
		return out
	}
	for j, i := range free {
		out[i] = rest / len(free)
		if j < rest%len(free) {
			out[i]++
		}
	}
	return out
}
