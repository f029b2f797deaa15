package commands

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/hubhistory"
)

// deployHubEnv names the hub deploys are recorded in when --hub is not given: the
// registry the other hub commands administer.
const deployHubEnv = "HUBCTL_REGISTRY"

// deployHub is the hub a service's deploys are recorded and locked in: its host,
// and the History of the namespace the service's image lives in there.
type deployHub struct {
	host string
	hist *hubhistory.History
}

// openDeployHub answers the hub of o.Hub for spec s, nil without a hub. The
// namespace is the first path component of the service image's repository, which
// must be on that hub: history and lock are kept with the image, and only those
// who may push it may deploy it.
func openDeployHub(f *Factory, o *DeployOptions, s *deploy.Spec) (*deployHub, error) {
	if o.Hub == "" {
		return nil, nil
	}
	named, err := reference.ParseNormalizedNamed(s.Service.Image)
	if err != nil {
		return nil, fmt.Errorf("service.image %q: %w", s.Service.Image, err)
	}
	if dom := reference.Domain(named); dom != o.Hub {
		return nil, fmt.Errorf("service.image %s is not on the hub %s (the deploy history is kept in the hub that holds the image): push it there, or give --hub %s, or --hub= for a local history", s.Service.Image, o.Hub, dom)
	}
	ns, _, ok := strings.Cut(reference.Path(named), "/")
	if !ok {
		return nil, fmt.Errorf("service.image %s has no namespace on %s (want %s/NAMESPACE/NAME)", s.Service.Image, o.Hub, o.Hub)
	}
	ho := &HubOptions{IO: f.IOStreams, Registry: o.Hub, Insecure: o.Insecure, Trust: f.Trust(), LookupEnv: f.LookupEnv}
	ho.ConfigDir, _ = f.LookupEnv("DOCKER_CONFIG")
	if f.Debug {
		ho.Trace = f.IOStreams.ErrOut
	}
	c, err := ho.client()
	if err != nil {
		return nil, err
	}
	return &deployHub{host: o.Hub, hist: hubhistory.New(c, ns)}, nil
}

// secrets answers the values of the spec's secrets from the hub's secret store of
// the namespace.
func (h *deployHub) secrets(ctx context.Context, s *deploy.Spec) (map[string]string, error) {
	var names []string
	for _, n := range s.Service.Secrets {
		names = append(names, n.Name)
	}
	for _, a := range s.Accessories {
		for _, n := range a.Secrets {
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return map[string]string{}, nil
	}
	return h.hist.Secrets(ctx, s.Service.Name, names)
}

// hubDeployHistory is the hub's History that keeps the number of the deploy it
// began, so the engines' pulls can use a pull token minted for that deploy.
type hubDeployHistory struct {
	*hubhistory.History

	mu     sync.Mutex
	number int
}

// Begin records the deploy and keeps its number.
func (h *hubDeployHistory) Begin(ctx context.Context, rec deploy.Record, holder deploy.LockHolder) (deploy.Record, error) {
	out, err := h.History.Begin(ctx, rec, holder)
	if err == nil {
		h.mu.Lock()
		h.number = out.Number
		h.mu.Unlock()
	}
	return out, err
}

func (h *hubDeployHistory) running() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.number
}

// pullAuth answers the engines' X-Registry-Auth: for the spec's images on the hub
// (and extra ones, the proxy's), a pull token the hub mints for the running deploy
// (asked once, renewed when it nears its end); for any other image, fallback (the
// caller's credentials).
func (h *deployHub) pullAuth(ctx context.Context, hist *hubDeployHistory, s *deploy.Spec, fallback func(string) (string, error), extra ...string) func(string) (string, error) {
	repos := map[string]bool{}
	var list []string
	for _, im := range append(append([]string{s.Service.Image}, accessoryImages(s)...), extra...) {
		if named, err := reference.ParseNormalizedNamed(im); err == nil && reference.Domain(named) == h.host && !repos[reference.Path(named)] {
			repos[reference.Path(named)] = true
			list = append(list, reference.Path(named))
		}
	}
	var (
		mu  sync.Mutex
		tok hubhistory.PullToken
	)
	return func(image string) (string, error) {
		named, err := reference.ParseNormalizedNamed(image)
		if err != nil {
			return "", fmt.Errorf("image %q: %w", image, err)
		}
		if reference.Domain(named) != h.host || !repos[reference.Path(named)] {
			return fallback(image)
		}
		n := hist.running()
		if n == 0 {
			return "", fmt.Errorf("pull %s: no deploy is running to mint a pull token for", image)
		}
		mu.Lock()
		defer mu.Unlock()
		if tok.Token == "" || time.Until(tok.ExpiresAt) < time.Minute {
			if tok, err = h.hist.PullToken(ctx, s.Service.Name, n, list); err != nil {
				return "", err
			}
		}
		return tok.RegistryAuth(h.host), nil
	}
}

func accessoryImages(s *deploy.Spec) []string {
	var out []string
	for _, a := range s.Accessories {
		out = append(out, a.Image)
	}
	return out
}
