package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// The forms that create and delete users, organisations and teams. Each goes through
// hubapi.Access, which runs the API endpoint's own check, store call and audit entry,
// so a form can do no more than POST or DELETE on /api/v1/users, /api/v1/orgs and
// /api/v1/orgs/{org}/teams. A delete is confirmed on a page of its own by typing the
// name (no JavaScript needed).

func init() {
	pageNames = append(pageNames, "confirm")
}

func (h *Handler) accountFormRoutes() {
	h.mux.HandleFunc("POST /settings/admin/users", h.userCreate)
	h.mux.HandleFunc("GET /settings/admin/users/{name}/delete", h.userDeleteForm)
	h.mux.HandleFunc("POST /settings/admin/users/{name}/delete", h.userDelete)
	h.mux.HandleFunc("POST /settings/admin/orgs", h.orgCreate)
	h.mux.HandleFunc("GET /settings/admin/orgs/{org}/delete", h.orgDeleteForm)
	h.mux.HandleFunc("POST /settings/admin/orgs/{org}/delete", h.orgDelete)
	h.mux.HandleFunc("POST /settings/admin/orgs/{org}/teams", h.teamCreate)
	h.mux.HandleFunc("GET /settings/admin/orgs/{org}/teams/{team}/delete", h.teamDeleteForm)
	h.mux.HandleFunc("POST /settings/admin/orgs/{org}/teams/{team}/delete", h.teamDelete)
}

// apiRefusal answers err of an Access call: its message on the page render makes
// with the API's status, or a 500 for a failure that is not the viewer's. render is
// nil where the refusal is a page of its own.
func (h *Handler) apiRefusal(w http.ResponseWriter, r *http.Request, err error, render func(status int, msg string)) {
	msg, status := hubapi.Message(err)
	switch {
	case msg == "":
		h.internal(w, r, err)
	case status == http.StatusNotFound && render == nil:
		h.notFound(w, r)
	case render == nil:
		h.fail(w, r, status, msg)
	default:
		render(status, clip(msg, 300))
	}
}

// newUserForm is what the users page's create form was sent with (never the
// password), to show again beside a refusal.
type newUserForm struct {
	Name, Email string
	Admin       bool
}

func (h *Handler) userCreate(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	f := r.PostForm
	req := hubtypes.CreateUserRequest{Name: strings.TrimSpace(f.Get("name")), Email: strings.TrimSpace(f.Get("email")),
		Password: f.Get("password"), Admin: f.Get("admin") == "on"}
	if _, err := h.access.CreateUser(r, ptr(viewerOf(r).principal()), req); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			if !viewerOf(r).user.Admin {
				h.fail(w, r, status, msg)
				return
			}
			h.renderUsers(w, r, status, newUserForm{Name: clip(req.Name, 256), Email: clip(req.Email, 256), Admin: req.Admin}, msg)
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/users#user-"+url.PathEscape(req.Name), http.StatusSeeOther)
}

// confirmPage asks for a deletion to be confirmed by typing the name of what goes.
type confirmPage struct {
	basePage
	What   string // "user", "organisation", "team", "webhook"
	Name   string // what goes
	Type   string // what must be typed; "" means Name
	Detail string // what else names it (a webhook's URL)
	Action string // the form's address
	Back   string
	Purge  bool // offer to delete the namespace's repositories too
	Error  string
}

func (h *Handler) confirm(w http.ResponseWriter, r *http.Request, status int, p confirmPage) {
	if p.Type == "" {
		p.Type = p.Name
	}
	p.basePage = h.base(r, "Delete "+p.What+" "+p.Name)
	h.render(w, r, status, "confirm", p)
}

// confirmed reports whether the form's typed name is name; if not it shows the
// confirmation page again with a refusal.
func (h *Handler) confirmed(w http.ResponseWriter, r *http.Request, p confirmPage) bool {
	if p.Type == "" {
		p.Type = p.Name
	}
	if r.PostForm.Get("confirm") == p.Type {
		return true
	}
	p.Error = "Type it exactly to confirm; nothing was deleted."
	h.confirm(w, r, http.StatusBadRequest, p)
	return false
}

func userConfirm(name string) confirmPage {
	esc := url.PathEscape(name)
	return confirmPage{What: "user", Name: name, Action: "/settings/admin/users/" + esc + "/delete", Back: "/settings/admin/users", Purge: true}
}

func (h *Handler) userDeleteForm(w http.ResponseWriter, r *http.Request) {
	if !h.requireSiteAdmin(w, r) {
		return
	}
	name := r.PathValue("name")
	if _, err := h.o.Accounts.GetUser(r.Context(), name); err != nil {
		h.notFound(w, r)
		return
	}
	h.confirm(w, r, http.StatusOK, userConfirm(name))
}

func (h *Handler) userDelete(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	if !viewerOf(r).user.Admin {
		h.fail(w, r, http.StatusForbidden, "Site administrators only.")
		return
	}
	p := userConfirm(r.PathValue("name"))
	if !h.confirmed(w, r, p) {
		return
	}
	if _, err := h.access.DeleteUser(r, ptr(viewerOf(r).principal()), p.Name, r.PostForm.Get("purge") == "on"); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			p.Error = msg
			h.confirm(w, r, status, p)
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/users", http.StatusSeeOther)
}

func (h *Handler) orgCreate(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	req := hubtypes.CreateOrgRequest{Name: strings.TrimSpace(r.PostForm.Get("name")), DefaultVisibility: r.PostForm.Get("visibility")}
	ns, err := h.access.CreateOrg(r, ptr(viewerOf(r).principal()), req)
	if err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			h.render(w, r, status, "admin", adminPage{basePage: h.base(r, "Administration"), Namespace: viewerOf(r).user.Name,
				OrgName: clip(req.Name, 256), OrgVisibility: req.DefaultVisibility, Error: msg})
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/orgs/"+url.PathEscape(ns.Name), http.StatusSeeOther)
}

func orgConfirm(org string) confirmPage {
	return confirmPage{What: "organisation", Name: org, Action: "/settings/admin/orgs/" + url.PathEscape(org) + "/delete",
		Back: "/settings/admin/orgs/" + url.PathEscape(org), Purge: true}
}

// orgAdminPage checks that the viewer administers the path's organisation (else 404,
// as its page does) and returns its name.
func (h *Handler) orgAdminPage(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !h.requireViewer(w, r) {
		return "", false
	}
	org := r.PathValue("org")
	admin, err := h.access.OrgAdmin(r.Context(), ptr(viewerOf(r).principal()), org)
	if err != nil {
		h.internal(w, r, err)
		return "", false
	}
	if !admin {
		h.notFound(w, r)
		return "", false
	}
	return org, true
}

func (h *Handler) orgDeleteForm(w http.ResponseWriter, r *http.Request) {
	if org, ok := h.orgAdminPage(w, r); ok {
		h.confirm(w, r, http.StatusOK, orgConfirm(org))
	}
}

func (h *Handler) orgDelete(w http.ResponseWriter, r *http.Request) {
	org, ok := h.orgForm(w, r)
	if !ok {
		return
	}
	p := orgConfirm(org)
	if !h.confirmed(w, r, p) {
		return
	}
	if _, err := h.access.DeleteOrg(r, ptr(viewerOf(r).principal()), org, r.PostForm.Get("purge") == "on"); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			p.Error = msg
			h.confirm(w, r, status, p)
		})
		return
	}
	http.Redirect(w, r, "/settings/admin", http.StatusSeeOther)
}

func (h *Handler) teamCreate(w http.ResponseWriter, r *http.Request) {
	org, ok := h.orgForm(w, r)
	if !ok {
		return
	}
	req := hubtypes.CreateTeamRequest{Name: strings.TrimSpace(r.PostForm.Get("name")), Description: strings.TrimSpace(r.PostForm.Get("description"))}
	if _, err := h.access.CreateTeam(r, ptr(viewerOf(r).principal()), org, req); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			h.renderOrgForm(w, r, status, org, "", msg, teamForm{Name: clip(req.Name, 256), Description: clip(req.Description, 1024)})
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/orgs/"+url.PathEscape(org)+"#team-"+url.PathEscape(req.Name), http.StatusSeeOther)
}

func teamConfirm(org, team string) confirmPage {
	base := "/settings/admin/orgs/" + url.PathEscape(org)
	return confirmPage{What: "team", Name: team, Action: base + "/teams/" + url.PathEscape(team) + "/delete", Back: base}
}

func (h *Handler) teamDeleteForm(w http.ResponseWriter, r *http.Request) {
	org, ok := h.orgAdminPage(w, r)
	if !ok {
		return
	}
	team := r.PathValue("team")
	teams, err := h.o.Accounts.ListTeams(r.Context(), org)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	for _, t := range teams {
		if t.Name == team {
			h.confirm(w, r, http.StatusOK, teamConfirm(org, team))
			return
		}
	}
	h.notFound(w, r)
}

func (h *Handler) teamDelete(w http.ResponseWriter, r *http.Request) {
	org, ok := h.orgForm(w, r)
	if !ok {
		return
	}
	p := teamConfirm(org, r.PathValue("team"))
	if !h.confirmed(w, r, p) {
		return
	}
	if err := h.access.DeleteTeam(r, ptr(viewerOf(r).principal()), org, p.Name); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			p.Error = msg
			h.confirm(w, r, status, p)
		})
		return
	}
	http.Redirect(w, r, p.Back, http.StatusSeeOther)
}
