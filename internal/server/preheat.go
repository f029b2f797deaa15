package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/webhook"
)

// pullMinter issues the registry tokens Dragonfly preheats pull with
// (webhook.PullMinter, docs/webhooks.md "Dragonfly preheat"): machine tokens
// (internal/auth/machinetoken) of subject webhook:ID, asking pull on the pushed
// repository for the hook's creator, for webhook.PullTokenTTL.
type pullMinter struct {
	m *machinetoken.Minter
}

// newMachineMinter returns the hub's one minter of machine tokens (Dragonfly preheats,
// workflow jobs' $HUBCTL_TOKEN); nil without token auth (the registry is open, and
// nothing needs credentials).
func newMachineMinter(cfg config.Config, ap *authParts, store metaStore) *machinetoken.Minter {
	if ap == nil {
		return nil
	}
	return &machinetoken.Minter{Keys: ap.keys, Issuer: cfg.Auth.Issuer, Service: cfg.Auth.Service, Store: store, Policy: ap.policy}
}

// newPullMinter returns the preheat minter of a hub with token auth; nil without auth.
func newPullMinter(cfg config.Config, ap *authParts, store metaStore) *pullMinter {
	m := newMachineMinter(cfg, ap, store)
	if m == nil {
		return nil
	}
	return &pullMinter{m: m}
}

// MintPull issues a token granting pull on repository only, for hook h, when h's
// creator may pull repository now; the machine-token minter audits it.
func (m *pullMinter) MintPull(ctx context.Context, h webhook.Hook, repository string) (webhook.PullToken, error) {
	t, err := m.m.Mint(ctx, machinetoken.Request{Creator: h.CreatedBy, Subject: "webhook:" + h.ID, TTL: webhook.PullTokenTTL,
		Access:  []scope.Access{{Type: scope.TypeRepository, Name: repository, Actions: []string{scope.Pull}}},
		Purpose: "Dragonfly preheat of webhook " + h.ID})
	if errors.Is(err, machinetoken.ErrRefused) {
		return webhook.PullToken{}, fmt.Errorf("%w (%w)", webhook.ErrMintRefused, err)
	}
	if err != nil {
		return webhook.PullToken{}, err
	}
	return webhook.PullToken{Raw: t.Raw, ID: t.ID, ExpiresAt: t.ExpiresAt}, nil
}

// registryURL is the hub's address as a Dragonfly manager reaches it: external_url,
// or else the listening address when it names one host (not 0.0.0.0 or ::), or "" and
// preheat deliveries say to set external_url.
func registryURL(cfg config.Config, addr net.Addr, tls bool) string {
	if cfg.ExternalURL != "" {
		return strings.TrimSuffix(cfg.ExternalURL, "/")
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
		return ""
	}
	if tls {
		return "https://" + tcp.String()
	}
	return "http://" + tcp.String()
}
