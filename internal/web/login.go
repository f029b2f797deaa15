package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
)

// loginPage is the sign-in form.
type loginPage struct {
	basePage
	LoginCSRF string
	Next      string
	Username  string
	Error     string
}

// errBadLogin is every wrong user name or password, so the page cannot tell them
// apart.
var errBadLogin = errors.New("invalid username or password")

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	tok, err := h.loginToken(w, r)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := loginPage{basePage: h.base(r, "Sign in"), LoginCSRF: tok, Next: localPath(r.URL.Query().Get("next"))}
	h.render(w, r, http.StatusOK, "login", p)
}

// login checks a user name and password as the token service does, behind the same
// rate limit, and starts a new session.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := h.sameOrigin(r); err != nil {
		h.fail(w, r, http.StatusForbidden, "This form was sent from another site, or without saying where from; it was refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(LoginCookie)
	if err != nil || !tokenEqual(r.PostForm.Get("csrf"), c.Value) {
		h.fail(w, r, http.StatusForbidden, "This sign-in form is out of date or was not sent by this site; reload the page and try again.")
		return
	}
	name, pass := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password")
	next := localPath(r.PostForm.Get("next"))
	retry := func(status int, msg string) {
		p := loginPage{basePage: h.base(r, "Sign in"), LoginCSRF: c.Value, Next: next, Username: name, Error: msg}
		h.render(w, r, status, "login", p)
	}
	if name == "" || pass == "" {
		retry(http.StatusBadRequest, "Enter your username and password.")
		return
	}
	user, err := h.guardedPassword(r, name, pass, "web: bad credentials")
	var tm *ratelimit.TooManyError
	switch {
	case errors.As(err, &tm):
		w.Header().Set("Retry-After", fmt.Sprint(tm.RetryAfterSeconds()))
		retry(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins; try again in %d seconds.", tm.RetryAfterSeconds()))
		return
	case errors.Is(err, errBadLogin):
		retry(http.StatusUnauthorized, "Invalid username or password.")
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	// The session the browser came with, if any, ends: a sign-in always starts a
	// fresh one.
	if v := viewerOf(r); v.session != nil {
		if err := h.o.Accounts.RevokeSession(r.Context(), v.user.Name, v.session.ID); err != nil && !errors.Is(err, accounts.ErrNotFound) {
			h.o.Log.WarnContext(r.Context(), "web: end the previous session", "err", err)
		}
	}
	if err := h.startSession(w, r, user); err != nil {
		h.internal(w, r, err)
		return
	}
	h.clearCookie(w, r, LoginCookie)
	h.audit(r, user.Name, "login", "web")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// checkPassword returns the account of name if pass is its password; errBadLogin for
// a wrong name or password, a robot (tokens only) or a disabled account.
func (h *Handler) checkPassword(r *http.Request, name, pass string) (accounts.User, error) {
	u, err := h.o.Accounts.GetUser(r.Context(), name)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && (u.Robot || u.PasswordHash == "")) {
		// As long as a real check, so names cannot be probed by timing.
		_, _ = password.Verify(pass, h.dummyHash())
		return accounts.User{}, errBadLogin
	} else if err != nil {
		return accounts.User{}, err
	}
	ok, err := password.Verify(pass, u.PasswordHash)
	if err != nil {
		return accounts.User{}, fmt.Errorf("verify password of %s: %w", u.Name, err)
	}
	if !ok || u.Disabled {
		return accounts.User{}, errBadLogin
	}
	return u, nil
}

func (h *Handler) dummyHash() string {
	h.dummyOnce.Do(func() { h.dummy, _ = password.Hash("no such user") })
	return h.dummy
}

// logout ends the session and forgets its cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "logout", v.user.Name, "web"))
	if err := h.o.Accounts.RevokeSession(ctx, v.user.Name, v.session.ID); err != nil && !errors.Is(err, accounts.ErrNotFound) {
		h.internal(w, r, err)
		return
	}
	h.clearCookie(w, r, SessionCookie)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// localPath returns p when it is a path on this site, else "/": the sign-in form's
// return address must not send anyone elsewhere ("//evil.example" and "/\evil" are
// other sites to a browser).
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\\\r\n\t") || p == "/login" {
		return "/"
	}
	return p
}

// guardedPassword checks name's password behind the guard that /token and the API
// share, so a wrong guess counts wherever it is made; a wrong one is audited as
// login.failed with detail. It answers the account, errBadLogin, or the guard's
// *ratelimit.TooManyError.
func (h *Handler) guardedPassword(r *http.Request, name, pass, detail string) (accounts.User, error) {
	var user accounts.User
	err := h.o.Guard.Login(r.Context(), name, clientIP(r), true, func() (bool, error) {
		u, err := h.checkPassword(r, name, pass)
		if errors.Is(err, errBadLogin) {
			h.audit(r, name, "login.failed", detail)
			return true, err
		}
		user = u
		return false, err
	})
	return user, err
}
