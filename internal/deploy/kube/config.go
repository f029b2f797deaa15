package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"helm.sh/helm/v4/pkg/action"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hubctl/hubctl/internal/deploy"
)

// configuration answers helm's action configuration for the spec's cluster and the
// namespace the release lives in: the spec's, else the kubeconfig context's, else
// "default". Release records are helm's (Secrets in that namespace), so the helm CLI
// sees the same releases.
func (h *Helm) configuration(k *deploy.Kubernetes) (*action.Configuration, string, error) {
	g := newGetter(k)
	ns := k.Namespace
	if ns == "" {
		n, _, err := g.loader.Namespace()
		if err != nil {
			return nil, "", fmt.Errorf("kubeconfig: %w", err)
		}
		ns = n
	}
	if _, err := g.ToRESTConfig(); err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(h.o.Log))
	if err := cfg.Init(g, ns, "secret"); err != nil {
		return nil, "", err
	}
	return cfg, ns, nil
}

// getter is helm's RESTClientGetter over a kubeconfig, with discovery cached in
// memory for the call (never in ~/.kube/cache).
type getter struct {
	loader clientcmd.ClientConfig

	once   sync.Once
	config *rest.Config
	disc   discovery.CachedDiscoveryInterface
	err    error
}

func newGetter(k *deploy.Kubernetes) *getter {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.Kubeconfig != "" {
		rules.ExplicitPath = expandHome(k.Kubeconfig)
	}
	over := &clientcmd.ConfigOverrides{CurrentContext: k.Context}
	if k.Namespace != "" {
		over.Context.Namespace = k.Namespace
	}
	return &getter{loader: clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, over)}
}

func (g *getter) init() {
	g.once.Do(func() {
		g.config, g.err = g.loader.ClientConfig()
		if g.err != nil {
			return
		}
		// helm's waits watch many objects; client-go's default of 5 requests a
		// second makes them crawl.
		g.config.QPS, g.config.Burst = 50, 100
		dc, err := discovery.NewDiscoveryClientForConfig(g.config)
		if err != nil {
			g.err = err
			return
		}
		g.disc = memory.NewMemCacheClient(dc)
	})
}

// ToRESTConfig answers the kubeconfig's client configuration.
func (g *getter) ToRESTConfig() (*rest.Config, error) {
	g.init()
	if g.err != nil {
		return nil, g.err
	}
	return rest.CopyConfig(g.config), nil
}

// ToDiscoveryClient answers a discovery client cached in memory.
func (g *getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.init()
	return g.disc, g.err
}

// ToRESTMapper answers a mapper over the discovery client.
func (g *getter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	m := restmapper.NewDeferredDiscoveryRESTMapper(dc)
	return restmapper.NewShortcutExpander(m, dc, func(string) {}), nil
}

// ToRawKubeConfigLoader answers the kubeconfig loader.
func (g *getter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return g.loader }

// expandHome reads a leading ~/ as the user's home directory, as a shell would for
// the kubeconfig path a deploy file names.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}
