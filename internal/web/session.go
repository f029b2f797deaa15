package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
)

// Sessions are rows of the store's sessions table of kind SessionKind; the cookie
// holds the secret, the store its sha256 only.
const (
	// SessionKind marks the web UI's sessions beside docker's refresh sessions.
	SessionKind = "web"
	// SessionCookie holds the session secret.
	SessionCookie = "hubctl_session"
	// LoginCookie holds the sign-in form's CSRF token (double submit: there is no
	// session yet to derive one from).
	LoginCookie = "hubctl_login"
	// SessionTTL is a session's whole life: it is not extended by use.
	SessionTTL = 12 * time.Hour
	// secretPrefix starts web session secrets, so scanners and people can tell them
	// from access tokens ("hub_") and refresh tokens ("hubr_").
	secretPrefix = "hubw_"
	// touchEvery bounds how often a session's last use is written.
	touchEvery = time.Minute
	// maxFormSize bounds a posted form: every form here is a few short fields.
	maxFormSize = 16 << 10
)

// viewer is who a request comes from: a user signed in through a web session, or
// nobody.
type viewer struct {
	user    *accounts.User
	session *accounts.Session
	csrf    string // the session's CSRF token; "" when signed out
}

// principal is the viewer as the access policy sees it.
func (v *viewer) principal() authz.Principal {
	return authz.Principal{User: v.user, Session: v.session}
}

// viewer finds the signed-in user of r from its session cookie. A missing, unknown,
// ended or expired session, or one whose account is gone, disabled or another account
// of the same name, is a signed-out viewer, not an error.
func (h *Handler) viewer(r *http.Request) (*viewer, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || !strings.HasPrefix(c.Value, secretPrefix) {
		return &viewer{}, nil
	}
	ctx := r.Context()
	sess, err := h.o.Accounts.SessionByHash(ctx, password.SecretHash(c.Value))
	if errors.Is(err, accounts.ErrNotFound) {
		return &viewer{}, nil
	} else if err != nil {
		return nil, err
	}
	now := h.o.Now()
	if sess.Kind != SessionKind || !sess.Active(now) {
		return &viewer{}, nil
	}
	u, err := h.o.Accounts.GetUser(ctx, sess.User)
	if errors.Is(err, accounts.ErrNotFound) {
		return &viewer{}, nil
	} else if err != nil {
		return nil, err
	}
	if u.ID != sess.UserID || u.Disabled || u.Robot {
		return &viewer{}, nil
	}
	if last, ok := h.touched.Load(sess.ID); !ok || now.Sub(last.(time.Time)) >= touchEvery {
		h.touched.Store(sess.ID, now)
		if err := h.o.Accounts.TouchSession(ctx, sess.ID, now); err != nil {
			h.o.Log.WarnContext(ctx, "web: record session use", "session_id", sess.ID, "err", err)
		}
	}
	return &viewer{user: &u, session: &sess, csrf: csrfToken(c.Value)}, nil
}

// csrfToken is the CSRF token of the session whose secret is secret: an HMAC of it,
// so it is per session, needs no storage, and tells nothing about the secret.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("hubctl web csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// tokenEqual compares two tokens in constant time; empty never matches.
func tokenEqual(a, b string) bool {
	return a != "" && b != "" && hmac.Equal([]byte(a), []byte(b))
}

// checkForm parses a posted form and checks that it comes from one of the hub's own
// pages (sameOrigin) and carries the signed-in viewer's CSRF token. It answers the
// refusal itself and returns false then; nothing has been changed.
func (h *Handler) checkForm(w http.ResponseWriter, r *http.Request) bool {
	if err := h.sameOrigin(r); err != nil {
		h.fail(w, r, http.StatusForbidden, "This form was sent from another site, or without saying where from; it was refused.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	v := viewerOf(r)
	if v.user == nil {
		h.fail(w, r, http.StatusForbidden, "Your session has ended; sign in again.")
		return false
	}
	if !tokenEqual(r.PostForm.Get("csrf"), v.csrf) {
		h.fail(w, r, http.StatusForbidden, "This form is out of date or was not sent by this site; reload the page and try again.")
		return false
	}
	return true
}

// startSession makes a new session for u and sets its cookie. It never reuses a
// secret the browser sent: whatever cookie came with the sign-in is replaced (no
// fixation).
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, u accounts.User) error {
	secret, err := password.RandomSecret(secretPrefix)
	if err != nil {
		return err
	}
	now := h.o.Now()
	_, err = h.o.Accounts.CreateSession(r.Context(), accounts.Session{UserID: u.ID, Kind: SessionKind,
		Hash: password.SecretHash(secret), CreatedAt: now, ExpiresAt: now.Add(SessionTTL),
		Remote: clientIP(r), Client: r.UserAgent()})
	if err != nil {
		return fmt.Errorf("start a web session for %s: %w", u.Name, err)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	return nil
}

// clearCookie tells the browser to forget cookie name.
func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
}

// loginToken returns the sign-in form's CSRF token, from its cookie or new (and then
// set).
func (h *Handler) loginToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(LoginCookie); err == nil && len(c.Value) == 43 {
		return c.Value, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: LoginCookie, Value: tok, Path: "/login", MaxAge: 3600,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	return tok, nil
}

// clientIP is the address the request came from (the server has already replaced
// RemoteAddr with a trusted proxy's word for it, when configured).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit records a security-relevant action that is not a store mutation (a sign-in).
func (h *Handler) audit(r *http.Request, actor, action, detail string) {
	e := accounts.AuditEntry{Time: h.o.Now(), Actor: actor, Action: action, Remote: clientIP(r), Detail: detail}
	if err := h.o.Accounts.Audit(r.Context(), e); err != nil {
		h.o.Log.WarnContext(r.Context(), "web: audit", "action", action, "err", err)
	}
}

// auditEntry is the entry a store mutation made from a page writes with it.
func (h *Handler) auditEntry(r *http.Request, action, target, detail string) accounts.AuditEntry {
	return accounts.AuditEntry{Time: h.o.Now(), Actor: viewerOf(r).principal().Name(), Action: action, Target: target,
		Remote: clientIP(r), Detail: detail}
}
