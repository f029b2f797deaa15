package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/deploy/dockerhost"
	"github.com/hubctl/hubctl/internal/deploy/proxyimage"
	"github.com/hubctl/hubctl/internal/transfer"
)

// builtProxyImage is the proxy image hubctl builds from its own binary when it is
// given none, and the local name it loads it into each engine under.
type builtProxyImage struct {
	img  *proxyimage.Image
	name string
}

// buildProxyImage builds the proxy image from this hubctl's executable. The local
// name carries the config's digest (the image ID), so two hubctl binaries sharing an
// engine never move each other's tag.
func buildProxyImage(ctx context.Context, f *Factory) (*builtProxyImage, error) {
	img, err := proxyimage.Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("no proxy image given, and building one from this hubctl failed (give --proxy-image or set $%s): %w", proxyImageEnv, err)
	}
	name := fmt.Sprintf("%s:%s-%s", proxyimage.Repository, proxyimage.Tag(f.Build.Version), img.ConfigDesc.Digest.Encoded()[:12])
	return &builtProxyImage{img: img, name: name}, nil
}

// load puts the image into every host's engine (an engine that has it already only
// gets the tag).
func (b *builtProxyImage) load(ctx context.Context, hosts []*dockerhost.Host) error {
	for _, h := range hosts {
		if _, err := proxyimage.Load(ctx, b.img, h.API(), b.name); err != nil {
			return fmt.Errorf("host %s: %w", h.Name(), err)
		}
	}
	return nil
}

// push puts the image in the hub as <hub>/<namespace>/hubctl-proxy:<version> (only
// the blobs the hub lacks are sent) and answers it pinned by digest: each host then
// pulls it like a task's image, with the deploy's pull token.
func (b *builtProxyImage) push(ctx context.Context, f *Factory, o *DeployOptions, hub *deployHub) (string, error) {
	ref, err := proxyimage.Reference(hub.host, hub.hist.Namespace(), f.Build.Version)
	if err != nil {
		return "", err
	}
	e, err := newEngine(f, o.Insecure, ref)
	if err != nil {
		return "", err
	}
	res, err := proxyimage.Push(ctx, b.img, e, ref, transfer.Options{})
	if err != nil {
		return "", err
	}
	repo := ref[:strings.LastIndex(ref, ":")]
	return repo + "@" + res.Digest.String(), nil
}
