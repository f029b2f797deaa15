package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
)

// Passwords set here follow the hub API's rule (hubapi.MinPasswordLength).
const (
	minPasswordLength = 8
	maxPasswordLength = 1024
)

// sessionRow is one of the viewer's sessions.
type sessionRow struct {
	ID        int64
	Kind      string // "web" or "docker login" (a refresh session)
	CreatedAt time.Time
	LastUsed  time.Time
	ExpiresAt time.Time
	Remote    string
	Client    string
	Current   bool
}

// settingsPage is the viewer's account: email, password, sessions.
type settingsPage struct {
	basePage
	Name     string
	Email    string
	Sessions []sessionRow
	Notice   string
	Error    string
	// Section names the form Error belongs to ("email", "password", "sessions").
	Section string
}

// settingsNotices are the notices a redirect back to the page may ask for.
var settingsNotices = map[string]string{
	"email":    "Your email address was saved.",
	"password": "Your password was changed. Every other session of yours has ended.",
	"session":  "The session was ended.",
}

func (h *Handler) settings(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	p := settingsPage{basePage: h.base(r, "Settings"), Notice: settingsNotices[r.URL.Query().Get("done")]}
	h.renderSettings(w, r, http.StatusOK, p)
}

// renderSettings fills the account and its sessions and renders the page.
func (h *Handler) renderSettings(w http.ResponseWriter, r *http.Request, status int, p settingsPage) {
	v := viewerOf(r)
	p.Name, p.Email = v.user.Name, v.user.Email
	list, err := h.o.Accounts.ListSessions(r.Context(), v.user.Name)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	now := h.o.Now()
	for _, s := range list {
		if !s.Active(now) {
			continue
		}
		kind := s.Kind
		if kind == accounts.SessionRefresh {
			kind = "docker login"
		}
		p.Sessions = append(p.Sessions, sessionRow{ID: s.ID, Kind: kind, CreatedAt: s.CreatedAt, LastUsed: s.LastUsedAt,
			ExpiresAt: s.ExpiresAt, Remote: s.Remote, Client: truncate(s.Client, 120), Current: v.session != nil && s.ID == v.session.ID})
	}
	h.render(w, r, status, "settings", p)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// setEmail changes the viewer's email address.
func (h *Handler) setEmail(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if err := accounts.CheckEmail(email); err != nil {
		h.renderSettings(w, r, http.StatusBadRequest, settingsPage{basePage: h.base(r, "Settings"), Error: err.Error(), Section: "email"})
		return
	}
	// Read the account again: UpdateUser writes its flags too, and one changed since
	// this request began (an administrator disabling it) must stay changed.
	u, err := h.o.Accounts.GetUser(r.Context(), v.user.Name)
	if err != nil && !errors.Is(err, accounts.ErrNotFound) {
		h.internal(w, r, err)
		return
	}
	if err != nil || u.ID != v.user.ID || u.Disabled {
		h.fail(w, r, http.StatusForbidden, "Your session has ended; sign in again.")
		return
	}
	u.Email = email
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "user.update", u.Name, "web; changed email"))
	if err := h.o.Accounts.UpdateUser(ctx, u); err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings?done=email", http.StatusSeeOther)
}

// changePassword sets a new password after checking the current one behind the
// sign-in rate limit (a wrong current password counts as a failed sign-in, so a
// stolen session cannot be used to guess it). The store ends every session of the
// user with the change; this browser gets a new one, so only the others end.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	cur, next, again := r.PostForm.Get("current"), r.PostForm.Get("new"), r.PostForm.Get("confirm")
	retry := func(status int, msg string) {
		h.renderSettings(w, r, status, settingsPage{basePage: h.base(r, "Settings"), Error: msg, Section: "password"})
	}
	switch {
	case cur == "" || next == "":
		retry(http.StatusBadRequest, "Enter your current password and a new one.")
		return
	case len(next) < minPasswordLength:
		retry(http.StatusBadRequest, fmt.Sprintf("The new password must be at least %d characters.", minPasswordLength))
		return
	case len(next) > maxPasswordLength || len(cur) > maxPasswordLength:
		retry(http.StatusBadRequest, fmt.Sprintf("A password has at most %d bytes.", maxPasswordLength))
		return
	case next != again:
		retry(http.StatusBadRequest, "The new password and its confirmation differ.")
		return
	}
	user, err := h.guardedPassword(r, v.user.Name, cur, "web: wrong current password at password change")
	var tm *ratelimit.TooManyError
	switch {
	case errors.As(err, &tm):
		w.Header().Set("Retry-After", fmt.Sprint(tm.RetryAfterSeconds()))
		retry(http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts; try again in %d seconds.", tm.RetryAfterSeconds()))
		return
	case errors.Is(err, errBadLogin):
		retry(http.StatusUnauthorized, "Your current password is not right.")
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	if user.ID != v.user.ID {
		// The name now belongs to another account than the session's.
		h.fail(w, r, http.StatusForbidden, "Your session has ended; sign in again.")
		return
	}
	if user.PasswordHash, err = password.Hash(next); err != nil {
		h.internal(w, r, err)
		return
	}
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "user.update", user.Name, "web; changed password"))
	if err := h.o.Accounts.UpdateUser(ctx, user); err != nil {
		h.internal(w, r, err)
		return
	}
	if err := h.startSession(w, r, user); err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings?done=password", http.StatusSeeOther)
}

// endSession ends one of the viewer's sessions (this one too, if named).
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	id, err := strconv.ParseInt(r.PostForm.Get("id"), 10, 64)
	if err != nil || id <= 0 {
		h.renderSettings(w, r, http.StatusBadRequest, settingsPage{basePage: h.base(r, "Settings"), Error: "Pick a session from the list.", Section: "sessions"})
		return
	}
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "session.revoke", v.user.Name, fmt.Sprintf("web; session %d", id)))
	err = h.o.Accounts.RevokeSession(ctx, v.user.Name, id)
	if errors.Is(err, accounts.ErrNotFound) {
		h.renderSettings(w, r, http.StatusNotFound, settingsPage{basePage: h.base(r, "Settings"), Error: "You have no such active session.", Section: "sessions"})
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	if id == v.session.ID {
		h.clearCookie(w, r, SessionCookie)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/settings?done=session", http.StatusSeeOther)
}

// endAllSessions is "sign out everywhere": every session of the viewer ends, this one
// included, and registry tokens issued before stop working in the hub API.
func (h *Handler) endAllSessions(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "session.end_all", v.user.Name, "web"))
	if err := h.o.Accounts.EndSessions(ctx, v.user.Name); err != nil {
		h.internal(w, r, err)
		return
	}
	h.clearCookie(w, r, SessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
