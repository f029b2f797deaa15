package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
)

// The forms of the organisation and users pages: each makes the store call the hub
// API's endpoint makes, after the same check, with the same audit entry.

func (h *Handler) orgFormRoutes() {
	h.mux.HandleFunc("POST /settings/admin/orgs/{org}/teams/{team}/members", h.orgAddMember)
	h.mux.HandleFunc("POST /settings/admin/orgs/{org}/teams/{team}/members/remove", h.orgRemoveMember)
	h.mux.HandleFunc("POST /settings/admin/orgs/{org}/teams/{team}/grants", h.orgSetGrant)
	h.mux.HandleFunc("POST /settings/admin/users/{name}/disabled", h.userSetDisabled)
}

// orgForm checks a form posted to an organisation's page: CSRF, and that the viewer
// administers the organisation (PUT /api/v1/orgs/{org}/teams/… decides the same).
func (h *Handler) orgForm(w http.ResponseWriter, r *http.Request) (org string, ok bool) {
	if !h.checkForm(w, r) {
		return "", false
	}
	return h.orgAdminPage(w, r)
}

// orgDone answers a form of the organisation page: back to it, or the page with the
// store's refusal.
func (h *Handler) orgDone(w http.ResponseWriter, r *http.Request, org string, err error) {
	switch {
	case err == nil:
		http.Redirect(w, r, "/settings/admin/orgs/"+url.PathEscape(org), http.StatusSeeOther)
	case errors.Is(err, accounts.ErrNotFound):
		h.renderOrg(w, r, http.StatusNotFound, org, "", "No such team, user or repository.")
	case errors.Is(err, accounts.ErrInvalid):
		h.renderOrg(w, r, http.StatusBadRequest, org, "", clientError(err))
	default:
		h.internal(w, r, err)
	}
}

// clientError is the part of a store error fit to show: its last clause.
func clientError(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		s = s[i+2:]
	}
	return clip(s, 300)
}

func (h *Handler) orgAddMember(w http.ResponseWriter, r *http.Request) {
	org, ok := h.orgForm(w, r)
	if !ok {
		return
	}
	team, user := r.PathValue("team"), strings.TrimSpace(r.PostForm.Get("user"))
	if user == "" {
		h.renderOrg(w, r, http.StatusBadRequest, org, "", "Name the user to add.")
		return
	}
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "team.member.add", org+"/"+team, "member "+clip(user, 256)))
	h.orgDone(w, r, org, h.o.Accounts.AddTeamMember(ctx, org, team, user))
}

func (h *Handler) orgRemoveMember(w http.ResponseWriter, r *http.Request) {
	org, ok := h.orgForm(w, r)
	if !ok {
		return
	}
	team, user := r.PathValue("team"), r.PostForm.Get("user")
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "team.member.remove", org+"/"+team, "member "+clip(user, 256)))
	h.orgDone(w, r, org, h.o.Accounts.RemoveTeamMember(ctx, org, team, user))
}

func (h *Handler) orgSetGrant(w http.ResponseWriter, r *http.Request) {
	org, ok := h.orgForm(w, r)
	if !ok {
		return
	}
	team, repo, roleName := r.PathValue("team"), strings.TrimSpace(r.PostForm.Get("repository")), r.PostForm.Get("role")
	role := accounts.Role(roleName)
	if roleName == "none" {
		role = accounts.RoleNone
	} else if !role.Valid() {
		h.renderOrg(w, r, http.StatusBadRequest, org, "", "A role is read, write, admin or none.")
		return
	}
	on := repo
	if on == "" {
		on = org + " (whole organisation)"
	}
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "permission.change", org+"/"+team, fmt.Sprintf("role %s on %s", roleName, clip(on, 256))))
	h.orgDone(w, r, org, h.o.Accounts.SetTeamGrant(ctx, accounts.TeamGrant{Org: org, Team: team, Repository: repo, Role: role}))
}

// userSetDisabled disables or enables an account, as PATCH /api/v1/users/{name} with
// "disabled" does: site administrators only, never themselves; disabling ends the
// account's sessions (the store does).
func (h *Handler) userSetDisabled(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	v := viewerOf(r)
	if !v.user.Admin {
		h.fail(w, r, http.StatusForbidden, "Site administrators only.")
		return
	}
	name := r.PathValue("name")
	disable := r.PostForm.Get("disabled") == "true"
	if name == v.user.Name {
		h.fail(w, r, http.StatusBadRequest, "You cannot disable yourself; ask another administrator.")
		return
	}
	u, err := h.o.Accounts.GetUser(r.Context(), name)
	if errors.Is(err, accounts.ErrNotFound) {
		h.notFound(w, r)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	u.Disabled = disable
	if err := h.o.Accounts.UpdateUser(accounts.WithAudit(r.Context(), h.auditEntry(r, "user.update", u.Name, "changed disabled")), u); err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/admin/users", http.StatusSeeOther)
}
