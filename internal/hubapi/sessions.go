package hubapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// Sessions are the sign-ins that last (docker's identity tokens). A user lists and
// ends their own; an administrator anyone's. An access token may do neither: sessions
// are password credentials.

// sessionOwner returns the account whose sessions the request names, if p may manage
// them.
func sessionOwner(r *http.Request, p *authz.Principal) (string, error) {
	name := r.PathValue("name")
	if !self(p, name) {
		if err := requireAdmin(p); err != nil {
			return "", err
		}
	}
	return name, nil
}

func (a *api) listSessions(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name, err := sessionOwner(r, p)
	if err != nil {
		return err
	}
	list, err := a.store.ListSessions(r.Context(), name)
	if err != nil {
		return err
	}
	now := a.now()
	out := make([]hubtypes.Session, 0, len(list))
	for _, s := range list {
		out = append(out, hubtypes.Session{ID: s.ID, Kind: s.Kind, CreatedAt: formatTime(s.CreatedAt),
			LastUsedAt: formatTime(s.LastUsedAt), ExpiresAt: formatTime(s.ExpiresAt), RevokedAt: formatTime(s.RevokedAt),
			Remote: s.Remote, Client: s.Client, Active: s.Active(now)})
	}
	return reply(w, http.StatusOK, out)
}

func (a *api) revokeSession(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name, err := sessionOwner(r, p)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return invalid("session id %q: want a positive number", r.PathValue("id"))
	}
	if err := a.store.RevokeSession(a.audited(r, p, "session.revoke", name, fmt.Sprintf("session %d", id)), name, id); errors.Is(err, accounts.ErrNotFound) {
		return notFound("%s has no active session %d", name, id)
	} else if err != nil {
		return err
	}
	return noContent(w)
}

// endSessions is "sign out everywhere": every session ends and every registry token
// issued before stops working in the API.
func (a *api) endSessions(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name, err := sessionOwner(r, p)
	if err != nil {
		return err
	}
	if err := a.store.EndSessions(a.audited(r, p, "session.end_all", name, ""), name); err != nil {
		return err
	}
	return noContent(w)
}
