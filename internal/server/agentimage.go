package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"runtime/debug"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/agentimage"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/selfimage"
	"github.com/hubctl/hubctl/layering"
)

// agentBinary, when set (by tests, whose executable is not hubctl), is the hubctl
// executable the agent image is built from instead of serve's own.
var agentBinary string

// agentImageStore is what publishing the agent image needs of the store.
type agentImageStore interface {
	agentimage.Store
	GetNamespace(ctx context.Context, name string) (accounts.Namespace, error)
}

// agentImageCacheDir is where, under the data directory, the agent image's layer is
// kept between starts (so a restart neither compresses nor hashes the binary again).
const agentImageCacheDir = "agent-image-cache"

// agentImage returns the image the Kubernetes executor moves artifacts with: the
// operator's workflows.kube.agent_image, or else, with the kubernetes executor, the
// image of serve's own binary published into this hub's stores (agentimage.Publish),
// pinned by digest on the host of external_url. It returns "" (artifacts are then
// refused on Kubernetes, as before) after one warning saying why, when the hub has
// no external URL its jobs' pods could pull from, its binary cannot run FROM scratch,
// or the stores refuse the image.
func agentImage(ctx context.Context, cfg config.Config, st agentImageStore, blobs blobstore.Store, log *slog.Logger) string {
	if cfg.Workflows.Executor != config.WorkflowExecutorKubernetes || cfg.Workflows.Kube.AgentImage != "" {
		return cfg.Workflows.Kube.AgentImage
	}
	log = log.With("component", "workflows")
	const off = "jobs with artifacts are refused on Kubernetes"
	if cfg.ExternalURL == "" {
		log.Warn("workflows: no agent image: set external_url (the hub then publishes its own agent image, which pods pull from that host) or workflows.kube.agent_image; until then " + off)
		return ""
	}
	if ns, err := st.GetNamespace(ctx, accounts.SystemNamespace); err == nil {
		log.Warn("workflows: no agent image: an account took the name the hub keeps its own images under before it was reserved; rename it, or set workflows.kube.agent_image; until then "+off,
			"namespace", ns.Name)
		return ""
	} else if !errors.Is(err, accounts.ErrNotFound) {
		log.Warn("workflows: no agent image: "+off, "err", err)
		return ""
	}
	cache, err := layering.OpenCache(filepath.Join(cfg.Data, agentImageCacheDir))
	if err != nil {
		log.Warn("workflows: no agent image: "+off, "err", err)
		return ""
	}
	opts := []selfimage.Option{selfimage.WithCache(cache)}
	if agentBinary != "" {
		opts = append(opts, selfimage.WithBinary(agentBinary))
	}
	img, err := agentimage.Build(ctx, opts...)
	if err != nil {
		log.Warn("workflows: no agent image: this hubctl cannot be one (set workflows.kube.agent_image, or run a static release binary); until then "+off, "err", err)
		return ""
	}
	ref, err := agentimage.Reference(cfg.ExternalURL, img.Desc.Digest)
	if err != nil {
		log.Warn("workflows: no agent image: "+off, "err", err)
		return ""
	}
	pub, err := agentimage.Publish(ctx, st, blobs, img, agentimage.Tag(buildVersion(), img.Desc.Digest), log)
	if err != nil {
		log.Warn("workflows: no agent image: publishing it into the hub failed; "+off, "err", err)
		return ""
	}
	log.Info("workflows: agent image", "image", ref, "tag", pub.Tag, "blobs_written", pub.Blobs, "manifest_written", pub.Manifest)
	return ref
}

// buildVersion is this binary's module version ("(devel)" for a build from a checkout).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return ""
}
