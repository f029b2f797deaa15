package hubclient

import (
	"context"
	"net/http"
	"net/url"

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
