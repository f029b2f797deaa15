package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/scope"
)

// tokenRow is one access token in the list.
type tokenRow struct {
	Name      string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
	LastUsed  time.Time
	RevokedAt time.Time
	Active    bool
}

// expiryChoice is one option of the expiry menu.
type expiryChoice struct {
	Days     int
	Label    string
	Selected bool
}

// tokensPage lists the viewer's access tokens and the form to make one.
type tokensPage struct {
	basePage
	Tokens  []tokenRow
	Expiry  []expiryChoice
	Name    string
	Scopes  string
	Error   string
	Notice  string
	Created *createdToken
}

// createdToken is a token just made: its secret is shown this once.
type createdToken struct {
	Name      string
	Secret    string
	Scopes    []string
	ExpiresAt time.Time
}

// Expiry choices, in days; 0 is never.
var expiryDays = []int{7, 30, 90, 365, 0}

// maxScopes bounds the scopes of one token made here.
const maxScopes = 20

// requireViewer sends a signed-out visitor to the sign-in page and returns false.
func (h *Handler) requireViewer(w http.ResponseWriter, r *http.Request) bool {
	if viewerOf(r).user != nil {
		return true
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
	return false
}

func (h *Handler) tokens(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	v := viewerOf(r)
	p := tokensPage{basePage: h.base(r, "Access tokens"), Scopes: "repository:" + v.user.Name + "/*:pull"}
	switch r.URL.Query().Get("done") {
	case "revoked":
		p.Notice = "The token was revoked."
	}
	h.renderTokens(w, r, http.StatusOK, p, 30)
}

// renderTokens fills the list and the expiry menu and renders the page.
func (h *Handler) renderTokens(w http.ResponseWriter, r *http.Request, status int, p tokensPage, days int) {
	v := viewerOf(r)
	list, err := h.o.Accounts.ListTokens(r.Context(), v.user.Name)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	now := h.o.Now()
	for _, t := range list {
		p.Tokens = append(p.Tokens, tokenRow{Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
			LastUsed: t.LastUsedAt, RevokedAt: t.RevokedAt, Active: t.Active(now)})
	}
	for _, d := range expiryDays {
		label := "Never"
		if d > 0 {
			label = fmt.Sprintf("%d days", d)
		}
		p.Expiry = append(p.Expiry, expiryChoice{Days: d, Label: label, Selected: d == days})
	}
	h.render(w, r, status, "tokens", p)
}

// createToken makes a token from the form and shows its secret once. The page is
// rendered in the answer to the POST (not after a redirect), so the secret is in no
// URL and no later page.
func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	name := strings.TrimSpace(r.PostForm.Get("name"))
	scopesText := r.PostForm.Get("scopes")
	days, err := strconv.Atoi(r.PostForm.Get("expires"))
	p := tokensPage{basePage: h.base(r, "Access tokens"), Name: name, Scopes: scopesText}
	if err != nil || !validExpiry(days) {
		p.Error = "Choose an expiry from the list."
		h.renderTokens(w, r, http.StatusBadRequest, p, 30)
		return
	}
	scopes, err := parseScopes(scopesText)
	if err == nil {
		err = accounts.CheckTokenName(name)
	}
	if err != nil {
		p.Error = err.Error()
		h.renderTokens(w, r, http.StatusBadRequest, p, days)
		return
	}
	secret, err := password.RandomSecret(password.AccessTokenPrefix)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	now := h.o.Now()
	t := accounts.AccessToken{User: v.user.Name, Name: name, Hash: password.SecretHash(secret), Scopes: scopes, CreatedAt: now}
	if days > 0 {
		t.ExpiresAt = now.Add(time.Duration(days) * 24 * time.Hour)
	}
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "token.create", v.user.Name+"/"+name, "web; scopes "+strings.Join(scopes, " ")))
	t, err = h.o.Accounts.CreateToken(ctx, t)
	switch {
	case errors.Is(err, accounts.ErrExists):
		p.Error = fmt.Sprintf("You already have an active token named %q; pick another name or revoke that one.", name)
		h.renderTokens(w, r, http.StatusConflict, p, days)
		return
	case errors.Is(err, accounts.ErrInvalid):
		p.Error = err.Error()
		h.renderTokens(w, r, http.StatusBadRequest, p, days)
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	p.Name, p.Scopes = "", "repository:"+v.user.Name+"/*:pull"
	p.Created = &createdToken{Name: t.Name, Secret: secret, Scopes: t.Scopes, ExpiresAt: t.ExpiresAt}
	h.renderTokens(w, r, http.StatusCreated, p, 30)
}

func validExpiry(days int) bool {
	for _, d := range expiryDays {
		if d == days {
			return true
		}
	}
	return false
}

// parseScopes reads the scopes of the form (one per line or separated by spaces) as
// the hub API does: each must parse, name a resource type that is ever granted, and a
// hub scope must name a known area; they are kept in their canonical form.
func parseScopes(text string) ([]string, error) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return nil, errors.New("a token needs at least one scope, e.g. repository:team/app:pull")
	}
	if len(fields) > maxScopes {
		return nil, fmt.Errorf("a token may have at most %d scopes", maxScopes)
	}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		sc, err := scope.ParsePattern(f)
		if err != nil {
			return nil, err
		}
		switch {
		case sc.Type == scope.TypeHub:
			if err := scope.CheckHubScope(sc); err != nil {
				return nil, err
			}
		case !sc.Known():
			return nil, fmt.Errorf("scope %q: resource type %q is never granted (repository, registry, hub)", f, sc.Type)
		}
		out = append(out, sc.String())
	}
	return out, nil
}

// revokeToken revokes one of the viewer's tokens by name.
func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	name := r.PostForm.Get("name")
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "token.revoke", v.user.Name+"/"+name, "web"))
	err := h.o.Accounts.RevokeToken(ctx, v.user.Name, name)
	if errors.Is(err, accounts.ErrNotFound) {
		p := tokensPage{basePage: h.base(r, "Access tokens"), Scopes: "repository:" + v.user.Name + "/*:pull",
			Error: fmt.Sprintf("You have no active token named %q.", name)}
		h.renderTokens(w, r, http.StatusNotFound, p, 30)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/tokens?done=revoked", http.StatusSeeOther)
}
