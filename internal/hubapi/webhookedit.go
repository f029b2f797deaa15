package hubapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/webhook"
)

// Secret rotation and test deliveries (docs/webhooks.md).
const (
	// defaultKeepPrevious is how long a rotated-out secret keeps signing by default,
	// maxKeepPrevious the longest a client may ask for.
	defaultKeepPrevious = 24 * time.Hour
	maxKeepPrevious     = 7 * 24 * time.Hour
	// webhookTestInterval is the least time between two test deliveries of one hook,
	// counted per replica (in process): enough to keep the endpoint from being used
	// to flood a receiver, which one replica's limit already does.
	webhookTestInterval = time.Second
)

// needKeyring refuses what must seal a secret on a hub that has no key to seal with.
func (a *api) needKeyring() error {
	if a.keyring == nil {
		return errcode.New(errcode.Unavailable, "this hub has no key to seal webhook secrets with: give every replica the same "+
			"secrets.keys_file or HUBCTL_SECRETS_KEY (docs/operating.md, Secrets at rest)")
	}
	return nil
}

// updateWebhook answers PATCH /api/v1/webhooks/{id}, a JSON merge patch of the hook's
// URL, event types, filters, format, custom headers (replaced whole, sealed) and
// enabled: what it leaves out stays. Checked as a new hook is, audited as
// webhook.update in the change's transaction (webhook.enable or webhook.disable when
// it only turns the hook on or off, which clears its failures and the reason the hub
// turned it off).
func (a *api) updateWebhook(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	var req hubtypes.UpdateWebhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	h, err := a.editWebhook(r, p, req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, a.webhookView(r.Context(), h))
}

// editWebhook applies req to the hook of r's path, as PATCH /api/v1/webhooks/{id}
// does once the request is read: whoever manages the hook, checked as a new hook
// is; the store audits it in the change's transaction.
func (a *api) editWebhook(r *http.Request, p *authz.Principal, req hubtypes.UpdateWebhookRequest) (webhook.Hook, error) {
	switch {
	case !req.URL.Set && !req.Events.Set && !req.Repositories.Set && !req.Tags.Set && !req.Format.Set && !req.Headers.Set &&
		!req.Enabled.Set:
		return webhook.Hook{}, invalid("nothing to change: give url, events, repositories, tags, format, headers or enabled")
	case req.URL.Null:
		return webhook.Hook{}, invalid("url cannot be null")
	case req.Format.Null:
		return webhook.Hook{}, invalid("format cannot be null")
	case req.Enabled.Null:
		return webhook.Hook{}, invalid("enabled cannot be null")
	}
	onlyEnabled := req.Enabled.Set && !req.URL.Set && !req.Events.Set && !req.Repositories.Set && !req.Tags.Set &&
		!req.Format.Set && !req.Headers.Set
	if req.Headers.Set {
		if err := a.needKeyring(); err != nil {
			return webhook.Hook{}, err
		}
	}
	h, err := a.managedWebhook(r, p)
	if err != nil {
		return h, err
	}
	h, err = a.webhooks.UpdateWebhook(r.Context(), h.ID, p.Name(), func(h *webhook.Hook) (string, string, error) {
		old := *h
		if req.URL.Set {
			h.URL = req.URL.Value
		}
		if req.Events.Set {
			h.Events = nil
			for _, t := range req.Events.Value {
				h.Events = append(h.Events, events.Type(t))
			}
		}
		if req.Repositories.Set {
			h.Repositories = req.Repositories.Value
		}
		if req.Tags.Set {
			h.Tags = req.Tags.Value
		}
		if req.Format.Set {
			h.Format = req.Format.Value
		}
		if req.Enabled.Set {
			h.Enabled, h.Failures, h.DisabledReason = req.Enabled.Value, 0, ""
		}
		if err := webhook.Validate(*h, req.Headers.Value); err != nil {
			return "", "", invalid("%s", strings.TrimPrefix(err.Error(), webhook.ErrInvalid.Error()+": "))
		}
		if req.Headers.Set {
			if err := webhook.SealHeaders(a.keyring, h, req.Headers.Value); err != nil {
				return "", "", err
			}
		}
		switch {
		case onlyEnabled && h.Enabled:
			return "webhook.enable", "", nil
		case onlyEnabled:
			return "webhook.disable", "", nil
		}
		return "webhook.update", webhook.Changes(old, *h), nil
	})
	if errors.Is(err, webhook.ErrNotFound) {
		return h, notFound("webhook %s not found", r.PathValue("id"))
	}
	return h, err
}

// rotateWebhookSecret answers POST /api/v1/webhooks/{id}/rotate-secret with an
// optional body {"secret", "expire_previous_in"}: the hook signs with the new secret
// (given, or made) from now on and, until the previous one expires (default 24h, at
// most 7 days, "0" drops it now), with the previous one too. The answer carries the
// new secret, shown this once. Audited as webhook.rotate_secret, without the secret.
func (a *api) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	if err := a.needKeyring(); err != nil {
		return err
	}
	var req hubtypes.RotateWebhookSecretRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		return errcode.New(InvalidRequest, "request body exceeds %d bytes", MaxBodySize).WithStatus(http.StatusRequestEntityTooLarge)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(b))
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	h, secret, err := a.rotateSecret(r, p, req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, hubtypes.CreateWebhookResponse{Webhook: a.webhookView(r.Context(), h), Secret: secret})
}

// rotateSecret gives the hook of r's path the secret req names (or a new one), as
// POST /api/v1/webhooks/{id}/rotate-secret does once the request is read: whoever
// manages the hook; the previous secret keeps signing as req says; audited as
// webhook.rotate_secret without the secret. It returns the hook and the secret.
func (a *api) rotateSecret(r *http.Request, p *authz.Principal, req hubtypes.RotateWebhookSecretRequest) (webhook.Hook, string, error) {
	if err := a.needKeyring(); err != nil {
		return webhook.Hook{}, "", err
	}
	keep := defaultKeepPrevious
	if req.ExpirePreviousIn != "" {
		d, err := time.ParseDuration(req.ExpirePreviousIn)
		if err != nil || d < 0 || d > maxKeepPrevious {
			return webhook.Hook{}, "", invalid("expire_previous_in %q: want a duration from 0 (drop the previous secret now) to 168h (7 days), e.g. 24h",
				req.ExpirePreviousIn)
		}
		keep = d
	}
	secret := req.Secret
	if secret == "" {
		var err error
		if secret, err = webhook.NewSecret(); err != nil {
			return webhook.Hook{}, "", err
		}
	} else if _, err := webhook.SecretKey(secret); err != nil {
		return webhook.Hook{}, "", invalid("secret: want %s and the base64 of 24 to 64 bytes", webhook.SecretPrefix)
	}
	h, err := a.managedWebhook(r, p)
	if err != nil {
		return h, "", err
	}
	now := a.now()
	h, err = a.webhooks.UpdateWebhook(r.Context(), h.ID, p.Name(), func(h *webhook.Hook) (string, string, error) {
		if err := webhook.Rotate(a.keyring, h, secret, now, now.Add(keep)); err != nil {
			return "", "", err
		}
		if h.PreviousSecret == "" {
			return "webhook.rotate_secret", "previous secret dropped", nil
		}
		return "webhook.rotate_secret", "previous secret signs until " + formatTime(h.PreviousExpires), nil
	})
	if errors.Is(err, webhook.ErrNotFound) {
		return h, "", notFound("webhook %s not found", r.PathValue("id"))
	}
	if err != nil {
		return h, "", err
	}
	return h, secret, nil
}

// testWebhook answers POST /api/v1/webhooks/{id}/test: a webhook.test event is sent to
// the hook now, as deliveries are sent, and stored as a delivery of it; the answer is
// that delivery with its attempt (status, duration, the head of the answer), 200
// whatever the receiver said. At most one test per hook a second (over all replicas).
func (a *api) testWebhook(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	h, err := a.managedWebhook(r, p)
	if err != nil {
		return err
	}
	if a.deliverer == nil || a.keyring == nil {
		return errcode.New(errcode.Unavailable, "this hub sends no webhooks: give every replica the same secrets.keys_file or "+
			"HUBCTL_SECRETS_KEY (docs/operating.md, Secrets at rest)")
	}
	ok, wait, err := a.hookTests.Take(r.Context(), h.ID, a.now())
	if err != nil {
		return err
	}
	if !ok {
		secs := max(int((wait+time.Second-1)/time.Second), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return errcode.New(errcode.TooManyRequests, "webhook %s was tested less than %s ago; retry in %d s", h.ID, webhookTestInterval, secs)
	}
	d, err := a.deliverer.Test(r.Context(), h, p.Name())
	if errors.Is(err, webhook.ErrNotFound) {
		return notFound("webhook %s not found", h.ID)
	}
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, deliveryView(d))
}
