// Package dockerhost is one Docker engine as a deploy drives it
// (docs/design/deploy.md): the service's network and proxy container, pulls by
// digest, task containers labelled dev.hubctl.*, exec of the proxy's control verbs,
// logs, and the service's lock as a never-started container. It talks to the engine
// only through its API (github.com/moby/moby/client, version negotiated: the oldest
// engine it knows is 20.10, API 1.41), and only ever lists, stops or removes what
// carries the service's and host's labels.
package dockerhost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
)

// Options configure a Host.
type Options struct {
	// ProxyImage is the proxy's image: hubctl at /hubctl in an image FROM scratch
	// (the container runs `/hubctl proxy run`); used as it is when the engine has
	// it, pulled otherwise.
	ProxyImage string
	// ProxyPublish is where the proxy's HTTP port is published on the host:
	// "[IP:]PORT", PORT 0 for any free one. Empty: "80".
	ProxyPublish string
	// LockImage is an image for the lock container (never started) when the engine
	// has neither the proxy's image nor one of the service's; pulled if needed.
	LockImage string
	// RegistryAuth answers the X-Registry-Auth value for pulling an image (the
	// caller's credentials for its registry, or a hub's pull token); nil pulls
	// anonymously.
	RegistryAuth func(image string) (string, error)
	// ProxyCert, when set, makes the proxy terminate HTTPS with these files (read
	// and checked by deploy.LoadProxyCert), copied into its container before it
	// starts; ProxyACME makes it get certificates by ACME instead, its cache on the
	// proxy's state volume. One at most.
	ProxyCert *deploy.ProxyCert
	ProxyACME *deploy.ACME
	// ProxyTLSPublish is where the proxy's HTTPS port is published with ProxyCert
	// or ProxyACME: "[IP:]PORT", PORT 0 for any free one. Empty: "443".
	ProxyTLSPublish string
}

// Host is one Docker engine, under the spec's name for it.
type Host struct {
	name string
	api  *client.Client
	opts Options

	// answered holds the proxy containers whose control channel answered this
	// Host (Observe and WaitIdle ask it before a deploy), so Prepare need not
	// wait for it again: one exec less per deploy.
	mu       sync.Mutex
	answered map[string]bool
}

// New returns the host name reached through api (see Dial).
func New(name string, api *client.Client, opts Options) *Host {
	return &Host{name: name, api: api, opts: opts}
}

// Name is the spec's name of the host.
func (h *Host) Name() string { return h.name }

// API is the engine client.
func (h *Host) API() *client.Client { return h.api }

// Close closes the engine connection.
func (h *Host) Close() error { return h.api.Close() }

var _ deploy.Target = (*Host)(nil)
var _ deploy.HostLock = (*Host)(nil)

func (h *Host) filter(service string, more ...string) client.Filters {
	f := make(client.Filters).Add("label", deploy.LabelService+"="+service)
	for _, m := range more {
		f = f.Add("label", m)
	}
	return f
}

// Observe lists the service's containers of this host entry (and the proxy, which
// host entries on one engine share), with Routed from the proxy's status.
func (h *Host) Observe(ctx context.Context, service string) (deploy.HostState, error) {
	st := deploy.HostState{Host: h.name}
	res, err := h.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: h.filter(service)})
	if err != nil {
		return st, fmt.Errorf("list containers: %w", err)
	}
	var proxyID string
	for _, s := range res.Items {
		l := s.Labels
		role := l[deploy.LabelRole]
		if role == deploy.RoleLock || (role != deploy.RoleProxy && l[deploy.LabelHost] != h.name) {
			continue
		}
		c := deploy.Container{
			ID: s.ID, Role: role, Host: h.name, Hash: l[deploy.LabelConfig],
			Accessory: l[deploy.LabelAccessory], Image: s.Image, State: string(s.State),
		}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		c.Version, _ = strconv.Atoi(l[deploy.LabelVersion])
		c.Task, _ = strconv.Atoi(l[deploy.LabelTask])
		for _, p := range s.Ports {
			if p.PublicPort != 0 {
				c.Published = append(c.Published, fmt.Sprintf("%s->%d/%s", netip.AddrPortFrom(p.IP, p.PublicPort), p.PrivatePort, p.Type))
			}
		}
		if role == deploy.RoleProxy && c.Running() {
			proxyID = s.ID
		}
		st.Containers = append(st.Containers, c)
	}
	if proxyID == "" {
		return st, nil
	}
	routed, err := h.routed(ctx, proxyID, service)
	if err != nil {
		return st, err
	}
	for i, c := range st.Containers {
		st.Containers[i].Routed = c.Role == deploy.RoleTask && routed[c.Name]
	}
	return st, nil
}

// RunningTasks lists the service's running task containers of this host entry,
// without asking the proxy what it routes (Observe does): cheap enough to poll.
func (h *Host) RunningTasks(ctx context.Context, service string) ([]deploy.Container, error) {
	res, err := h.api.ContainerList(ctx, client.ContainerListOptions{Filters: h.filter(service,
		deploy.LabelRole+"="+deploy.RoleTask, deploy.LabelHost+"="+h.name)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []deploy.Container
	for _, s := range res.Items {
		c := deploy.Container{ID: s.ID, Role: deploy.RoleTask, Host: h.name, State: string(s.State)}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		c.Version, _ = strconv.Atoi(s.Labels[deploy.LabelVersion])
		c.Task, _ = strconv.Atoi(s.Labels[deploy.LabelTask])
		out = append(out, c)
	}
	return out, nil
}

// Prepare ensures the network and, withProxy, the proxy container on it.
func (h *Host) Prepare(ctx context.Context, service string, withProxy bool) error {
	if _, err := h.ensureNetwork(ctx, service); err != nil {
		return err
	}
	if withProxy {
		return h.ensureProxy(ctx, service)
	}
	return nil
}

func (h *Host) ensureNetwork(ctx context.Context, service string) (string, error) {
	name := deploy.NetworkName(service)
	find := func() (string, error) {
		res, err := h.api.NetworkList(ctx, client.NetworkListOptions{Filters: h.filter(service, deploy.LabelRole+"="+deploy.RoleNetwork)})
		if err != nil {
			return "", fmt.Errorf("list networks: %w", err)
		}
		for _, n := range res.Items {
			if n.Name == name {
				return n.ID, nil
			}
		}
		return "", nil
	}
	if id, err := find(); err != nil || id != "" {
		return id, err
	}
	_, err := h.api.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{deploy.LabelService: service, deploy.LabelRole: deploy.RoleNetwork},
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return "", fmt.Errorf("create network %s: %w", name, err)
	}
	id, err := find()
	if err == nil && id == "" {
		err = fmt.Errorf("network %s exists but is not hubctl's (no %s label): remove or rename it", name, deploy.LabelService)
	}
	return id, err
}

// ensureProxy starts the service's proxy unless it runs: its state on a volume, a
// fresh control secret in its environment (the deployer reaches the control channel
// with exec, which inherits it, so the secret is never kept elsewhere), its HTTP
// port published on the host.
func (h *Host) ensureProxy(ctx context.Context, service string) error {
	name := deploy.ProxyName(service)
	ins, err := h.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case err == nil:
		c := ins.Container
		if c.Config == nil || c.Config.Labels[deploy.LabelService] != service || c.Config.Labels[deploy.LabelRole] != deploy.RoleProxy {
			return fmt.Errorf("container name %s is taken by a container that is not this service's proxy", name)
		}
		if err := h.checkProxyTLS(ctx, c.ID, name, c.Config.Labels); err != nil {
			return err
		}
		if c.State != nil && c.State.Running {
			if h.hasAnswered(c.ID) {
				return nil
			}
			return h.waitProxy(ctx, c.ID)
		}
		if _, err := h.api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return fmt.Errorf("start proxy %s: %w", name, err)
		}
		return h.waitProxy(ctx, c.ID)
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect proxy %s: %w", name, err)
	}
	if h.opts.ProxyCert != nil && h.opts.ProxyACME != nil {
		return errors.New("proxy TLS: certificate files or ACME, not both")
	}
	if h.opts.ProxyImage == "" {
		return errors.New("no proxy image: the service has a proxy and hubctl was given no proxy image (--proxy-image)")
	}
	if err := h.Pull(ctx, h.opts.ProxyImage); err != nil {
		return err
	}
	vol := deploy.ProxyStateVolume(service)
	if _, err := h.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Driver: "local",
		Labels: map[string]string{deploy.LabelService: service, deploy.LabelRole: deploy.RoleProxyState}}); err != nil {
		return fmt.Errorf("create volume %s: %w", vol, err)
	}
	ip, port, err := parsePublish(h.opts.ProxyPublish)
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	http := network.MustParsePort("80/tcp")
	cfg := &container.Config{
		Image:        h.opts.ProxyImage,
		Env:          []string{"HUBCTL_PROXY_SECRET=" + hex.EncodeToString(secret)},
		Labels:       map[string]string{deploy.LabelService: service, deploy.LabelRole: deploy.RoleProxy},
		ExposedPorts: network.PortSet{http: {}},
		Entrypoint:   []string{"/hubctl", "proxy", "run"},
		Cmd:          []string{"--listen", ":80", "--control-listen", "127.0.0.1:8081", "--state-file", "/data/state.json"},
	}
	hc := &container.HostConfig{
		PortBindings:  network.PortMap{http: {{HostIP: ip, HostPort: port}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/data"}},
	}
	if mode := h.proxyTLSMode(); mode != "" {
		tlsPublish := h.opts.ProxyTLSPublish
		if tlsPublish == "" {
			tlsPublish = "443"
		}
		tip, tport, err := parsePublish(tlsPublish)
		if err != nil {
			return err
		}
		https := network.MustParsePort(proxyTLSPort)
		cfg.Labels[labelProxyTLS] = mode
		cfg.ExposedPorts[https] = struct{}{}
		cfg.Cmd = append(cfg.Cmd, h.proxyTLSArgs()...)
		hc.PortBindings[https] = []network.PortBinding{{HostIP: tip, HostPort: tport}}
	}
	netID, err := h.ensureNetwork(ctx, service)
	if err != nil {
		return err
	}
	res, err := h.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name, Config: cfg, HostConfig: hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netID: {}}},
	})
	if cerrdefs.IsConflict(err) {
		// Another deploy made it between our inspect and create.
		return h.ensureProxy(ctx, service)
	}
	if err != nil {
		return fmt.Errorf("create proxy %s: %w", name, err)
	}
	if h.opts.ProxyCert != nil {
		// Into the container's own filesystem before it starts: the key is in no
		// config, environment, label or host path.
		if err := h.copyProxyCert(ctx, res.ID); err != nil {
			_, _ = h.api.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
			return err
		}
	}
	if _, err := h.api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		_, _ = h.api.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
		return fmt.Errorf("start proxy %s: %w", name, err)
	}
	return h.waitProxy(ctx, res.ID)
}

// parsePublish reads "[IP:]PORT".
func parsePublish(s string) (netip.Addr, string, error) {
	if s == "" {
		s = "80"
	}
	ipS, port := "", s
	if i := strings.LastIndex(s, ":"); i >= 0 {
		ipS, port = strings.Trim(s[:i], "[]"), s[i+1:]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return netip.Addr{}, "", fmt.Errorf("proxy publish %q: want [IP:]PORT", s)
	}
	if n == 0 {
		port = ""
	}
	var ip netip.Addr
	if ipS != "" {
		if ip, err = netip.ParseAddr(ipS); err != nil {
			return ip, "", fmt.Errorf("proxy publish %q: %v", s, err)
		}
	}
	return ip, port, nil
}

// setAnswered notes that the control channel of proxy container id answered.
func (h *Host) setAnswered(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.answered == nil {
		h.answered = map[string]bool{}
	}
	h.answered[id] = true
}

func (h *Host) hasAnswered(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.answered[id]
}

// waitProxy waits until the proxy's control channel answers.
func (h *Host) waitProxy(ctx context.Context, id string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, code, err := h.exec(ctx, id, []string{"/hubctl", "proxy", "status", "-o", "json"})
		if err == nil && code == 0 {
			h.setAnswered(id)
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("exit %d", code)
			}
			return fmt.Errorf("the proxy's control channel did not answer within 30s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Pull makes the engine have image: nothing when it has it, else a pull with the
// registry auth of Options.
func (h *Host) Pull(ctx context.Context, image string) error {
	if _, err := h.api.ImageInspect(ctx, image); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect image %s: %w", image, err)
	}
	var auth string
	if h.opts.RegistryAuth != nil {
		var err error
		if auth, err = h.opts.RegistryAuth(image); err != nil {
			return err
		}
	}
	resp, err := h.api.ImagePull(ctx, image, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("pull %s: %w", image, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pull %s: %w", image, err)
	}
	return nil
}

// Start creates and starts t on the service's network; a container of t's name
// this deploy made before (and a crash left) is started, not made again.
func (h *Host) Start(ctx context.Context, t deploy.TaskSpec) error {
	netID, err := h.ensureNetwork(ctx, t.Service)
	if err != nil {
		return err
	}
	for _, v := range t.Volumes {
		if !v.Named {
			continue
		}
		// A volume that exists is answered as it is; a new one is labelled as ours.
		if _, err := h.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: v.Source, Driver: "local",
			Labels: map[string]string{deploy.LabelService: t.Service, deploy.LabelRole: deploy.RoleVolume}}); err != nil {
			return fmt.Errorf("create volume %s: %w", v.Source, err)
		}
	}
	stop := int(t.StopTimeout / time.Second)
	cfg := &container.Config{
		Image: t.Image, Env: t.Env, Labels: t.AllLabels(), StopTimeout: &stop,
		ExposedPorts: network.PortSet{},
	}
	if len(t.Command) > 0 {
		cfg.Cmd = t.Command
	}
	hc := &container.HostConfig{
		PortBindings: network.PortMap{},
		Resources:    container.Resources{NanoCPUs: t.Resources.MilliCPU * 1_000_000, Memory: t.Resources.Memory},
	}
	if t.Accessory != "" {
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	}
	for _, p := range t.Ports {
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
		if err != nil {
			return err
		}
		cfg.ExposedPorts[port] = struct{}{}
		if p.HostPort == 0 {
			continue
		}
		b := network.PortBinding{HostPort: strconv.Itoa(p.HostPort)}
		if p.HostIP != "" {
			if b.HostIP, err = netip.ParseAddr(p.HostIP); err != nil {
				return err
			}
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
	}
	for _, v := range t.Volumes {
		typ := mount.TypeBind
		if v.Named {
			typ = mount.TypeVolume
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: typ, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	id := ""
	res, err := h.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: t.Name, Config: cfg, HostConfig: hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netID: {}}},
	})
	switch {
	case err == nil:
		id = res.ID
	case cerrdefs.IsConflict(err):
		ins, ierr := h.api.ContainerInspect(ctx, t.Name, client.ContainerInspectOptions{})
		if ierr != nil {
			return fmt.Errorf("create %s: %w", t.Name, err)
		}
		l := ins.Container.Config.Labels
		if l[deploy.LabelService] != t.Service || l[deploy.LabelConfig] != t.Hash {
			return fmt.Errorf("container name %s is taken by a container that is not this deploy's", t.Name)
		}
		id = ins.Container.ID
	default:
		return fmt.Errorf("create %s: %w", t.Name, err)
	}
	if _, err := h.api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		_, _ = h.api.ContainerRemove(context.WithoutCancel(ctx), id, client.ContainerRemoveOptions{Force: true})
		return fmt.Errorf("start %s: %w", t.Name, err)
	}
	return nil
}

// Remove stops the container (SIGTERM, timeout, SIGKILL) and removes it; one that
// is gone already is no error.
func (h *Host) Remove(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(timeout / time.Second)
	if _, err := h.api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if _, err := h.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// Down removes the service's containers of this host entry, then, when no other
// entry's remain on the engine, the proxy, network and proxy state volume; named
// volumes it made go too with volumes. The lock container is left to its holder.
func (h *Host) Down(ctx context.Context, service string, volumes bool) error {
	res, err := h.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: h.filter(service)})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	others := false
	var shared []string
	for _, c := range res.Items {
		switch role := c.Labels[deploy.LabelRole]; {
		case role == deploy.RoleLock:
		case role == deploy.RoleProxy:
			shared = append(shared, c.ID)
		case c.Labels[deploy.LabelHost] != h.name:
			others = true
		default:
			if err := h.Remove(ctx, c.ID, 10*time.Second); err != nil {
				return err
			}
		}
	}
	if others {
		return nil
	}
	for _, id := range shared {
		if err := h.Remove(ctx, id, 10*time.Second); err != nil {
			return err
		}
	}
	nets, err := h.api.NetworkList(ctx, client.NetworkListOptions{Filters: h.filter(service, deploy.LabelRole+"="+deploy.RoleNetwork)})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nets.Items {
		if _, err := h.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
	}
	vols, err := h.api.VolumeList(ctx, client.VolumeListOptions{Filters: h.filter(service)})
	if err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vols.Items {
		if role := v.Labels[deploy.LabelRole]; role == deploy.RoleProxyState || volumes && role == deploy.RoleVolume {
			if _, err := h.api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("remove volume %s: %w", v.Name, err)
			}
		}
	}
	return nil
}
