package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// CreateWebhook creates a webhook; the answer carries its secret, shown this once.
func (c *Client) CreateWebhook(ctx context.Context, req hubtypes.CreateWebhookRequest) (hubtypes.CreateWebhookResponse, error) {
	var out hubtypes.CreateWebhookResponse
	return out, c.do(ctx, http.MethodPost, "webhooks", req, &out)
}

// ListWebhooks lists the webhooks the caller manages, of namespace when given.
func (c *Client) ListWebhooks(ctx context.Context, namespace string) ([]hubtypes.Webhook, error) {
	path := "webhooks"
	if namespace != "" {
		path += "?" + url.Values{"namespace": {namespace}}.Encode()
	}
	var out []hubtypes.Webhook
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// GetWebhook returns the webhook id.
func (c *Client) GetWebhook(ctx context.Context, id string) (hubtypes.Webhook, error) {
	var out hubtypes.Webhook
	return out, c.do(ctx, http.MethodGet, "webhooks/"+seg(id), nil, &out)
}

// DeleteWebhook deletes the webhook id.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "webhooks/"+seg(id), nil, nil)
}

// ListWebhookDeliveries returns the webhook's newest deliveries with their attempts.
func (c *Client) ListWebhookDeliveries(ctx context.Context, id string, limit int) ([]hubtypes.WebhookDelivery, error) {
	path := "webhooks/" + seg(id) + "/deliveries"
	if limit > 0 {
		path += "?" + url.Values{"limit": {strconv.Itoa(limit)}}.Encode()
	}
	var out []hubtypes.WebhookDelivery
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// RedeliverWebhook queues a delivery's event again for its webhook.
func (c *Client) RedeliverWebhook(ctx context.Context, id string, delivery int64) (hubtypes.WebhookDelivery, error) {
	var out hubtypes.WebhookDelivery
	return out, c.do(ctx, http.MethodPost, "webhooks/"+seg(id)+"/deliveries/"+strconv.FormatInt(delivery, 10)+"/redeliver", nil, &out)
}

// SetWebhookEnabled turns the webhook id on or off.
func (c *Client) SetWebhookEnabled(ctx context.Context, id string, enabled bool) (hubtypes.Webhook, error) {
	var out hubtypes.Webhook
	return out, c.do(ctx, http.MethodPatch, "webhooks/"+seg(id), hubtypes.UpdateWebhookRequest{Enabled: hubtypes.Some(enabled)}, &out)
}

// UpdateWebhook changes the webhook id as req says (a merge patch).
func (c *Client) UpdateWebhook(ctx context.Context, id string, req hubtypes.UpdateWebhookRequest) (hubtypes.Webhook, error) {
	var out hubtypes.Webhook
	return out, c.do(ctx, http.MethodPatch, "webhooks/"+seg(id), req, &out)
}

// RotateWebhookSecret gives the webhook id a new signing secret; the answer carries
// it, shown this once.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string, req hubtypes.RotateWebhookSecretRequest) (hubtypes.CreateWebhookResponse, error) {
	var out hubtypes.CreateWebhookResponse
	return out, c.do(ctx, http.MethodPost, "webhooks/"+seg(id)+"/rotate-secret", req, &out)
}

// TestWebhook sends the webhook id a webhook.test event now and returns the delivery,
// with its attempt.
func (c *Client) TestWebhook(ctx context.Context, id string) (hubtypes.WebhookDelivery, error) {
	var out hubtypes.WebhookDelivery
	return out, c.do(ctx, http.MethodPost, "webhooks/"+seg(id)+"/test", nil, &out)
}
