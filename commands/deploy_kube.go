package commands

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hubctl/hubctl/internal/charts/chartclient"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/kube"
	"github.com/hubctl/hubctl/internal/safetext"
)

// deployRelease is the Kubernetes target of a spec: the one place that picks it. The
// chart comes with the credentials and trust `hubctl chart pull` uses: oci:// charts
// through the transfer engine, classic repositories over an HTTP client trusting
// hubctl's CAs with the login stored for their host.
func deployRelease(f *Factory, o *DeployOptions, s *deploy.Spec) (deploy.Release, error) {
	var hosts []string
	if s.Kubernetes != nil {
		hosts = chartHosts([]string{s.Kubernetes.Chart})
	}
	engine, err := newEngine(f, o.Insecure, hosts...)
	if err != nil {
		return nil, err
	}
	dir, _ := f.LookupEnv("DOCKER_CONFIG")
	store, err := credentials.Load(dir)
	if err != nil {
		return nil, err
	}
	tr := f.Trust().Transport(http.DefaultTransport.(*http.Transport).Clone())
	return kube.New(kube.Options{
		Charts:          &chartclient.Client{Engine: engine},
		HTTPClient:      &http.Client{Timeout: 2 * time.Minute, Transport: tr},
		RepoCredentials: credentials.JobTokenFromEnv(store, f.LookupEnv),
	}), nil
}

// deployKube runs a Kubernetes spec through its Release: --dry-run prints the diff
// of the manifests; otherwise the deploy is recorded (hub or state file, under the
// service's lock) and helm upgrades the release, rolling it back when the new
// revision never becomes ready.
func deployKube(ctx context.Context, f *Factory, o *DeployOptions, s *deploy.Spec, src string) error {
	rel, err := deployRelease(f, o, s)
	if err != nil {
		return err
	}
	hub, err := openDeployHub(f, o, s)
	if err != nil {
		return err
	}
	// The cluster is reached (kubeconfig, credentials, helm's release store) before
	// anything is resolved or recorded: a bad kubeconfig leaves no history.
	if _, err := rel.History(ctx, s); err != nil && !errors.Is(err, kube.ErrNoRelease) {
		return err
	}
	digests, err := resolveDigests(ctx, f, o, s)
	if err != nil {
		return err
	}
	image := digests[deploy.DigestKey]
	if o.DryRun {
		diff, err := rel.Plan(ctx, s, image)
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(o.IO.Out, diff)
		return err
	}
	var locks []deploy.HostLock
	if hub == nil {
		if locks, err = kubeLocks(s); err != nil {
			return err
		}
	}
	hist, err := deployHistory(o, hub, locks)
	if err != nil {
		return err
	}
	holder := deployHolder()
	rec, err := hist.Begin(ctx, deploy.Record{Service: s.Service.Name, SpecYAML: src, Digests: digests,
		Target: "kubernetes", By: holder.By, Started: time.Now(), Outcome: deploy.OutcomeRunning}, holder)
	if err != nil {
		return err
	}
	stop := renewEvery(ctx, deploy.LockRenew, o.IO.ErrOut, func(ctx context.Context) error {
		return hist.Renew(ctx, s.Service.Name, rec.Number)
	})
	rev, upErr := rel.Upgrade(ctx, s, image)
	stop()
	outcome, msg := deploy.OutcomeSucceeded, ""
	switch {
	case errors.Is(upErr, kube.ErrRolledBack):
		outcome, msg = deploy.OutcomeRolledBack, upErr.Error()
	case upErr != nil:
		outcome, msg = deploy.OutcomeFailed, upErr.Error()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := hist.Finish(fctx, s.Service.Name, rec.Number, outcome, msg); err != nil {
		return errors.Join(upErr, fmt.Errorf("record the outcome of deploy %d: %w", rec.Number, err))
	}
	if upErr != nil {
		return fmt.Errorf("deploy %d of %s %s: %w", rec.Number, s.Service.Name, outcome, upErr)
	}
	fmt.Fprintf(o.IO.Out, "%s: deploy %d: revision %d %s\n", safetext.Escape(s.Service.Name), rec.Number, rev.Revision, safetext.Escape(rev.Status))
	return nil
}
