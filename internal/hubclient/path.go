package hubclient

import (
	"context"
	"errors"
	"net/http"
)

// GetPath sends GET to path, an absolute path of the hub outside the API (the chart
// listing and search under /charts/-/), with the stored login, or anonymously when
// there is none, and decodes the JSON answer into out.
func (c *Client) GetPath(ctx context.Context, path string, out any) error {
	auth, err := c.authenticate(ctx)
	if err != nil && !errors.Is(err, ErrNotLoggedIn) {
		return err
	}
	return c.send(ctx, http.MethodGet, path, auth, nil, out, 64<<20)
}
