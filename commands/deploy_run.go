package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/dockerhost"
	"github.com/hubctl/hubctl/internal/deploy/kube"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
)

// proxyImageEnv names the proxy image when --proxy-image is not given.
const proxyImageEnv = "HUBCTL_PROXY_IMAGE"

// sshConfigEnv names the ssh_config file (ssh -F) ssh:// hosts are reached with,
// instead of ~/.ssh/config.
const sshConfigEnv = "HUBCTL_SSH_CONFIG"

// DeployOptions are the inputs of the verbs that deploy or look at a deployed service.
type DeployOptions struct {
	IO       *iostreams.IOStreams
	File     string
	StateDir string
	// Hub is the hub (host[:port]) deploys are recorded and locked in; empty: the
	// local state file and a lock on each host.
	Hub string
	// SSHConfig ($HUBCTL_SSH_CONFIG) is the ssh_config of ssh:// hosts; empty:
	// ssh's own (~/.ssh/config).
	SSHConfig    string
	ProxyImage   string
	ProxyPublish string
	// ProxyTLSPublish is where the proxy's HTTPS port is published when the spec
	// has proxy.tls.
	ProxyTLSPublish string
	Insecure        bool
	DryRun          bool
	Output          string
	// Volumes (down) removes the named volumes the deploys made too.
	Volumes bool
	// Tail, Task and Follow (logs).
	Tail   string
	Task   string
	Follow bool
	// Version (rollback) is the deploy to re-deploy; 0: the previous succeeded one.
	Version int

	// proxyCert is proxy.tls's certificate files, read and checked by deployDocker
	// before anything starts.
	proxyCert *deploy.ProxyCert
}

func (o *DeployOptions) bind(cmd *cobra.Command, deploys bool) {
	fl := cmd.Flags()
	fl.StringVarP(&o.File, "file", "f", "deploy.yaml", "The deploy `file`")
	fl.StringVar(&o.StateDir, "state-dir", ".hubctl/deploy", "`Directory` of the local deploy history (without a hub)")
	fl.StringVar(&o.Hub, "hub", "", "Record, lock and pull through this hub `host` (the image's; default $"+deployHubEnv+"; --hub= for none)")
	if deploys {
		fl.StringVar(&o.ProxyImage, "proxy-image", "", "The proxy's `image` (hubctl at /hubctl, FROM scratch; default $"+proxyImageEnv+", else built from this hubctl: pushed to the hub and pulled by digest with --hub, loaded into each engine without)")
		fl.StringVar(&o.ProxyPublish, "proxy-publish", "80", "Where the proxy's HTTP port is published on each host: `[IP:]PORT` (0: any free port)")
		fl.StringVar(&o.ProxyTLSPublish, "proxy-tls-publish", "443", "Where the proxy's HTTPS port is published on each host when the deploy file has proxy.tls: `[IP:]PORT` (0: any free port)")
		fl.BoolVar(&o.Insecure, "insecure", false, "Reach the image's registry over plain HTTP (loopback registries always are)")
	}
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	_ = cmd.MarkFlagDirname("state-dir")
}

// NewCmdDeployUp returns `hubctl deploy up` (and, with use "update", the same verb
// under the name a redeploy reads best with). runF receives the parsed options.
func NewCmdDeployUp(f *Factory, use string, runF func(*DeployOptions) error) *cobra.Command {
	short := "Deploy the service: start what is missing, replace what changed, with no downtime"
	if use == "update" {
		short = "Deploy a new version of the service (the same as up): health-gated, zero-downtime switch"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: `Resolve the service's image (and the accessories') to a digest, take the service's
lock, and on every host in parallel: ensure the network and the proxy, pull the
image, start the new tasks, let the proxy health-check them and switch traffic once
all pass, drain and stop the old ones. New tasks that never become healthy are
removed and the old ones keep serving; the deploy is then recorded as failed. Tasks
whose configuration did not change are kept. With --hub the deploy is recorded and
locked in the hub, the engines pull with a token it mints, and secrets come from its
secret store; without, from hubctl's environment. Secrets are never recorded. A
kubernetes: spec is a helm upgrade instead. --dry-run prints the plan and changes
nothing.`,
		Example: `  hubctl deploy up -f deploy.yaml --hub hub.example.com
  hubctl deploy update --dry-run`,
		Args: checkArgs(cobra.NoArgs),
	}
	opts := deployVerb(f, cmd, true, func(cmd *cobra.Command, o *DeployOptions, _ []string) error {
		if runF != nil {
			return runF(o)
		}
		return deployUpRun(cmd.Context(), f, o)
	})
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "Print the plan (what starts, stays, stops) and change nothing")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json")
	return cmd
}

func (o *DeployOptions) check(cmd *cobra.Command, f *Factory) error {
	if o.Output != "" && o.Output != "json" {
		return usageErrorf(cmd, "invalid --output %q: want json", o.Output)
	}
	if o.ProxyImage == "" {
		o.ProxyImage, _ = f.LookupEnv(proxyImageEnv)
	}
	o.SSHConfig, _ = f.LookupEnv(sshConfigEnv)
	if o.Hub == "" && !cmd.Flags().Changed("hub") {
		o.Hub, _ = f.LookupEnv(deployHubEnv)
	}
	o.IO = f.IOStreams
	return nil
}

// loadDeploySpec reads and parses the deploy file; its errors become one line.
func loadDeploySpec(o *DeployOptions) (*deploy.Spec, []byte, error) {
	src, err := readDeployFile(o.File, o.IO.In)
	if err != nil {
		return nil, nil, fmt.Errorf("deploy file: %w", err)
	}
	s, err := deploy.Parse(src)
	var es deploy.Errors
	if errors.As(err, &es) && len(es) > 0 {
		more := ""
		if len(es) > 1 {
			more = fmt.Sprintf(" (and %d more: hubctl deploy validate %s)", len(es)-1, o.File)
		}
		return nil, nil, fmt.Errorf("%s:%d:%d: %s%s", o.File, es[0].Line, es[0].Col, es[0].Msg, more)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", o.File, err)
	}
	return s, src, nil
}

// deployHistory is where a service's deploys are recorded and locked: the one place
// that picks it. With a hub (hub not nil): the hub's store, for the namespace of the
// service's image there. Without: the state file in --state-dir and locks, the
// service's lock on each host (hostLocks) or in its cluster (kubeLocks).
func deployHistory(o *DeployOptions, hub *deployHub, locks []deploy.HostLock) (deploy.History, error) {
	if hub != nil {
		return &hubDeployHistory{History: hub.hist}, nil
	}
	return deploy.NewFileHistory(o.StateDir, locks), nil
}

// hostLocks are the service's locks on its Docker hosts.
func hostLocks(hosts []*dockerhost.Host) []deploy.HostLock {
	locks := make([]deploy.HostLock, len(hosts))
	for i, h := range hosts {
		locks[i] = h
	}
	return locks
}

// kubeLocks is the lock of a release deployed without a hub: a Lease in its
// namespace.
func kubeLocks(s *deploy.Spec) ([]deploy.HostLock, error) {
	l, err := kube.NewLease(s)
	if err != nil {
		return nil, err
	}
	return []deploy.HostLock{l}, nil
}

// deployHolder says who deploys, from where.
func deployHolder() deploy.LockHolder {
	h := deploy.LockHolder{PID: os.Getpid(), By: "unknown"}
	if u, err := user.Current(); err == nil {
		h.By = u.Username
	}
	h.Host, _ = os.Hostname()
	return h
}

// dialHosts connects to every host of the spec; close them with closeHosts.
func dialHosts(ctx context.Context, f *Factory, o *DeployOptions, s *deploy.Spec) ([]*dockerhost.Host, error) {
	auth, err := engineAuth(f)
	if err != nil {
		return nil, err
	}
	return dialHostsAuth(ctx, o, s, auth)
}

// dialHostsAuth is dialHosts with the engines' pull credentials given.
func dialHostsAuth(ctx context.Context, o *DeployOptions, s *deploy.Spec, auth func(string) (string, error)) ([]*dockerhost.Host, error) {
	var hosts []*dockerhost.Host
	for _, h := range s.Hosts {
		var dopts []dockerhost.DialOption
		if o.SSHConfig != "" {
			dopts = append(dopts, dockerhost.WithSSHConfig(o.SSHConfig))
		}
		api, err := dockerhost.Dial(ctx, h, dopts...)
		if err != nil {
			closeHosts(hosts)
			return nil, err
		}
		hopts := dockerhost.Options{
			ProxyImage: o.ProxyImage, ProxyPublish: o.ProxyPublish, RegistryAuth: auth,
			ProxyCert: o.proxyCert, ProxyTLSPublish: o.ProxyTLSPublish,
		}
		if p := s.Service.Proxy; p != nil && p.TLS != nil {
			hopts.ProxyACME = p.TLS.ACME
		}
		hosts = append(hosts, dockerhost.New(h.Name, api, hopts))
	}
	return hosts, nil
}

func closeHosts(hosts []*dockerhost.Host) {
	for _, h := range hosts {
		_ = h.Close()
	}
}

// engineAuth answers the X-Registry-Auth of a pull: the caller's credentials for
// the image's registry (a workflow job's token, docker's config), nothing else.
func engineAuth(f *Factory) (func(string) (string, error), error) {
	dir, _ := f.LookupEnv("DOCKER_CONFIG")
	store, err := credentials.Load(dir)
	if err != nil {
		return nil, err
	}
	res := credentials.JobTokenFromEnv(store, f.LookupEnv)
	return func(image string) (string, error) {
		named, err := reference.ParseNormalizedNamed(image)
		if err != nil {
			return "", fmt.Errorf("image %q: %w", image, err)
		}
		host := reference.Domain(named)
		c, err := res.Resolve(host)
		if err != nil || c.IsAnonymous() {
			return "", err
		}
		return authconfig.Encode(registry.AuthConfig{
			Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken,
			RegistryToken: c.RegistryToken, ServerAddress: host,
		})
	}, nil
}

// resolveDigests pins the service's and accessories' images: HEAD of each manifest
// with the caller's credentials. An image that does not exist fails here, before
// anything starts.
func resolveDigests(ctx context.Context, f *Factory, o *DeployOptions, s *deploy.Spec) (map[string]string, error) {
	images := map[string]string{deploy.DigestKey: s.Service.Image}
	for _, a := range s.Accessories {
		images[a.Name] = a.Image
	}
	var refs []string
	for _, im := range images {
		refs = append(refs, im)
	}
	e, err := newEngine(f, o.Insecure, refs...)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for key, im := range images {
		ref, err := distclient.ParseRef(im)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im, err)
		}
		desc, err := e.Client.HeadManifest(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("resolve image %s: %w", im, err)
		}
		out[key] = ref.Repo.String() + "@" + desc.Digest.String()
	}
	return out, nil
}

// deploySecrets reads the spec's secrets from hubctl's environment.
func deploySecrets(f *Factory, s *deploy.Spec) (map[string]string, error) {
	out := map[string]string{}
	var names []deploy.Secret
	names = append(names, s.Service.Secrets...)
	for _, a := range s.Accessories {
		names = append(names, a.Secrets...)
	}
	for _, n := range names {
		v, ok := f.LookupEnv(n.Name)
		if !ok {
			return nil, fmt.Errorf("secret %s is not set: export %s in hubctl's environment", n.Name, n.Name)
		}
		out[n.Name] = v
	}
	return out, nil
}

func deployUpRun(ctx context.Context, f *Factory, o *DeployOptions) error {
	s, src, err := loadDeploySpec(o)
	if err != nil {
		return err
	}
	if s.Kubernetes != nil {
		return deployKube(ctx, f, o, s, string(src))
	}
	return deployDocker(ctx, f, o, s, string(src), nil, 0)
}

// deployDocker runs (or, with --dry-run, plans) a deploy of s to its Docker hosts;
// digests nil resolves the images.
func deployDocker(ctx context.Context, f *Factory, o *DeployOptions, s *deploy.Spec, src string, digests map[string]string, rollbackOf int) error {
	o.proxyCert = nil
	if p := s.Service.Proxy; p != nil && p.TLS != nil && p.TLS.ACME == nil {
		// Read and checked here, before anything starts: a missing file or a
		// mismatched pair fails the deploy with nothing changed.
		c, err := deploy.LoadProxyCert(p.TLS, time.Now())
		if err != nil {
			return err
		}
		o.proxyCert = c
	}
	var built *builtProxyImage
	if s.Service.Proxy != nil && o.ProxyImage == "" {
		var err error
		if built, err = buildProxyImage(ctx, f); err != nil {
			return err
		}
		o.ProxyImage = built.name
	}
	hub, err := openDeployHub(f, o, s)
	if err != nil {
		return err
	}
	var secrets map[string]string
	if hub != nil {
		secrets, err = hub.secrets(ctx, s)
	} else {
		secrets, err = deploySecrets(f, s)
	}
	if err != nil {
		return err
	}
	if digests == nil {
		if digests, err = resolveDigests(ctx, f, o, s); err != nil {
			return err
		}
	}
	auth, err := engineAuth(f)
	if err != nil {
		return err
	}
	if built != nil && hub != nil && !o.DryRun {
		// With a hub the proxy image goes there, and the hosts pull it by digest.
		// A deploy whose credentials may not push there (a workflow step's job
		// token, say) loads the image into each host instead, as without a hub.
		pinned, err := built.push(ctx, f, o, hub)
		switch {
		case errors.Is(err, distclient.ErrUnauthorized):
			fmt.Fprintf(o.IO.ErrOut, "hubctl: may not push the proxy image to %s (%v): loading it into each host instead (give --proxy-image, or push rights on %s/hubctl-proxy)\n",
				hub.host, err, hub.hist.Namespace())
		case err != nil:
			return fmt.Errorf("push the proxy image to %s (or give --proxy-image): %w", hub.host, err)
		default:
			o.ProxyImage, built = pinned, nil
		}
	}
	var hist deploy.History
	if hub != nil {
		h := &hubDeployHistory{History: hub.hist}
		var extra []string
		if s.Service.Proxy != nil && o.ProxyImage != "" {
			extra = append(extra, o.ProxyImage)
		}
		hist, auth = h, hub.pullAuth(ctx, h, s, auth, extra...)
	}
	hosts, err := dialHostsAuth(ctx, o, s, auth)
	if err != nil {
		return err
	}
	defer closeHosts(hosts)
	if built != nil && !o.DryRun {
		if err := built.load(ctx, hosts); err != nil {
			return err
		}
	}
	if hist == nil {
		if hist, err = deployHistory(o, nil, hostLocks(hosts)); err != nil {
			return err
		}
	}
	d := &deploy.Deployer{History: hist, Holder: deployHolder(), Log: o.IO.ErrOut, Targets: deployTargets(hosts)}
	req := deploy.Request{Spec: s, SpecYAML: src, Digests: digests, Secrets: secrets, RollbackOf: rollbackOf}
	if o.DryRun {
		plan, err := d.Plan(ctx, req, 0)
		if err != nil {
			return err
		}
		if o.proxyCert != nil {
			plan.ProxyTLS = o.proxyCert.String()
		}
		if o.Output == "json" {
			for i := range plan.Hosts {
				for j := range plan.Hosts[i].Start {
					plan.Hosts[i].Start[j].Env = nil // secrets: never printed
				}
				for j := range plan.Hosts[i].Accessories {
					plan.Hosts[i].Accessories[j].Env = nil
				}
			}
			return printJSON(o.IO.Out, plan)
		}
		return plan.Write(o.IO.Out)
	}
	rec, err := d.Deploy(ctx, req)
	if rec.Number == 0 {
		return err
	}
	if o.Output == "json" {
		if perr := printJSON(o.IO.Out, rec); perr != nil {
			return perr
		}
	} else if err == nil {
		fmt.Fprintf(o.IO.Out, "%s: deploy %d succeeded: %s\n", safetext.Escape(s.Service.Name), rec.Number, safetext.Escape(digests[deploy.DigestKey]))
	}
	if err != nil {
		if rec.Outcome != deploy.OutcomeFailed {
			return err
		}
		return fmt.Errorf("deploy %d of %s failed, the tasks before it keep serving: %s", rec.Number, s.Service.Name, rec.Error)
	}
	return nil
}

// deployTargets are the dialled hosts as the deployer's targets.
func deployTargets(hosts []*dockerhost.Host) []deploy.Target {
	out := make([]deploy.Target, len(hosts))
	for i, h := range hosts {
		out[i] = h
	}
	return out
}
