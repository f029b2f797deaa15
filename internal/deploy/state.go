package deploy

import (
	"strconv"
	"time"
)

// Labels a deploy puts on every Docker object it makes, and finds them by: a
// deploy's state is what the engines hold, so every step is idempotent against them.
const (
	LabelService = "dev.hubctl.service"
	// LabelVersion is the number of the deploy that started the task.
	LabelVersion = "dev.hubctl.version"
	// LabelTask is the task's slot on its host, from 1.
	LabelTask = "dev.hubctl.task"
	// LabelConfig is the hash of the task's effective configuration (TaskSpec.Hash):
	// a task whose hash is the desired one is kept, not restarted.
	LabelConfig = "dev.hubctl.config"
	// LabelHost is the spec's name of the host, so two host entries reaching one
	// engine never see each other's tasks.
	LabelHost      = "dev.hubctl.host"
	LabelRole      = "dev.hubctl.role"
	LabelAccessory = "dev.hubctl.accessory"
)

// Roles of the objects a deploy makes (LabelRole).
const (
	RoleTask       = "task"
	RoleProxy      = "proxy"
	RoleAccessory  = "accessory"
	RoleLock       = "lock"
	RoleNetwork    = "network"
	RoleProxyState = "proxy-state"
	RoleVolume     = "volume"
)

// TaskSpec is one container a deploy starts: a task of the service or an accessory,
// with everything resolved (pinned image, secrets filled in, host overrides merged).
type TaskSpec struct {
	Service string
	Host    string
	Version int
	// Index is the task's slot on its host, from 1; 0 for an accessory.
	Index     int
	Accessory string
	// Name is the container's name; the proxy reaches the task by it.
	Name    string
	Image   string
	Command []string
	// Env is NAME=value, secrets included: it goes to the engine only.
	Env         []string
	Labels      map[string]string
	Ports       []Port
	Volumes     []Volume
	Resources   Resources
	StopTimeout time.Duration
	// Hash identifies the effective configuration (LabelConfig).
	Hash string
}

// AllLabels are the task's labels with hubctl's own, which win over the spec's.
func (t TaskSpec) AllLabels() map[string]string {
	m := make(map[string]string, len(t.Labels)+6)
	for k, v := range t.Labels {
		m[k] = v
	}
	m[LabelService] = t.Service
	m[LabelHost] = t.Host
	m[LabelVersion] = strconv.Itoa(t.Version)
	m[LabelConfig] = t.Hash
	if t.Accessory != "" {
		m[LabelRole] = RoleAccessory
		m[LabelAccessory] = t.Accessory
	} else {
		m[LabelRole] = RoleTask
		m[LabelTask] = strconv.Itoa(t.Index)
	}
	return m
}

// Container is one container of a service found on a host by its labels.
type Container struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Host      string `json:"host"`
	Version   int    `json:"version,omitempty"`
	Task      int    `json:"task,omitempty"`
	Accessory string `json:"accessory,omitempty"`
	Hash      string `json:"config,omitempty"`
	Image     string `json:"image"`
	State     string `json:"state"` // the engine's: running, exited, created, …
	// Routed says the host's proxy sends requests to the task.
	Routed bool `json:"routed,omitempty"`
	// Published are the ports published on the host, as HOSTIP:PORT->PORT/PROTO.
	Published []string `json:"published,omitempty"`
}

// Running reports whether the engine runs the container.
func (c Container) Running() bool { return c.State == "running" }

// HostState is what runs of a service on one host.
type HostState struct {
	Host       string      `json:"host"`
	Containers []Container `json:"containers"`
}

// Proxy returns the host's proxy container, if there is one.
func (s HostState) Proxy() (Container, bool) {
	for _, c := range s.Containers {
		if c.Role == RoleProxy {
			return c, true
		}
	}
	return Container{}, false
}

// ContainerName is the name of a task container: unique per service, host entry,
// deploy and slot, so a deploy never collides with a task an earlier one left.
func ContainerName(service, host string, version, index int) string {
	return "hubctl-" + service + "-" + host + "-" + strconv.Itoa(version) + "-" + strconv.Itoa(index)
}

// AccessoryName is the name of an accessory's container.
func AccessoryName(service, accessory string) string {
	return "hubctl-" + service + "-acc-" + accessory
}

// NetworkName is the Docker network of a service's tasks and proxy on a host.
func NetworkName(service string) string { return "hubctl-" + service }

// ProxyName is the name of the proxy container in front of a service on a host.
func ProxyName(service string) string { return "hubctl-proxy-" + service }

// ProxyStateVolume keeps the proxy's routing state across restarts.
func ProxyStateVolume(service string) string { return "hubctl-proxy-" + service + "-state" }

// LockName is the never-started container whose existence is a service's lock on a
// host (the engine's name uniqueness is the mutex).
func LockName(service string) string { return "hubctl-lock-" + service }
