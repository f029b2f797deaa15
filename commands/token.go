package commands

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/spf13/cobra"
)

// NewCmdToken returns `hubctl token`, the access tokens of the signed-in user.
func NewCmdToken(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage your access tokens on a hubctl registry",
		Long: `Create, list and revoke access tokens on a registry run by 'hubctl serve'.

An access token (hub_…) is used as a password: with 'docker login -u NAME --password-stdin',
in CI, or as a Bearer token for the hub API. It is limited to its scopes and to what its
owner may do. Tokens cannot create tokens: create them after 'hubctl login' with a password.`,
		Args: unknownCommand,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(NewCmdTokenCreate(f, nil), NewCmdTokenList(f, nil), NewCmdTokenRevoke(f, nil))
	return cmd
}

// TokenCreateOptions are the inputs of `hubctl token create`.
type TokenCreateOptions struct {
	Hub     HubOptions
	Name    string
	Scopes  []string
	Expires string
	// Expiry is Expires parsed; zero means never.
	Expiry expiry
}

// NewCmdTokenCreate returns `hubctl token create`.
func NewCmdTokenCreate(f *Factory, runF func(*TokenCreateOptions) error) *cobra.Command {
	opts := &TokenCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create NAME --scope SCOPE...",
		Short: "Create an access token",
		Long: `Create an access token and print its secret on stdout. The secret is shown only
once: the registry keeps only its hash.

Scopes are those of the Docker token spec, with wildcards in repository names:
  repository:team/app:pull,push   pull and push one repository
  repository:team/*:pull          pull every repository under team/
  repository:*:pull               pull everything the owner may pull
  registry:catalog:*              list repositories (site admins)

Reading the hub API beyond your own account, tokens and repositories takes a hub scope
(and still only what you may read with your password):
  hub:accounts:read   other users (GET /users, /users/NAME)
  hub:orgs:read       organisations
  hub:teams:read      teams, their members and grants
  hub:audit:read      the audit log (site admins)
  hub:quotas:read     namespace usage and quotas
  hub:events:read     events of the repositories the token may pull
  hub:webhooks:read   the webhooks its owner manages
  hub:*:read          all of the reads
  hub:webhooks:write  create and delete those webhooks
  hub:workflows:read   workflows, runs and logs
  hub:workflows:write  apply and delete workflows, run, cancel and rerun them
  hub:workflows:run    run, approve (a named approver), cancel and rerun; never apply
  hub:deploys:read     deploy history of services
  hub:deploys:write    deploy: take the lock, record outcomes, break locks, mint
                       pull tokens, read the namespace's secrets
Changing accounts, organisations, teams, grants and quotas needs a password login.`,
		Example: `  hubctl token create ci --scope repository:team/app:pull,push --expires 90d --registry hub.example.com
  hubctl token create reader --scope 'repository:team/*:pull' -o json
  hubctl token create auditor --scope hub:audit:read --expires 30d`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.Name = args[0]
		var err error
		opts.Expiry, err = scopedExpiry(cmd, opts.Scopes, opts.Expires)
		return err
	}, func() error {
		if runF != nil {
			return runF(opts)
		}
		return tokenCreateRun(cmd.Context(), opts)
	})
	cmd.Flags().StringArrayVar(&opts.Scopes, "scope", nil, "Token `scope`, e.g. repository:team/app:pull,push (repeatable)")
	cmd.Flags().StringVar(&opts.Expires, "expires", "never", "Lifetime in days or hours (`Nd|Nh`, e.g. 30d, 12h) or never")
	_ = cmd.RegisterFlagCompletionFunc("expires", cobra.FixedCompletions([]string{"never", "12h", "7d", "30d", "90d", "365d"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// expiryRe is compiled on first use, as every regexp on the CLI's start path is.
var expiryRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]{1,5})([dh])$`) })

// expiry is a token lifetime as the API takes it: days or hours, both 0 for never.
type expiry struct{ days, hours int }

// scopedExpiry checks the flags of a credential that is created with scopes: at least
// one --scope, and an --expires parseExpiry takes.
func scopedExpiry(cmd *cobra.Command, scopes []string, expires string) (expiry, error) {
	if len(scopes) == 0 {
		return expiry{}, usageErrorf(cmd, "at least one --scope is required")
	}
	e, err := parseExpiry(expires)
	if err != nil {
		return expiry{}, usageErrorf(cmd, "%v", err)
	}
	return e, nil
}

// parseExpiry reads a token lifetime: "never" (or "0"), a number of days like "30d" or
// of hours like "12h".
func parseExpiry(s string) (expiry, error) {
	switch s {
	case "", "never", "0":
		return expiry{}, nil
	}
	m := expiryRe().FindStringSubmatch(s)
	if m == nil {
		return expiry{}, fmt.Errorf("invalid --expires %q: want days like 30d, hours like 12h, or never", s)
	}
	n, _ := strconv.Atoi(m[1])
	if n == 0 {
		return expiry{}, fmt.Errorf("invalid --expires %q: a lifetime of 0 is never; say never", s)
	}
	if m[2] == "h" {
		return expiry{hours: n}, nil
	}
	return expiry{days: n}, nil
}

// expiryChecked says whether the registry honoured a lifetime: a server that predates
// expires_in_hours ignores it and creates a token that never expires.
func expiryChecked(e expiry, expiresAt string) bool {
	return e == (expiry{}) || expiresAt != ""
}

func tokenCreateRun(ctx context.Context, opts *TokenCreateOptions) error {
	c, err := opts.Hub.client()
	if err != nil {
		return err
	}
	tok, err := c.CreateToken(ctx, hubtypes.CreateTokenRequest{Name: opts.Name, Scopes: opts.Scopes,
		ExpiresInDays: opts.Expiry.days, ExpiresInHours: opts.Expiry.hours})
	if err != nil {
		return fmt.Errorf("create token %s: %w", opts.Name, err)
	}
	if !expiryChecked(opts.Expiry, tok.ExpiresAt) {
		// Never hand out a token that outlives what was asked for.
		if err := c.RevokeToken(ctx, tok.Name); err != nil {
			return fmt.Errorf("create token %s: %s ignored --expires %s and the token could not be revoked (%v): revoke it with 'hubctl token revoke %s'", opts.Name, opts.Hub.Registry, opts.Expires, err, tok.Name)
		}
		return fmt.Errorf("create token %s: %s does not take --expires in hours; the token it made was revoked: give days, like 1d", opts.Name, opts.Hub.Registry)
	}
	fmt.Fprintf(opts.Hub.IO.ErrOut, "Token %s created. Copy it now: it is shown only once.\n", tok.Name)
	if opts.Hub.Output == "json" {
		return printJSON(opts.Hub.IO.Out, tok)
	}
	_, err = fmt.Fprintln(opts.Hub.IO.Out, tok.Token)
	return err
}

// TokenListOptions are the inputs of `hubctl token ls`.
type TokenListOptions struct {
	Hub HubOptions
}

// NewCmdTokenList returns `hubctl token ls`.
func NewCmdTokenList(f *Factory, runF func(*TokenListOptions) error) *cobra.Command {
	opts := &TokenListOptions{}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List your access tokens",
		Long:    "List your access tokens, revoked and expired ones included. Secrets are never shown.",
		Args:    checkArgs(cobra.NoArgs),
	}
	hubCommand(f, cmd, &opts.Hub, nil, func() error {
		if runF != nil {
			return runF(opts)
		}
		return tokenListRun(cmd.Context(), opts)
	})
	return cmd
}

func tokenListRun(ctx context.Context, opts *TokenListOptions) error {
	c, err := opts.Hub.client()
	if err != nil {
		return err
	}
	toks, err := c.ListTokens(ctx)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	return opts.Hub.print(toks, []string{"NAME", "SCOPES", "EXPIRES", "LAST USED", "STATUS"}, func(row func(...string)) {
		for _, t := range toks {
			status := "active"
			switch {
			case t.RevokedAt != "":
				status = "revoked"
			case !t.Active:
				status = "expired"
			}
			row(t.Name, strings.Join(t.Scopes, " "), orDash(t.ExpiresAt, "never"), orDash(t.LastUsedAt, "-"), status)
		}
	})
}

// TokenRevokeOptions are the inputs of `hubctl token revoke`.
type TokenRevokeOptions struct {
	Hub  HubOptions
	Name string
}

// NewCmdTokenRevoke returns `hubctl token revoke`.
func NewCmdTokenRevoke(f *Factory, runF func(*TokenRevokeOptions) error) *cobra.Command {
	opts := &TokenRevokeOptions{}
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke one of your access tokens",
		Long: `Revoke an access token: it stops working for new registry logins at once. Registry
tokens already issued with it live out their few minutes.`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error { opts.Name = args[0]; return nil }, func() error {
		if runF != nil {
			return runF(opts)
		}
		return tokenRevokeRun(cmd.Context(), opts)
	})
	return cmd
}

func tokenRevokeRun(ctx context.Context, opts *TokenRevokeOptions) error {
	c, err := opts.Hub.client()
	if err != nil {
		return err
	}
	if err := c.RevokeToken(ctx, opts.Name); err != nil {
		var he *hubclient.Error
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			return fmt.Errorf("revoke token %s: you have no active token of that name ('hubctl token ls --registry %s' lists them)", opts.Name, opts.Hub.Registry)
		}
		return fmt.Errorf("revoke token %s: %w", opts.Name, err)
	}
	fmt.Fprintf(opts.Hub.IO.ErrOut, "Token %s revoked\n", opts.Name)
	return nil
}

// orDash returns s, or alt when s is empty, for table cells.
func orDash(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
