package hubclient

import (
	"context"
	"net/http"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// ListSessions lists user's sessions (the refresh sessions of `docker login` and
// `hubctl login`), ended ones included: the caller's own, or anyone's for a site admin.
func (c *Client) ListSessions(ctx context.Context, user string) ([]hubtypes.Session, error) {
	var out []hubtypes.Session
	return out, c.do(ctx, http.MethodGet, "users/"+seg(user)+"/sessions", nil, &out)
}

// RevokeSession ends one of user's sessions.
func (c *Client) RevokeSession(ctx context.Context, user string, id int64) error {
	return c.do(ctx, http.MethodDelete, "users/"+seg(user)+"/sessions/"+strconv.FormatInt(id, 10), nil, nil)
}

// EndSessions ends every session of user ("sign out everywhere"): registry tokens
// issued before stop working in the hub API too.
func (c *Client) EndSessions(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodDelete, "users/"+seg(user)+"/sessions", nil, nil)
}
