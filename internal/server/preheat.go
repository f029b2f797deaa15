package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/webhook"
)

// pullMinter issues the registry tokens Dragonfly preheats pull with
// (webhook.PullMinter, docs/webhooks.md "Dragonfly preheat"). The token is an ordinary
// registry token of the token service's keys, so the registry verifies it as any
// other: by signature and its access claim alone. Its subject, webhook:ID, names no
// account (account names cannot hold a colon), so the hub API sees an anonymous
// caller in it, and it carries no hub claims.
type pullMinter struct {
	issuer *token.Issuer
	store  interface {
		UserByID(ctx context.Context, id int64) (accounts.User, error)
		Audit(ctx context.Context, e accounts.AuditEntry) error
	}
	policy *authz.Policy
}

// newPullMinter returns the minter of a hub with token auth; nil without auth (the
// registry is open, a preheat needs no credentials).
func newPullMinter(cfg config.Config, ap *authParts, store metaStore) *pullMinter {
	if ap == nil {
		return nil
	}
	return &pullMinter{
		issuer: &token.Issuer{Keys: ap.keys, Issuer: cfg.Auth.Issuer, Service: cfg.Auth.Service, TTL: webhook.PullTokenTTL},
		store:  store,
		policy: ap.policy,
	}
}

// MintPull issues a token granting pull on repository only, for hook h, when h's
// creator may pull repository now, and audits it (never the token itself).
func (m *pullMinter) MintPull(ctx context.Context, h webhook.Hook, repository string) (webhook.PullToken, error) {
	u, err := m.store.UserByID(ctx, h.CreatedBy)
	if errors.Is(err, accounts.ErrNotFound) {
		return webhook.PullToken{}, fmt.Errorf("%w: its creator's account is gone", webhook.ErrMintRefused)
	}
	if err != nil {
		return webhook.PullToken{}, err
	}
	if u.Disabled {
		return webhook.PullToken{}, fmt.Errorf("%w: %s is disabled", webhook.ErrMintRefused, u.Name)
	}
	ok, err := m.policy.MayPull(ctx, u, repository)
	if err != nil {
		return webhook.PullToken{}, err
	}
	if !ok {
		return webhook.PullToken{}, fmt.Errorf("%w: %s may not pull %s", webhook.ErrMintRefused, u.Name, repository)
	}
	subject := "webhook:" + h.ID
	t, err := m.issuer.Issue(subject, token.Hub{}, []scope.Access{{Type: scope.TypeRepository, Name: repository, Actions: []string{scope.Pull}}})
	if err != nil {
		return webhook.PullToken{}, err
	}
	exp := t.IssuedAt.Add(webhook.PullTokenTTL)
	// No audit, no token: a credential the hub handed out must be traceable.
	if err := m.store.Audit(ctx, accounts.AuditEntry{Time: t.IssuedAt, Actor: subject, Action: "webhook.pull_token", Target: repository,
		Detail: fmt.Sprintf("Dragonfly preheat of webhook %s (created by %s): pull token jti %s until %s", h.ID, u.Name, t.ID,
			exp.UTC().Format("2006-01-02T15:04:05Z"))}); err != nil {
		return webhook.PullToken{}, fmt.Errorf("audit the pull token: %w", err)
	}
	return webhook.PullToken{Raw: t.Raw, ID: t.ID, ExpiresAt: exp}, nil
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
