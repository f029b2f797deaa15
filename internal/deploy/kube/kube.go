// Package kube is the Kubernetes target of `hubctl deploy`: a helm release of the
// service's chart, driven with the helm v4 SDK (helm.sh/helm/v4 pkg/action). Helm does
// its own rollout, so this package implements deploy.Release, not the Docker hosts'
// Target: Upgrade is `helm upgrade --install --wait --rollback-on-failure` with the
// image pinned by digest in the values, Plan renders the manifests (a dry run) and
// diffs them against the deployed release's, History, Rollback and Uninstall are
// helm's.
//
// The pinned image is written under the spec's image path (default "image"), in the
// shape most charts read:
//
//	image:
//	  repository: hub.example.com/acme/web   # HOST/REPOSITORY
//	  tag: "1.4"                              # the tag the spec named ("" for none)
//	  digest: sha256:…                        # what the deploy resolved and pins
//
// When the chart's values at that path have a "registry" key (bitnami's shape), the
// host goes there and repository is the path alone. A chart pins the digest only if
// its template uses it, e.g.
// `{{ .Values.image.repository }}{{ with .Values.image.digest }}@{{ . }}{{ else }}:{{ .Values.image.tag }}{{ end }}`.
package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	helmkube "helm.sh/helm/v4/pkg/kube"
	ri "helm.sh/helm/v4/pkg/release"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"

	"github.com/hubctl/hubctl/internal/charts/chartclient"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/deploy"
)

// MaxHistory is how many revisions of a release helm keeps (helm's CLI default).
const MaxHistory = 10

// ErrNoRelease is answered by History, Rollback and Uninstall for a release that is
// not installed.
var ErrNoRelease = errors.New("release not installed")

// ErrRolledBack is wrapped by Upgrade's error when the new revision did not become
// ready and the release was put back to the previous one (the deploy's outcome is
// deploy.OutcomeRolledBack). A first install that fails is uninstalled instead.
var ErrRolledBack = errors.New("rolled back to the previous revision")

// Options are what a Helm target needs besides the spec.
type Options struct {
	// Charts pulls oci:// charts with hubctl's credentials, as `hubctl chart pull`
	// does; nil refuses oci:// charts.
	Charts *chartclient.Client
	// HTTPClient fetches classic repositories' index.yaml and chart archives (its
	// transport carries hubctl's CA trust); nil: a client with a 2 minute timeout.
	HTTPClient *http.Client
	// RepoCredentials, when set, answers the login for a classic repository's host
	// (sent only to that scheme, host and port).
	RepoCredentials credentials.Resolver
	// Log receives helm's log records; nil discards them.
	Log slog.Handler
	// TempDir is where charts are fetched before loading (a fresh directory inside,
	// removed after each call); "" is the system's.
	TempDir string
}

// Helm deploys a spec's kubernetes section as a helm release.
type Helm struct {
	o Options
	// config answers helm's configuration for a spec and the release's namespace;
	// configuration, except in the tests of this package's helm wiring.
	config func(k *deploy.Kubernetes) (*action.Configuration, string, error)
}

var _ deploy.Release = (*Helm)(nil)

// New returns the Kubernetes target for the deployer.
func New(o Options) *Helm {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if o.Log == nil {
		o.Log = slog.NewTextHandler(io.Discard, nil)
	}
	h := &Helm{o: o}
	h.config = h.configuration
	return h
}

// Upgrade installs the release, or upgrades it when it exists, with image (pinned by
// digest: HOST/REPO[:TAG]@sha256:…) written under the spec's image path, and waits
// until every resource is ready, within the spec's timeout. When it is not, the
// release is rolled back to its previous revision (a first install is uninstalled)
// and the error wraps ErrRolledBack; the revision answered is then the one running.
func (h *Helm) Upgrade(ctx context.Context, spec *deploy.Spec, image string) (deploy.ReleaseRevision, error) {
	k, err := kubeOf(spec)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	pin, err := parsePinned(image)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	ch, done, err := h.loadChart(ctx, k)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	defer done()
	vals, err := pinValues(k.Values, k.ImagePath, pin, ch.Values)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	cfg, ns, err := h.config(k)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	if err := recoverPending(cfg, k.Release, k.Timeout); err != nil {
		return deploy.ReleaseRevision{}, fmt.Errorf("release %s in %s: %w", k.Release, ns, err)
	}
	installed, uninstalled, err := exists(cfg, k.Release)
	if err != nil {
		return deploy.ReleaseRevision{}, fmt.Errorf("release %s in %s: %w", k.Release, ns, err)
	}
	desc := "hubctl deploy " + pin.String()
	if len(desc) > action.MaxDescriptionLength {
		desc = desc[:action.MaxDescriptionLength]
	}
	var rel ri.Releaser
	if !installed {
		in := action.NewInstall(cfg)
		in.Namespace, in.ReleaseName = ns, k.Release
		in.Replace = uninstalled
		in.WaitStrategy, in.Timeout = helmkube.StatusWatcherStrategy, k.Timeout
		in.RollbackOnFailure = true
		in.Description = desc
		rel, err = in.RunWithContext(ctx, ch, vals)
		if err != nil {
			return deploy.ReleaseRevision{}, fmt.Errorf("install %s in %s: %w", k.Release, ns, err)
		}
	} else {
		up := action.NewUpgrade(cfg)
		up.Namespace = ns
		up.WaitStrategy, up.Timeout = helmkube.StatusWatcherStrategy, k.Timeout
		up.RollbackOnFailure = true
		up.ResetValues = true // the spec's values are the whole truth of every deploy
		up.MaxHistory = MaxHistory
		up.Description = desc
		rel, err = up.RunWithContext(ctx, k.Release, ch, vals)
		if err != nil {
			cur, herr := latest(cfg, k.Release)
			failed, ferr := toV1(rel)
			// helm records the rollback as a new revision after the failed one
			if herr == nil && ferr == nil && cur.Revision > failed.Version && cur.Status == rcommon.StatusDeployed.String() {
				return cur, fmt.Errorf("upgrade %s in %s: %w: %w", k.Release, ns, ErrRolledBack, err)
			}
			return cur, fmt.Errorf("upgrade %s in %s: %w", k.Release, ns, err)
		}
	}
	r, err := toV1(rel)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	return revisionOf(r), nil
}

// History answers the release's revisions, newest first; ErrNoRelease when it was
// never installed.
func (h *Helm) History(ctx context.Context, spec *deploy.Spec) ([]deploy.ReleaseRevision, error) {
	k, err := kubeOf(spec)
	if err != nil {
		return nil, err
	}
	cfg, ns, err := h.config(k)
	if err != nil {
		return nil, err
	}
	rels, err := history(cfg, k.Release)
	if err != nil {
		return nil, fmt.Errorf("history of %s in %s: %w", k.Release, ns, err)
	}
	out := make([]deploy.ReleaseRevision, 0, len(rels))
	for _, r := range rels {
		out = append(out, revisionOf(r))
	}
	return out, nil
}

// Rollback returns the release to revision (0: the one before the current), waits
// for it to be ready within the spec's timeout, and answers the new revision helm
// records for it. helm's rollback takes no context: once started, it ends within
// the timeout.
func (h *Helm) Rollback(ctx context.Context, spec *deploy.Spec, revision int) (deploy.ReleaseRevision, error) {
	k, err := kubeOf(spec)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	if revision < 0 {
		return deploy.ReleaseRevision{}, fmt.Errorf("rollback %s: revision %d: a revision is 1 or more (0: the previous one)", k.Release, revision)
	}
	cfg, ns, err := h.config(k)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	rels, err := history(cfg, k.Release)
	if err != nil {
		return deploy.ReleaseRevision{}, fmt.Errorf("rollback %s in %s: %w", k.Release, ns, err)
	}
	if revision > 0 {
		found := false
		for _, r := range rels {
			found = found || r.Version == revision
		}
		if !found {
			return deploy.ReleaseRevision{}, fmt.Errorf("rollback %s in %s: no revision %d (helm keeps the last %d)", k.Release, ns, revision, MaxHistory)
		}
	} else if len(rels) < 2 {
		return deploy.ReleaseRevision{}, fmt.Errorf("rollback %s in %s: there is no previous revision", k.Release, ns)
	}
	if err := ctx.Err(); err != nil {
		return deploy.ReleaseRevision{}, err
	}
	rb := action.NewRollback(cfg)
	rb.Version = revision
	rb.WaitStrategy, rb.Timeout = helmkube.StatusWatcherStrategy, k.Timeout
	rb.MaxHistory = MaxHistory
	if err := rb.Run(k.Release); err != nil {
		cur, _ := latest(cfg, k.Release)
		return cur, fmt.Errorf("rollback %s in %s: %w", k.Release, ns, err)
	}
	return latest(cfg, k.Release)
}

// Uninstall removes the release and its resources, waiting for them to be gone
// within the spec's timeout (helm's uninstall takes no context); ErrNoRelease when
// it is not installed.
func (h *Helm) Uninstall(ctx context.Context, spec *deploy.Spec) error {
	k, err := kubeOf(spec)
	if err != nil {
		return err
	}
	cfg, ns, err := h.config(k)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = helmkube.StatusWatcherStrategy, k.Timeout
	if _, err := un.Run(k.Release); err != nil {
		if errors.Is(err, driver.ErrReleaseNotFound) {
			return fmt.Errorf("uninstall %s in %s: %w", k.Release, ns, ErrNoRelease)
		}
		return fmt.Errorf("uninstall %s in %s: %w", k.Release, ns, err)
	}
	return nil
}

func kubeOf(spec *deploy.Spec) (*deploy.Kubernetes, error) {
	if spec == nil || spec.Kubernetes == nil {
		return nil, errors.New("the deploy file has no kubernetes section")
	}
	k := *spec.Kubernetes
	if k.Release == "" {
		k.Release = spec.Service.Name
	}
	if k.ImagePath == "" {
		k.ImagePath = deploy.DefaultImagePath
	}
	if k.Timeout <= 0 {
		k.Timeout = deploy.DefaultKubeTimeout
	}
	if k.Chart == "" {
		return nil, errors.New("kubernetes has no chart")
	}
	return &k, nil
}

// exists reports whether the release has revisions, and whether the last one is an
// uninstall kept in history (then an install replaces it).
func exists(cfg *action.Configuration, name string) (installed, uninstalled bool, err error) {
	rels, err := history(cfg, name)
	if errors.Is(err, ErrNoRelease) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if rels[0].Info.Status == rcommon.StatusUninstalled {
		return false, true, nil
	}
	return true, false, nil
}

// recoverPending marks failed a last revision left pending (install, upgrade or
// rollback) by a deploy that was killed, so the next one can go on (helm refuses
// while one is pending). Only one older than timeout is taken over: helm's own wait
// would have ended by then, and the deploy lock keeps a live deploy from racing.
func recoverPending(cfg *action.Configuration, name string, timeout time.Duration) error {
	rels, err := history(cfg, name)
	if errors.Is(err, ErrNoRelease) {
		return nil
	}
	if err != nil {
		return err
	}
	last := rels[0]
	if !last.Info.Status.IsPending() {
		return nil
	}
	since := last.Info.LastDeployed
	if age := time.Since(since); age < timeout {
		return fmt.Errorf("revision %d is %s since %s: another deploy is running, or one was killed less than the timeout (%s) ago; retry after that",
			last.Version, last.Info.Status, since.UTC().Format(time.RFC3339), timeout)
	}
	last.SetStatus(rcommon.StatusFailed, fmt.Sprintf("interrupted: left %s by a deploy that did not finish", last.Info.Status))
	return cfg.Releases.Update(last)
}

// history answers the release's revisions, newest first.
func history(cfg *action.Configuration, name string) ([]*release.Release, error) {
	list, err := action.NewHistory(cfg).Run(name)
	if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(list) == 0) {
		return nil, ErrNoRelease
	}
	if err != nil {
		return nil, err
	}
	out := make([]*release.Release, 0, len(list))
	for _, l := range list {
		r, err := toV1(l)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

func latest(cfg *action.Configuration, name string) (deploy.ReleaseRevision, error) {
	rels, err := history(cfg, name)
	if err != nil {
		return deploy.ReleaseRevision{}, err
	}
	return revisionOf(rels[0]), nil
}

func toV1(r ri.Releaser) (*release.Release, error) {
	switch v := r.(type) {
	case *release.Release:
		if v == nil || v.Info == nil {
			return nil, errors.New("helm answered an empty release")
		}
		return v, nil
	case release.Release:
		return toV1(&v)
	default:
		return nil, fmt.Errorf("helm answered a release of type %T", r)
	}
}

func revisionOf(r *release.Release) deploy.ReleaseRevision {
	out := deploy.ReleaseRevision{Revision: r.Version, Status: r.Info.Status.String(), Updated: r.Info.LastDeployed, Description: r.Info.Description}
	if r.Chart != nil && r.Chart.Metadata != nil {
		out.Chart = chartLabel(r.Chart)
		out.AppVersion = r.Chart.Metadata.AppVersion
	}
	return out
}

func chartLabel(c *chart.Chart) string { return c.Metadata.Name + "-" + c.Metadata.Version }
