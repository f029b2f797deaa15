package hubclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hubctl")
	if auth != nil {
		auth(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode >= 300 {
		return c.errorOf(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return nil
}
