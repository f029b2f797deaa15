package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// SetupWorkflow makes the job's network, workspace volume and cache volume and starts
// its services; what exists already is found, not made again.
func (e *Executor) SetupWorkflow(ctx context.Context, job *executor.JobSpec) error {
	if err := checkJob(job); err != nil {
		return err
	}
	if e.hostNet && len(job.Services) > 0 {
		return errors.New("docker executor: a job with services needs the job's own network, not host networking (workflows.docker.network: host)")
	}
	if _, err := e.ensureNetwork(ctx, job); err != nil {
		return err
	}
	if err := e.ensureVolume(ctx, workspaceName(job), labels(job, LabelRole, "workspace")); err != nil {
		return err
	}
	if job.CacheKey != "" && job.CachePath != "" {
		// The cache outlives the job run, so it carries no job label: DestroyWorkflow
		// keeps it.
		if err := e.ensureVolume(ctx, cacheName(job.CacheKey), cacheLabels(job)); err != nil {
			return err
		}
	}
	for i := range job.Services {
		if err := e.startService(ctx, job, &job.Services[i]); err != nil {
			return err
		}
	}
	return nil
}

// ensureNetwork finds the job's network or makes it, and returns its id. Engines
// before API 1.44 accept two networks of one name (and then refuse to start a
// container on "an ambiguous network"), so creation is serialised per job in this
// process, and two processes that raced agree on the oldest network and remove the
// other.
func (e *Executor) ensureNetwork(ctx context.Context, job *executor.JobSpec) (string, error) {
	unlock := e.lockJob(job.JobID)
	defer unlock()
	if id, err := e.findNetwork(ctx, job); err != nil || id != "" {
		return id, err
	}
	if _, err := e.api.NetworkCreate(ctx, networkName(job), client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: labels(job, LabelRole, "network"),
	}); err != nil && !isConflict(err) {
		return "", fmt.Errorf("docker executor: create network %s: %w", networkName(job), err)
	}
	id, err := e.findNetwork(ctx, job)
	if err == nil && id == "" {
		err = fmt.Errorf("docker executor: network %s vanished after it was made", networkName(job))
	}
	return id, err
}

// findNetwork returns the id of the job's oldest network and removes any younger
// one of the same name (made by a racing process), or "".
func (e *Executor) findNetwork(ctx context.Context, job *executor.JobSpec) (string, error) {
	res, err := e.api.NetworkList(ctx, client.NetworkListOptions{
		Filters: jobFilter(job).Add("label", LabelRole+"=network"),
	})
	if err != nil {
		return "", fmt.Errorf("docker executor: list networks: %w", err)
	}
	var nets []network.Summary
	for _, n := range res.Items {
		if n.Name == networkName(job) {
			nets = append(nets, n)
		}
	}
	if len(nets) == 0 {
		return "", nil
	}
	sort.Slice(nets, func(i, j int) bool {
		if !nets[i].Created.Equal(nets[j].Created) {
			return nets[i].Created.Before(nets[j].Created)
		}
		return nets[i].ID < nets[j].ID
	})
	for _, n := range nets[1:] {
		if _, err := e.api.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			return "", fmt.Errorf("docker executor: remove duplicate network %s: %w", n.ID, err)
		}
	}
	return nets[0].ID, nil
}

func (e *Executor) ensureVolume(ctx context.Context, name string, lbls map[string]string) error {
	// Creating a volume that exists with the same driver returns it.
	if _, err := e.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: "local", Labels: lbls}); err != nil {
		return fmt.Errorf("docker executor: create volume %s: %w", name, err)
	}
	return nil
}

func cacheHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

func cacheName(key string) string { return "hubctl-cache-" + cacheHash(key) }

// cacheLabels label a cache volume with its key's hash and the workflow it belongs to
// (never a run or job: the volume outlives them), so `docker volume ls --filter
// label=hubctl.workflow=NAME` finds a workflow's caches and a test removes its own.
func cacheLabels(job *executor.JobSpec) map[string]string {
	m := map[string]string{LabelCache: cacheHash(job.CacheKey), LabelRole: "cache"}
	if job.Namespace != "" {
		m[LabelNamespace] = job.Namespace
	}
	if job.Workflow != "" {
		m[LabelWorkflow] = job.Workflow
	}
	return m
}

func (e *Executor) startService(ctx context.Context, job *executor.JobSpec, svc *executor.Service) error {
	netID, err := e.ensureNetwork(ctx, job)
	if err != nil {
		return err
	}
	if err := e.ensureImage(ctx, job, svc.Image); err != nil {
		return err
	}
	name := serviceName(job, svc.Name)
	env := mergeEnv(job.Env, svc.Env)
	if err := checkEnv(env); err != nil {
		return fmt.Errorf("service %s: %w", svc.Name, err)
	}
	cfg := &container.Config{
		Image:  svc.Image,
		Env:    envList(env),
		Labels: labels(job, LabelService, svc.Name),
	}
	if len(svc.Args) > 0 {
		cfg.Cmd = svc.Args
	}
	useInit := true // so a stop ends the service within grace, as it does a step
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(netID),
		Resources:   resources(job),
		Init:        &useInit,
	}
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netID: {Aliases: []string{svc.Name}},
	}}
	id, _, err := e.createOrFind(ctx, job, name, cfg, host, netcfg)
	if err != nil {
		return fmt.Errorf("service %s: %w", svc.Name, err)
	}
	if _, err := e.api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("docker executor: start service %s: %w", svc.Name, err)
	}
	return nil
}

// createOrFind creates the container name, or finds it when a create before (maybe
// before a crash) made it: the name is deterministic, so a second create conflicts.
// A container of that name without the job's label is refused, never reused.
func (e *Executor) createOrFind(ctx context.Context, job *executor.JobSpec, name string, cfg *container.Config, host *container.HostConfig, netcfg *network.NetworkingConfig) (id string, created bool, err error) {
	res, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name, Config: cfg, HostConfig: host, NetworkingConfig: netcfg,
	})
	if err == nil {
		return res.ID, true, nil
	}
	if !isConflict(err) {
		return "", false, fmt.Errorf("docker executor: create container %s: %w", name, err)
	}
	// The engine reserves the name before the racing create has registered the
	// container, so the name may not be found for a moment.
	var ins client.ContainerInspectResult
	for try := 0; ; try++ {
		var ierr error
		ins, ierr = e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if ierr == nil {
			break
		}
		if !isNotFound(ierr) || try == 50 {
			return "", false, fmt.Errorf("docker executor: create container %s: %w (and inspect: %v)", name, err, ierr)
		}
		select {
		case <-ctx.Done():
			return "", false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	c := ins.Container
	if c.Config == nil || c.Config.Labels[LabelJob] != job.JobID {
		return "", false, fmt.Errorf("docker executor: container name %s is taken by a container that is not this job's", name)
	}
	return c.ID, false, nil
}

// ensureImage pulls ref unless the engine has it.
func (e *Executor) ensureImage(ctx context.Context, job *executor.JobSpec, ref string) error {
	if ref == "" {
		return fmt.Errorf("docker executor: no image")
	}
	if _, err := e.api.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("docker executor: inspect image %s: %w", ref, err)
	}
	auth, err := registryAuth(ref, job.Registry)
	if err != nil {
		return err
	}
	resp, err := e.api.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return fmt.Errorf("docker executor: pull %s: %w", ref, err)
	}
	defer resp.Close()
	// Wait reads the progress stream to its end and returns the error it reports.
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("docker executor: pull %s: %w", ref, err)
	}
	return nil
}

// registryAuth is the X-Registry-Auth value for pulling ref: the job's credentials
// when they are for ref's registry, and nothing otherwise, so a job token never
// reaches another registry.
func registryAuth(ref string, auth *executor.RegistryAuth) (string, error) {
	if auth == nil || auth.Registry == "" {
		return "", nil
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("docker executor: image %q: %w", ref, err)
	}
	if !strings.EqualFold(reference.Domain(named), auth.Registry) {
		return "", nil
	}
	return authconfig.Encode(registry.AuthConfig{
		Username:      auth.Username,
		Password:      auth.Password,
		RegistryToken: auth.Token,
		ServerAddress: auth.Registry,
	})
}

func resources(job *executor.JobSpec) container.Resources {
	r := container.Resources{
		NanoCPUs: job.Resources.MilliCPU * 1_000_000,
		Memory:   job.Resources.Memory,
	}
	if r.Memory > 0 {
		r.MemorySwap = r.Memory // a limit, not a hint: no swap beyond it
	}
	return r
}

// mergeEnv applies over on base, keeping the first position of each name.
func mergeEnv(base []executor.EnvVar, over ...[]executor.EnvVar) []executor.EnvVar {
	out := make([]executor.EnvVar, 0, len(base))
	at := map[string]int{}
	add := func(v executor.EnvVar) {
		if i, ok := at[v.Name]; ok {
			out[i].Value = v.Value
			return
		}
		at[v.Name] = len(out)
		out = append(out, v)
	}
	for _, v := range base {
		add(v)
	}
	for _, list := range over {
		for _, v := range list {
			add(v)
		}
	}
	return out
}

// checkEnv refuses names the engine would split differently ("A=B" as a name would
// set A) and NUL bytes, which no process environment can hold. Values are never
// quoted in the error: they may be secrets.
func checkEnv(vars []executor.EnvVar) error {
	for _, v := range vars {
		if v.Name == "" || strings.ContainsAny(v.Name, "=\x00") {
			return fmt.Errorf("docker executor: environment variable name %q is empty or holds '=' or NUL", v.Name)
		}
		if strings.ContainsRune(v.Value, 0) {
			return fmt.Errorf("docker executor: environment variable %s holds a NUL byte", v.Name)
		}
	}
	return nil
}

func envList(vars []executor.EnvVar) []string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.Name + "=" + v.Value
	}
	return out
}
