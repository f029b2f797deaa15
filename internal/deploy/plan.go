package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// DigestKey is the Digests key of the service's own image; accessories are keyed by
// their names.
const DigestKey = "service"

// Plan is what a deploy does, host by host: tasks to start, keep and stop, and
// accessories to start. `--dry-run` prints it; the Deployer runs it.
type Plan struct {
	Service string `json:"service"`
	// Version is the deploy's number (0 in a dry run: not yet taken).
	Version int    `json:"version"`
	Image   string `json:"image"`
	// ProxyTLS says how the proxy terminates HTTPS (proxy.tls); empty: it does not.
	ProxyTLS string     `json:"proxyTLS,omitempty"`
	Hosts    []HostPlan `json:"hosts"`
}

// HostPlan is the plan of one host.
type HostPlan struct {
	Host string `json:"host"`
	// Keep are running tasks whose configuration is the desired one.
	Keep []Container `json:"keep"`
	// Start are the new tasks.
	Start []TaskSpec `json:"start"`
	// Stop are the tasks that go once the new ones serve (or at once, when nothing
	// routes to them).
	Stop []Container `json:"stop"`
	// Accessories are accessories not running yet; running ones are never touched.
	Accessories []TaskSpec `json:"accessories"`
}

// Changes reports whether the host's plan changes anything.
func (h HostPlan) Changes() bool {
	return len(h.Start)+len(h.Stop)+len(h.Accessories) > 0
}

// PlanInput is what a plan is computed from.
type PlanInput struct {
	Spec *Spec
	// Digests are the pinned images (DigestKey and accessory names), full
	// references HOST/REPO@sha256:….
	Digests map[string]string
	// Secrets are the secret values by name (never recorded).
	Secrets map[string]string
	Version int
	// State is what runs, by host name; a host missing runs nothing yet.
	State map[string]HostState
}

// NewPlan compares the desired tasks (Placement, host overrides merged) with what
// runs, by labels and configuration hash.
func NewPlan(in PlanInput) (*Plan, error) {
	s := in.Spec
	if s == nil || s.Kubernetes != nil {
		return nil, fmt.Errorf("plan: not a Docker hosts spec")
	}
	image := in.Digests[DigestKey]
	if image == "" {
		return nil, fmt.Errorf("plan: the service's image is not resolved to a digest")
	}
	p := &Plan{Service: s.Service.Name, Version: in.Version, Image: image}
	if s.Service.Proxy != nil && s.Service.Proxy.TLS != nil {
		p.ProxyTLS = s.Service.Proxy.TLS.String()
	}
	place := s.Placement()
	for i, h := range s.Hosts {
		want, err := desiredTask(s, h, image, in.Secrets)
		if err != nil {
			return nil, err
		}
		hp := HostPlan{Host: h.Name}
		st := in.State[h.Name]
		var tasks []Container
		for _, c := range st.Containers {
			if c.Role == RoleTask {
				tasks = append(tasks, c)
			}
		}
		// Oldest first, so the tasks kept are the ones that served longest.
		sort.SliceStable(tasks, func(a, b int) bool {
			if tasks[a].Version != tasks[b].Version {
				return tasks[a].Version < tasks[b].Version
			}
			return tasks[a].Task < tasks[b].Task
		})
		used := map[int]bool{}
		for _, c := range tasks {
			keep := len(hp.Keep) < place[i] && c.Running() && c.Hash == want.Hash &&
				(s.Service.Proxy == nil || c.Routed)
			if keep {
				hp.Keep = append(hp.Keep, c)
				if c.Version == in.Version {
					used[c.Task] = true
				}
			} else {
				hp.Stop = append(hp.Stop, c)
			}
		}
		for slot := 1; len(hp.Keep)+len(hp.Start) < place[i]; slot++ {
			if used[slot] {
				continue
			}
			t := want
			t.Version, t.Index = in.Version, slot
			t.Name = ContainerName(s.Service.Name, h.Name, in.Version, slot)
			t.Labels = maps.Clone(want.Labels)
			hp.Start = append(hp.Start, t)
		}
		for _, a := range s.Accessories {
			if a.Host != h.Name {
				continue
			}
			running := false
			for _, c := range st.Containers {
				if c.Role == RoleAccessory && c.Accessory == a.Name && c.Running() {
					running = true
				}
			}
			if running {
				continue
			}
			t, err := accessoryTask(s.Service.Name, h.Name, a, in.Digests[a.Name], in.Secrets, in.Version)
			if err != nil {
				return nil, err
			}
			hp.Accessories = append(hp.Accessories, t)
		}
		p.Hosts = append(p.Hosts, hp)
	}
	return p, nil
}

// desiredTask is the host's task, without its slot.
func desiredTask(s *Spec, h Host, image string, secrets map[string]string) (TaskSpec, error) {
	svc := s.Service
	t := TaskSpec{
		Service: svc.Name, Host: h.Name, Image: image,
		Command: svc.Command, Ports: svc.Ports, Volumes: svc.Volumes,
		Resources: svc.Resources, StopTimeout: svc.StopTimeout,
		Labels: maps.Clone(svc.Labels),
	}
	env := envMap(svc.Env)
	for _, e := range h.Env {
		env[e.Name] = e.Value
	}
	if len(h.Command) > 0 {
		t.Command = h.Command
	}
	if h.Resources != nil {
		t.Resources = *h.Resources
	}
	if len(h.Labels) > 0 && t.Labels == nil {
		t.Labels = map[string]string{}
	}
	maps.Copy(t.Labels, h.Labels)
	var err error
	t.Env, err = taskEnv(env, svc.Secrets, secrets)
	if err != nil {
		return t, err
	}
	t.Hash = configHash(t, svc.Secrets)
	return t, nil
}

func accessoryTask(service, host string, a Accessory, image string, secrets map[string]string, version int) (TaskSpec, error) {
	if image == "" {
		return TaskSpec{}, fmt.Errorf("plan: accessory %s's image is not resolved to a digest", a.Name)
	}
	t := TaskSpec{
		Service: service, Host: host, Version: version, Accessory: a.Name,
		Name: AccessoryName(service, a.Name), Image: image, Command: a.Command,
		Ports: a.Ports, Volumes: a.Volumes, Resources: a.Resources,
		StopTimeout: DefaultStopTimeout, Labels: maps.Clone(a.Labels),
	}
	var err error
	t.Env, err = taskEnv(envMap(a.Env), a.Secrets, secrets)
	if err != nil {
		return t, fmt.Errorf("accessory %s: %w", a.Name, err)
	}
	t.Hash = configHash(t, a.Secrets)
	return t, nil
}

func envMap(env []EnvVar) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

// taskEnv is NAME=value, sorted, secrets included.
func taskEnv(env map[string]string, names []Secret, secrets map[string]string) ([]string, error) {
	out := make([]string, 0, len(env)+len(names))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	for _, s := range names {
		v, ok := secrets[s.Name]
		if !ok {
			return nil, fmt.Errorf("secret %s has no value: set $%s in hubctl's environment", s.Name, s.Name)
		}
		out = append(out, s.Name+"="+v)
	}
	return out, nil
}

// configHash identifies a task's effective configuration: the pinned image, the
// environment (values hashed), the secrets' names, command, ports, volumes,
// resources and labels. Secret values are left out (the design's rule: a label
// visible to anyone on the engine must not help guess them).
func configHash(t TaskSpec, secretNames []Secret) string {
	secret := map[string]bool{}
	for _, s := range secretNames {
		secret[s.Name] = true
	}
	var env []string
	for _, kv := range t.Env {
		k, _, _ := strings.Cut(kv, "=")
		if secret[k] {
			env = append(env, k+"=<secret>")
			continue
		}
		env = append(env, kv)
	}
	b, _ := json.Marshal(struct {
		Image     string
		Command   []string
		Env       []string
		Ports     []Port
		Volumes   []Volume
		Resources Resources
		Labels    map[string]string
	}{t.Image, t.Command, env, stripPorts(t.Ports), stripVolumes(t.Volumes), t.Resources, t.Labels})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// stripPorts and stripVolumes drop the file positions, which are not configuration.
func stripPorts(ps []Port) []Port {
	out := slices.Clone(ps)
	for i := range out {
		out[i].Pos = Pos{}
	}
	return out
}

func stripVolumes(vs []Volume) []Volume {
	out := slices.Clone(vs)
	for i := range out {
		out[i].Pos = Pos{}
	}
	return out
}

// Write prints the plan for people: one line per action.
func (p *Plan) Write(w io.Writer) error {
	ver := fmt.Sprint(p.Version)
	if p.Version == 0 {
		ver = "next"
	}
	fmt.Fprintf(w, "deploy %s (version %s) of %s\n", p.Service, ver, p.Image)
	if p.ProxyTLS != "" {
		fmt.Fprintf(w, "  proxy: HTTPS with %s\n", p.ProxyTLS)
	}
	for _, h := range p.Hosts {
		if !h.Changes() {
			fmt.Fprintf(w, "  %s: no change (%d tasks kept)\n", h.Host, len(h.Keep))
			continue
		}
		fmt.Fprintf(w, "  %s:\n", h.Host)
		for _, a := range h.Accessories {
			fmt.Fprintf(w, "    start accessory %s (%s)\n", a.Accessory, a.Image)
		}
		for _, c := range h.Keep {
			fmt.Fprintf(w, "    keep  %s (version %d)\n", c.Name, c.Version)
		}
		for _, t := range h.Start {
			fmt.Fprintf(w, "    start %s\n", displayName(t.Name, p.Version))
		}
		for _, c := range h.Stop {
			fmt.Fprintf(w, "    stop  %s (version %d, %s)\n", c.Name, c.Version, c.State)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

func displayName(name string, version int) string {
	if version == 0 {
		return name + " (number taken when the deploy runs)"
	}
	return name
}
