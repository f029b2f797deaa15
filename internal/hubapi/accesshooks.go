package hubapi

import (
	"net/http"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
)

// The webhook changes of the hub API for another front end: each is the endpoint's
// own code once its request is read (checks, sealing, the store's audit entry). The
// hook is the one r's {id} path value names, as for the endpoints.

// WithWebhooks lets x change webhooks kept in store, sealing their secrets with
// keyring (nil: what needs sealing is refused, as the API refuses it).
func (x *Access) WithWebhooks(store webhook.DeliveryStore, keyring *secrets.Keyring) *Access {
	x.a.webhooks, x.a.keyring = store, keyring
	return x
}

// hooksWritable refuses what the /api/v1/webhooks endpoints refuse before their
// handler runs: no webhook store, and callers without hub:webhooks:write.
func (x *Access) hooksWritable(r *http.Request, p *authz.Principal) error {
	if x.a.webhooks == nil || p.User == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	if !p.MayWriteHub(scope.HubWebhooks) {
		return denied("this access token may not change webhooks")
	}
	return nil
}

// CreateWebhook creates a hook as POST /api/v1/webhooks does and returns it with its
// secret, to be shown this once.
func (x *Access) CreateWebhook(r *http.Request, p *authz.Principal, req hubtypes.CreateWebhookRequest) (webhook.Hook, string, error) {
	if err := x.hooksWritable(r, p); err != nil {
		return webhook.Hook{}, "", err
	}
	return x.a.addWebhook(r, p, req)
}

// UpdateWebhook changes a hook as PATCH /api/v1/webhooks/{id} does.
func (x *Access) UpdateWebhook(r *http.Request, p *authz.Principal, req hubtypes.UpdateWebhookRequest) (webhook.Hook, error) {
	if err := x.hooksWritable(r, p); err != nil {
		return webhook.Hook{}, err
	}
	return x.a.editWebhook(r, p, req)
}

// RotateWebhookSecret rotates a hook's secret as POST
// /api/v1/webhooks/{id}/rotate-secret does and returns the new secret.
func (x *Access) RotateWebhookSecret(r *http.Request, p *authz.Principal, req hubtypes.RotateWebhookSecretRequest) (webhook.Hook, string, error) {
	if err := x.hooksWritable(r, p); err != nil {
		return webhook.Hook{}, "", err
	}
	return x.a.rotateSecret(r, p, req)
}

// DeleteWebhook deletes a hook as DELETE /api/v1/webhooks/{id} does.
func (x *Access) DeleteWebhook(r *http.Request, p *authz.Principal) error {
	if err := x.hooksWritable(r, p); err != nil {
		return err
	}
	return x.a.removeWebhook(r, p)
}
