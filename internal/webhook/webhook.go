// Package webhook is the hub's webhooks (issue 18, docs/webhooks.md): what a hook is,
// who owns it, which events it wants, and how its secret and custom headers are sealed
// at rest (internal/secrets). The store keeps hooks in the SQL store
// (internal/metadata/sqlstore/webhooks.go).
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/secrets"
)

// Scopes a hook is owned at.
const (
	// ScopeSite hooks see every repository's events and hub-wide ones; admins only.
	ScopeSite = "site"
	// ScopeNamespace hooks see the events of repositories under Target/.
	ScopeNamespace = "namespace"
	// ScopeRepository hooks see the events of the repository Target.
	ScopeRepository = "repository"
)

// SecretPrefix starts a signing secret, as the Standard Webhooks spec writes them.
const SecretPrefix = "whsec_"

// Table is the hooks' table; the ad of its sealed columns names it.
const Table = "webhooks"

// Errors the store and API branch on.
var (
	ErrNotFound = errors.New("webhook not found")
	ErrInvalid  = errors.New("invalid webhook")
)

// Hook is one webhook as stored. Secret and Headers are sealed envelopes
// (internal/secrets), never plaintext.
type Hook struct {
	ID     string
	Scope  string
	Target string // the namespace or repository; "" for site hooks
	URL    string
	// Events are the event types it wants; empty means all.
	Events []events.Type
	// Repositories and Tags are filters an event's repository and tag must match, one
	// of each list; empty means any. A filter is a glob (path.Match) or, written
	// re:EXPR, an RE2 expression the whole name must match (filter.go).
	Repositories []string
	Tags         []string
	// Format is the body's format: one of Formats (format.go).
	Format string
	// Secret is the sealed signing secret ("whsec_…").
	Secret string
	// PreviousSecret is the sealed secret a rotation replaced, "" when none; deliveries
	// are signed with it too until PreviousExpires (docs/webhooks.md, Rotating the
	// secret).
	PreviousSecret  string
	PreviousExpires time.Time
	// Headers is the sealed JSON object of custom headers; "" when none.
	Headers string
	// HeaderNames are the custom headers' names, shown instead of their values.
	HeaderNames []string
	Enabled     bool
	// DisabledReason says why the hub turned the hook off (410 Gone, too many
	// failures); "" when enabled or turned off by its owner.
	DisabledReason string
	// Failures counts consecutive failed deliveries.
	Failures  int
	CreatedBy int64 // the account id of its creator
	CreatedAt time.Time
	UpdatedAt time.Time
	// EnabledAt is when the hook was last turned on (zero: at creation). Only events
	// after it, and after CreatedAt, are sent to the hook.
	EnabledAt time.Time

	// Kind is KindWebhook (POST the event; "" reads as that) or KindDragonfly (create
	// a Dragonfly preheat job; dragonfly.go).
	Kind string
	// Dragonfly is a dragonfly hook's settings; nil for other kinds.
	Dragonfly *Dragonfly
	// DragonflyToken is the sealed personal access token of the Dragonfly manager; ""
	// when none.
	DragonflyToken string
}

// Wants reports whether an event that happened at t falls in the hook's time: after
// its creation and after it was last turned on, so that events raised while it was
// off are not sent when it is turned on again.
func (h Hook) Wants(t time.Time) bool {
	return !t.Before(h.CreatedAt) && !t.Before(h.EnabledAt)
}

// Namespace is the namespace whose administrators manage the hook; "" for site hooks.
func (h Hook) Namespace() string {
	ns, _, _ := strings.Cut(h.Target, "/")
	return ns
}

// Store keeps hooks.
type Store interface {
	// CreateWebhook stores h (ID, times set by the caller) and audits it as actor.
	CreateWebhook(ctx context.Context, h Hook, actor string) error
	// GetWebhook returns the hook id, or an error wrapping ErrNotFound.
	GetWebhook(ctx context.Context, id string) (Hook, error)
	// ListWebhooks returns the hooks of f, oldest first.
	ListWebhooks(ctx context.Context, f Filter) ([]Hook, error)
	// DeleteWebhook deletes the hook id (and its deliveries) and audits it as actor.
	DeleteWebhook(ctx context.Context, id, actor string) error
	// UpdateWebhook changes the hook id in one transaction: it reads the hook, locked,
	// lets change edit it (its URL, filters, format, secrets, headers and state; never
	// its id, scope, target or creation), writes it back and audits it as actor with
	// the action and detail change returns. A previous secret found expired is dropped.
	UpdateWebhook(ctx context.Context, id, actor string, change func(h *Hook) (action, detail string, err error)) (Hook, error)
	// SetWebhookEnabled turns the hook id on (clearing its failures and the reason the
	// hub turned it off) or off, and audits it as actor.
	SetWebhookEnabled(ctx context.Context, id string, enabled bool, actor string) error
	// UserByID returns the account of id (a hook's creator), or an error wrapping
	// accounts.ErrNotFound once it is deleted.
	UserByID(ctx context.Context, id int64) (accounts.User, error)
}

// Filter selects hooks: Site includes site hooks; Namespaces those owned in these
// namespaces (namespace hooks and the hooks of their repositories); All every hook.
type Filter struct {
	All        bool
	Site       bool
	Namespaces []string
}

// NewSecret makes a signing secret: "whsec_" and the base64 of 32 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// SecretKey is the HMAC key of a secret: the base64-decoded part after "whsec_".
func SecretKey(secret string) ([]byte, error) {
	s, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: a secret starts with %s", ErrInvalid, SecretPrefix)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < 24 || len(b) > 64 {
		return nil, fmt.Errorf("%w: a secret is %s and the base64 of 24 to 64 bytes", ErrInvalid, SecretPrefix)
	}
	return b, nil
}

// Seal seals the secret and headers of h, whose ID must be set, into h.
func Seal(ring *secrets.Keyring, h *Hook, secret string, headers map[string]string) error {
	var err error
	if h.Secret, err = ring.Seal([]byte(secret), secrets.RowAD(Table, h.ID, "secret")); err != nil {
		return err
	}
	return SealHeaders(ring, h, headers)
}

// SealHeaders replaces the custom headers of h, whose ID must be set, with headers
// (none when empty), sealed.
func SealHeaders(ring *secrets.Keyring, h *Hook, headers map[string]string) error {
	h.Headers, h.HeaderNames = "", nil
	if len(headers) > 0 {
		b, err := json.Marshal(headers)
		if err != nil {
			return err
		}
		if h.Headers, err = ring.Seal(b, secrets.RowAD(Table, h.ID, "headers")); err != nil {
			return err
		}
		for k := range headers {
			h.HeaderNames = append(h.HeaderNames, http.CanonicalHeaderKey(k))
		}
		slices.Sort(h.HeaderNames)
	}
	return nil
}

// Open opens the secret and headers sealed in h.
func Open(ring *secrets.Keyring, h Hook) (secret string, headers map[string]string, err error) {
	b, err := ring.Open(h.Secret, secrets.RowAD(Table, h.ID, "secret"))
	if err != nil {
		return "", nil, fmt.Errorf("webhook %s secret: %w", h.ID, err)
	}
	if h.Headers != "" {
		hb, err := ring.Open(h.Headers, secrets.RowAD(Table, h.ID, "headers"))
		if err != nil {
			return "", nil, fmt.Errorf("webhook %s headers: %w", h.ID, err)
		}
		if err := json.Unmarshal(hb, &headers); err != nil {
			return "", nil, fmt.Errorf("webhook %s headers: %w", h.ID, err)
		}
	}
	return string(b), headers, nil
}

// Rotate makes secret the signing secret of h (sealed) and keeps the one it replaces
// as its previous secret until expires, or drops it when expires is not after now. A
// previous secret h still had is dropped either way: a hook signs with two at most.
func Rotate(ring *secrets.Keyring, h *Hook, secret string, now, expires time.Time) error {
	if _, err := SecretKey(secret); err != nil {
		return err
	}
	old, err := ring.Open(h.Secret, secrets.RowAD(Table, h.ID, "secret"))
	if err != nil {
		return fmt.Errorf("webhook %s secret: %w", h.ID, err)
	}
	h.PreviousSecret, h.PreviousExpires = "", time.Time{}
	if expires.After(now) {
		if h.PreviousSecret, err = ring.Seal(old, secrets.RowAD(Table, h.ID, "previous_secret")); err != nil {
			return err
		}
		h.PreviousExpires = expires
	}
	h.Secret, err = ring.Seal([]byte(secret), secrets.RowAD(Table, h.ID, "secret"))
	return err
}

// HasPrevious reports whether h still signs with a previous secret at now.
func (h Hook) HasPrevious(now time.Time) bool {
	return h.PreviousSecret != "" && now.Before(h.PreviousExpires)
}

// OpenSigning opens what a delivery of h at now is signed and sent with: its secrets,
// the current one first and the previous one while it has not expired, and its custom
// headers.
func OpenSigning(ring *secrets.Keyring, h Hook, now time.Time) (keys []string, headers map[string]string, err error) {
	secret, headers, err := Open(ring, h)
	if err != nil {
		return nil, nil, err
	}
	keys = []string{secret}
	if h.HasPrevious(now) {
		b, err := ring.Open(h.PreviousSecret, secrets.RowAD(Table, h.ID, "previous_secret"))
		if err != nil {
			return nil, nil, fmt.Errorf("webhook %s previous secret: %w", h.ID, err)
		}
		keys = append(keys, string(b))
	}
	return keys, headers, nil
}

// Headers a hook may not set: the hub writes them itself.
var reservedHeaders = []string{"Content-Type", "Content-Length", "Host", "User-Agent", "Webhook-Id", "Webhook-Timestamp",
	"Webhook-Signature", "X-Hub-Signature-256", "Transfer-Encoding", "Connection"}

// Validate checks what a client gave for a new hook, or a hook changed.
func Validate(h Hook, headers map[string]string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch h.Scope {
	case ScopeSite:
		if h.Target != "" {
			return bad("a site hook names no namespace or repository")
		}
	case ScopeNamespace:
		if h.Target == "" || strings.Contains(h.Target, "/") {
			return bad("a namespace hook names one namespace")
		}
	case ScopeRepository:
		if !strings.Contains(h.Target, "/") {
			return bad("a repository hook names a repository NAMESPACE/NAME")
		}
	default:
		return bad("scope %q: want site, namespace or repository", h.Scope)
	}
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(h.URL) > 2048 {
		return bad("url must be an absolute http(s) URL without credentials, at most 2048 characters")
	}
	for _, t := range h.Events {
		if !slices.Contains(events.Types, t) {
			return bad("event type %q is unknown", t)
		}
	}
	if err := validateFilters("repository", h.Repositories); err != nil {
		return bad("%v", err)
	}
	if err := validateFilters("tag", h.Tags); err != nil {
		return bad("%v", err)
	}
	if err := validateFormat(h); err != nil {
		return bad("%v", err)
	}
	if len(headers) > 20 {
		return bad("at most 20 custom headers")
	}
	for k, v := range headers {
		ck := http.CanonicalHeaderKey(k)
		if k == "" || strings.ContainsAny(k, " :\r\n\t") || strings.ContainsAny(v, "\r\n") || len(k)+len(v) > 4096 {
			return bad("header %q is not a valid header", k)
		}
		if slices.Contains(reservedHeaders, ck) || strings.HasPrefix(ck, "Webhook-") {
			return bad("header %s is set by the hub", ck)
		}
	}
	return nil
}

// Changes describes what an update changed from old to h, for the audit log: the
// fields by name, the URL and filters with their new values, never a header value.
func Changes(old, h Hook) string {
	var out []string
	list := func(v []string) string {
		if len(v) == 0 {
			return "(any)"
		}
		return strings.Join(v, ",")
	}
	if h.URL != old.URL {
		out = append(out, "url → "+h.URL)
	}
	types := func(v []events.Type) []string {
		var s []string
		for _, t := range v {
			s = append(s, string(t))
		}
		return s
	}
	if !slices.Equal(h.Events, old.Events) {
		out = append(out, "events → "+list(types(h.Events)))
	}
	if !slices.Equal(h.Repositories, old.Repositories) {
		out = append(out, "repositories → "+list(h.Repositories))
	}
	if !slices.Equal(h.Tags, old.Tags) {
		out = append(out, "tags → "+list(h.Tags))
	}
	if h.Format != old.Format {
		out = append(out, "format → "+h.Format)
	}
	switch {
	case h.Headers == old.Headers:
	case len(h.HeaderNames) == 0:
		out = append(out, "headers removed")
	default:
		out = append(out, "headers replaced → "+strings.Join(h.HeaderNames, ","))
	}
	if h.Enabled != old.Enabled {
		out = append(out, fmt.Sprintf("enabled → %t", h.Enabled))
	}
	if len(out) == 0 {
		return "no change"
	}
	return strings.Join(out, "; ")
}

// Matches reports whether h wants e by scope, type, filters and format (an event its
// format has no way to say is not sent to it: Carries). Whether the hook's owner may
// still read e's repository is the deliverer's question, asked at delivery.
func (h Hook) Matches(e events.Event) bool {
	if h.Kind == KindDragonfly && !preheatable(e) {
		return false
	}
	if len(h.Events) > 0 && !slices.Contains(h.Events, e.Type) {
		return false
	}
	if !Carries(h.Format, e.Type) {
		return false
	}
	switch h.Scope {
	case ScopeNamespace:
		if !strings.HasPrefix(e.Repository, h.Target+"/") {
			return false
		}
	case ScopeRepository:
		if e.Repository != h.Target {
			return false
		}
	}
	if len(h.Repositories) > 0 && !matchAny(h.Repositories, e.Repository) {
		return false
	}
	if len(h.Tags) > 0 && (e.Tag == "" || !matchAny(h.Tags, e.Tag)) {
		return false
	}
	return true
}
