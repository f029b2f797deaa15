package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/auth/tokenserver"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/charts/chartrepo"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/registry"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
)

// AdminUser is the account created at first start.
const AdminUser = "admin"

// authParts is what token auth adds to the server.
type authParts struct {
	tokens   *tokenserver.Server
	api      http.Handler
	registry *registry.Auth
	verifier *token.Verifier
	policy   *authz.Policy
	keys     *token.KeySet
	charts   *chartrepo.Auth
	// guard is the one failed-login limit of /token, the hub API and the web UI.
	guard *ratelimit.Guard
}

// setupAuth loads (or creates) the signing keys, creates the admin account at first
// start and builds the token service and the registry's token check. It returns nil
// parts with --auth=none.
func setupAuth(ctx context.Context, cfg config.Config, store metaStore, blobs blobstore.Store, keyring *secrets.Keyring, deliverer *webhook.Deliverer,
	tagRules hubapi.TagRules, log *slog.Logger, stderr io.Writer) (*authParts, error) {
	if err := ensureAdmin(ctx, store, cfg, stderr); err != nil {
		return nil, err
	}
	if cfg.Auth.Mode == "none" {
		log.Warn("auth is off (--auth=none): anyone who reaches this server may push, pull and delete")
		return nil, nil
	}
	keys, err := token.LoadOrCreateKeySet(cfg.Auth.KeysDir)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	verifier := &token.Verifier{Keys: keys, Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Service}
	policy := &authz.Policy{Store: store}
	// One login guard for /token and the hub API: a guess counts wherever it is made.
	addressFailures := cfg.Auth.MaxAddressLoginFailures
	if addressFailures == 0 {
		addressFailures = -1 // off
	}
	accountFailures := cfg.Auth.MaxAccountLoginFailures
	if accountFailures == 0 {
		accountFailures = -1 // off
	}
	// The counters live in the database, so replicas count together (issue 16).
	window := cfg.Auth.LoginFailureWindow
	guard := ratelimit.NewGuard(ratelimit.GuardOptions{
		MaxFailures:        cfg.Auth.MaxLoginFailures,
		MaxAddressFailures: addressFailures,
		MaxAccountFailures: accountFailures,
		Window:             window,
		Accounts:           store.LoginFailures("pair", cfg.Auth.MaxLoginFailures, window),
		Addresses:          store.LoginFailures("addr", max(cfg.Auth.MaxAddressLoginFailures, 1), window),
		Users:              store.LoginFailures("user", max(cfg.Auth.MaxAccountLoginFailures, 1), window),
		Known:              store.KnownLogins(max(cfg.Auth.RefreshTTL, ratelimit.DefaultKnownFor)),
	})
	realm := ""
	if cfg.ExternalURL != "" {
		realm = strings.TrimSuffix(cfg.ExternalURL, "/") + "/token"
	}
	p := &authParts{
		verifier: verifier,
		policy:   policy,
		keys:     keys,
		guard:    guard,
		tokens: &tokenserver.Server{
			Accounts:   store,
			Policy:     policy,
			Access:     &token.Issuer{Keys: keys, Issuer: cfg.Auth.Issuer, Service: cfg.Auth.Service, TTL: cfg.Auth.TokenTTL},
			RefreshTTL: cfg.Auth.RefreshTTL,
			Keys:       keys,
			Log:        log,
			Guard:      guard,
			JobActive:  jobTokenActive(store),
		},
		registry: &registry.Auth{
			Service:   cfg.Auth.Service,
			Realm:     realm,
			Anonymous: authz.Anonymous,
			Verify: func(raw string) (registry.Token, error) {
				c, err := verifier.Verify(raw)
				if err != nil {
					return registry.Token{}, err
				}
				named, patterns := registry.MachinePatterns(c.Subject, c.Access)
				return registry.Token{Subject: c.Subject, Access: named, Patterns: patterns, ExpiresAt: c.ExpiresAt}, nil
			},
			// The catalog lists to each caller what it may pull (issue 13).
			Catalog: func(ctx context.Context, raw string) (metadata.CatalogFilter, error) {
				c, err := verifier.Verify(raw)
				if err != nil {
					return metadata.CatalogFilter{}, err
				}
				p, err := authz.PrincipalOf(ctx, store, c.Subject, c.Hub, time.Now())
				if err != nil {
					return metadata.CatalogFilter{}, err
				}
				return policy.CatalogFilter(p), nil
			},
		},
	}
	apiOpts := hubapi.Options{
		Accounts:     store,
		Repositories: store,
		Events:       store,
		Search:       store,
		Webhooks:     store,
		Workflows:    store,
		Deploys:      store,
		Tags:         store,
		TagRules:     tagRules,
		Minter:       newMachineMinter(cfg, p, store),
		Blobs:        blobs,
		Keyring:      keyring,
		Deliverer:    deliverer,
		Policy:       policy,
		Log:          log,
		Guard:        guard,
		VerifyJWT: func(raw string) (string, token.Hub, error) {
			c, err := verifier.Verify(raw)
			if err != nil {
				return "", token.Hub{}, err
			}
			return c.Subject, c.Hub, nil
		},
	}
	apiOpts.CheckWorkflow = workflowCheck(cfg)
	apiOpts.JobActive = jobTokenActive(store)
	apiOpts.JobArtifacts = artifactOptions(cfg.Workflows, store, blobs)
	apiOpts.Rates = func(kind string, max int, window time.Duration) ratelimit.Rates {
		return store.ActionRates(kind, max, window)
	}
	p.api = hubapi.New(apiOpts)
	// The chart repository signs in as the API does and issues registry tokens as the
	// token service does, so its uploads meet the registry's own checks.
	p.charts = &chartrepo.Auth{
		Principal: hubapi.NewAuthenticator(apiOpts).Principal,
		Policy:    policy,
		Issuer:    p.tokens.Access,
	}
	return p, nil
}

// ensureAdmin makes the bootstrap admin account on a database that never had one, with
// password pw (from HUBCTL_ADMIN_PASSWORD) or a generated one printed once on stderr
// (never logged). It happens once per database: an admin account deleted later is not
// made again, and a user who took its name cannot stop the server from starting. When
// the variable is set but not used, it says so on stderr: the variable only seeds the
// first start.
func ensureAdmin(ctx context.Context, store accounts.Store, cfg config.Config, stderr io.Writer) error {
	pw := cfg.Auth.AdminPassword
	// The usual start: the admin exists, so spare the password hash.
	if _, err := store.GetUser(ctx, AdminUser); err == nil {
		if pw != "" {
			fmt.Fprintf(stderr, "%s is ignored: the %s account already exists in %s (the variable sets its password only at the first start); to change it: %s\n",
				config.EnvAdminPassword, AdminUser, databaseName(cfg), ResetPasswordHint(cfg, AdminUser))
		}
		return nil
	} else if !errors.Is(err, accounts.ErrNotFound) {
		return fmt.Errorf("look up the admin account: %w", err)
	}
	generated := false
	if pw == "" {
		var err error
		if pw, err = password.RandomSecret(""); err != nil {
			return err
		}
		generated = true
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return err
	}
	_, created, err := store.BootstrapAdmin(ctx, accounts.User{Name: AdminUser, PasswordHash: hash, Admin: true})
	if err != nil {
		return fmt.Errorf("create the admin account: %w", err)
	}
	switch {
	case !created && !generated:
		fmt.Fprintf(stderr, "%s is ignored: the bootstrap %s account was made on this database before and has been deleted since; it is not made again\n",
			config.EnvAdminPassword, AdminUser)
	case !created:
	case generated:
		fmt.Fprintf(stderr, "created the %s account with password %s\n(shown once: store it, or set %s before the first start)\n", AdminUser, pw, config.EnvAdminPassword)
	default:
		fmt.Fprintf(stderr, "created the %s account with the password from %s\n", AdminUser, config.EnvAdminPassword)
	}
	return nil
}

// ResetPasswordHint is the command that resets user's password on this host with the
// configuration cfg, as serve reads it: a PostgreSQL URL (which may hold a password) is
// left to --config or HUBCTL_DB_PATH rather than spelt out.
func ResetPasswordHint(cfg config.Config, user string) string {
	cmd := "hubctl admin reset-password " + user
	if cfg.DB.Driver == "postgres" {
		return cmd + " (with the --config or HUBCTL_* settings serve uses)"
	}
	return cmd + " --data " + cfg.Data
}

// keyReloadInterval is how soon a rotation by `hubctl keys` reaches a running server.
const keyReloadInterval = time.Minute

// reloadKeys re-reads the key directory every interval until ctx ends.
func reloadKeys(ctx context.Context, log *slog.Logger, keys *token.KeySet, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			before := keys.SigningKeyID()
			if err := keys.Reload(); err != nil {
				log.Warn("reload token signing keys", "error", err)
			} else if after := keys.SigningKeyID(); after != before {
				log.Info("token signing key changed", "kid", after)
			}
		}
	}
}

// warnHostRealm warns when the token realm will follow each request's Host header on
// a listener others can reach: without external_url the challenge sends clients (and
// the passwords they log in with) to whatever host the request named, so a proxy or
// cache that passes or mixes up Host can point clients at another server. On loopback
// only this machine's clients see it, which is what tests and laptops need.
func warnHostRealm(log *slog.Logger, cfg config.Config, addr net.Addr) {
	if cfg.Auth.Mode == "none" || cfg.ExternalURL != "" {
		return
	}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return
	}
	log.Warn("serving on a non-loopback address without --external-url: the token realm follows each request's Host header; set --external-url (external_url) to the URL clients use",
		"addr", addr.String())
}
