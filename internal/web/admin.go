package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/webhook"
)

// The admin pages live under /settings/admin/ (docs/design/web.md, slice 6). Users,
// organisations, quotas and the audit log are for site administrators; runs,
// webhooks and deploy history are also for whoever the hub API lets see them (a
// namespace's readers see its runs, its administrators manage its hooks). Every
// check is the API's own (hubapi.Access), so a page is never looser than the API.

// WorkflowStore is what the run pages read of the store, and the approvals they
// record (sqlstore implements it).
type WorkflowStore interface {
	hubapi.WorkflowStore
	hubapi.WorkflowApprovalStore
}

// HookStore is what the webhook pages read and the redeliver button writes.
type HookStore interface {
	GetWebhook(ctx context.Context, id string) (webhook.Hook, error)
	ListWebhooks(ctx context.Context, f webhook.Filter) ([]webhook.Hook, error)
	ListWebhookDeliveries(ctx context.Context, hookID string, limit int) ([]webhook.Delivery, error)
	RedeliverWebhook(ctx context.Context, hookID string, deliveryID int64, actor string, now time.Time) (webhook.Delivery, error)
}

// DeployHistory reads a service's deploys and a namespace's services (the hub deploy
// API's store).
type DeployHistory interface {
	ListDeploys(ctx context.Context, namespace, service string, before, limit int) ([]deploy.Record, error)
	ListDeployServices(ctx context.Context, namespace, after string, limit int) ([]deploy.Record, error)
}

// Names of the admin pages' templates.
func init() {
	pageNames = append(pageNames, "admin", "users", "orgs", "org", "audit", "runs", "run", "hooks", "hook", "deploys")
	funcs["state"] = runState
	funcs["mib"] = func(n int64) int64 { return n >> 20 }
}

func (h *Handler) adminRoutes() {
	var wf hubapi.WorkflowStore
	if h.o.Workflows != nil {
		wf = h.o.Workflows
	}
	h.access = hubapi.NewAccess(h.o.Accounts, h.o.Policy, wf)
	if ds, ok := h.o.Webhooks.(webhook.DeliveryStore); ok {
		// The store the server passes keeps hooks whole; a narrower HookStore gets
		// the read pages only.
		h.access.WithWebhooks(ds, h.o.Keyring)
	}
	h.mux.HandleFunc("GET /settings/admin", h.adminIndex)
	h.mux.HandleFunc("GET /settings/admin/users", h.adminUsers)
	h.mux.HandleFunc("GET /settings/admin/orgs", h.adminOrgs)
	h.mux.HandleFunc("GET /settings/admin/orgs/{org}", h.adminOrg)
	h.mux.HandleFunc("POST /settings/admin/namespaces/{ns}/quota", h.adminSetQuota)
	h.mux.HandleFunc("GET /settings/admin/audit", h.adminAudit)
	h.mux.HandleFunc("GET /settings/admin/runs", h.runsList)
	h.mux.HandleFunc("GET /settings/admin/runs/{id}", h.runPage)
	h.mux.HandleFunc("GET /settings/admin/runs/{id}/logs", h.runLogStream)
	h.mux.HandleFunc("POST /settings/admin/runs/{id}/jobs/{job}/{decision}", h.runDecide)
	h.mux.HandleFunc("GET /settings/admin/webhooks", h.hooksList)
	h.mux.HandleFunc("GET /settings/admin/webhooks/{id}", h.hookPage)
	h.mux.HandleFunc("POST /settings/admin/webhooks/{id}/deliveries/{delivery}/redeliver", h.hookRedeliver)
	h.mux.HandleFunc("GET /settings/admin/deploys", h.deploysList)
	h.mux.HandleFunc("GET /settings/admin/policies", h.policiesList)
	h.orgFormRoutes()
	h.accountFormRoutes()
	h.hookFormRoutes()
	h.mux.HandleFunc("POST /settings/admin/policies", h.policySet)
	h.mux.HandleFunc("GET /settings/admin/policies/delete", h.policyDeleteForm)
	h.mux.HandleFunc("POST /settings/admin/policies/delete", h.policyDelete)
}

// requireSiteAdmin answers a signed-out visitor with the sign-in page and a signed-in
// user who is not a site administrator with 403, and returns false for both.
func (h *Handler) requireSiteAdmin(w http.ResponseWriter, r *http.Request) bool {
	if !h.requireViewer(w, r) {
		return false
	}
	if !viewerOf(r).user.Admin {
		h.fail(w, r, http.StatusForbidden, "Site administrators only.")
		return false
	}
	return true
}

// adminPage is the index of the admin pages.
type adminPage struct {
	basePage
	Namespace string
	// OrgName and OrgVisibility are the create-organisation form's input, kept
	// beside Error, its refusal.
	OrgName, OrgVisibility string
	Error                  string
}

func (h *Handler) adminIndex(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	h.render(w, r, http.StatusOK, "admin", adminPage{basePage: h.base(r, "Administration"), Namespace: viewerOf(r).user.Name})
}

// userRow is one account on the users page.
type userRow struct {
	Name, Email, Owner     string
	Admin, Robot, Disabled bool
	CreatedAt              time.Time
}

type usersPage struct {
	basePage
	Users []userRow
	Form  newUserForm
	Error string
}

func (h *Handler) adminUsers(w http.ResponseWriter, r *http.Request) {
	if !h.requireSiteAdmin(w, r) {
		return
	}
	h.renderUsers(w, r, http.StatusOK, newUserForm{}, "")
}

// renderUsers shows the users page with the create form's input and refusal.
func (h *Handler) renderUsers(w http.ResponseWriter, r *http.Request, status int, form newUserForm, problem string) {
	us, err := h.o.Accounts.ListUsers(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := usersPage{basePage: h.base(r, "Users"), Form: form, Error: problem}
	for _, u := range us {
		p.Users = append(p.Users, userRow{Name: u.Name, Email: u.Email, Owner: u.Owner, Admin: u.Admin, Robot: u.Robot,
			Disabled: u.Disabled, CreatedAt: u.CreatedAt})
	}
	h.render(w, r, status, "users", p)
}

// nsRow is one namespace with its storage.
type nsRow struct {
	Name       string
	Org        bool
	Visibility accounts.Visibility
	Used       int64
	Quota      int64
}

type orgsPage struct {
	basePage
	Namespaces []nsRow
}

func (h *Handler) adminOrgs(w http.ResponseWriter, r *http.Request) {
	if !h.requireSiteAdmin(w, r) {
		return
	}
	ctx := r.Context()
	nss, err := h.o.Accounts.ListNamespaces(ctx)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := orgsPage{basePage: h.base(r, "Namespaces and quotas")}
	for _, n := range nss {
		row := nsRow{Name: n.Name, Org: n.Org, Visibility: n.DefaultVisibility}
		if row.Used, row.Quota, err = h.o.Accounts.Usage(ctx, n.Name); err != nil && !errors.Is(err, accounts.ErrNotFound) {
			h.internal(w, r, err)
			return
		}
		p.Namespaces = append(p.Namespaces, row)
	}
	h.render(w, r, http.StatusOK, "orgs", p)
}

// teamView is a team with its members and grants.
type teamView struct {
	Name, Description string
	Members           []string
	Grants            []accounts.TeamGrant
}

type orgPage struct {
	basePage
	Org       string
	Teams     []teamView
	Used      int64
	Quota     int64
	SiteAdmin bool
	Notice    string
	Error     string
	// NewTeam is the create-team form's input, kept beside Error.
	NewTeam teamForm
}

// teamForm is what the create-team form was sent with.
type teamForm struct{ Name, Description string }

// adminOrg shows an organisation's teams, members, grants and storage to whoever
// administers it (as GET /api/v1/orgs/{org}/teams… with usage does).
func (h *Handler) adminOrg(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	h.renderOrg(w, r, http.StatusOK, r.PathValue("org"), "", "")
}

func (h *Handler) renderOrg(w http.ResponseWriter, r *http.Request, status int, org, notice, problem string) {
	h.renderOrgForm(w, r, status, org, notice, problem, teamForm{})
}

// renderOrgForm shows an organisation's page with a refusal and the create-team
// form's input.
func (h *Handler) renderOrgForm(w http.ResponseWriter, r *http.Request, status int, org, notice, problem string, team teamForm) {
	ctx := r.Context()
	v := viewerOf(r)
	ok, err := h.access.OrgAdmin(ctx, ptr(v.principal()), org)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if !ok {
		h.notFound(w, r)
		return
	}
	p := orgPage{basePage: h.base(r, org), Org: org, SiteAdmin: v.user.Admin, Notice: notice, Error: problem, NewTeam: team}
	teams, err := h.o.Accounts.ListTeams(ctx, org)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	for _, t := range teams {
		tv := teamView{Name: t.Name, Description: t.Description}
		if tv.Members, err = h.o.Accounts.ListTeamMembers(ctx, org, t.Name); err != nil {
			h.internal(w, r, err)
			return
		}
		if tv.Grants, err = h.o.Accounts.ListTeamGrants(ctx, org, t.Name); err != nil {
			h.internal(w, r, err)
			return
		}
		p.Teams = append(p.Teams, tv)
	}
	if p.Used, p.Quota, err = h.o.Accounts.Usage(ctx, org); err != nil {
		h.internal(w, r, err)
		return
	}
	h.render(w, r, status, "org", p)
}

// adminSetQuota sets a namespace's quota, as PUT /api/v1/namespaces/{ns}/quota does
// (site administrators only, audited as quota.change).
func (h *Handler) adminSetQuota(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	if !viewerOf(r).user.Admin {
		h.fail(w, r, http.StatusForbidden, "Site administrators only.")
		return
	}
	ns := r.PathValue("ns")
	back := "/settings/admin/orgs"
	mib := strings.TrimSpace(r.PostForm.Get("mib"))
	n, err := strconv.ParseInt(mib, 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		h.fail(w, r, http.StatusBadRequest, "A quota is a whole number of MiB (0 for no limit).")
		return
	}
	detail := "unlimited"
	if n > 0 {
		detail = strconv.FormatInt(n<<20, 10) + " bytes"
	}
	ctx := accounts.WithAudit(r.Context(), h.auditEntry(r, "quota.change", ns, detail+" (web)"))
	if err := h.o.Accounts.SetQuota(ctx, ns, n<<20); errors.Is(err, accounts.ErrNotFound) {
		h.notFound(w, r)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, back+"#ns-"+url.PathEscape(ns), http.StatusSeeOther)
}

// auditPage is a page of the audit log.
type auditPage struct {
	basePage
	Actor, Action, Since, Until string
	Entries                     []accounts.AuditEntry
	NextURL                     string
	Error                       string
}

// auditPageSize is the entries of one page of the audit log.
const auditPageSize = 100

// adminAudit shows the audit log, newest first, filtered by actor, action and a time
// range (as GET /api/v1/audit does, for site administrators only).
func (h *Handler) adminAudit(w http.ResponseWriter, r *http.Request) {
	if !h.requireSiteAdmin(w, r) {
		return
	}
	q := r.URL.Query()
	p := auditPage{basePage: h.base(r, "Audit log"), Actor: clip(q.Get("actor"), 256), Action: clip(q.Get("action"), 256),
		Since: q.Get("since"), Until: q.Get("until")}
	f := accounts.AuditFilter{Actor: p.Actor, Action: p.Action, Limit: auditPageSize}
	var err error
	if p.Since != "" {
		if f.Since, err = parseWhen(p.Since); err != nil {
			p.Error = "since: " + err.Error()
		}
	}
	if p.Until != "" {
		if f.Until, err = parseWhen(p.Until); err != nil {
			p.Error = "until: " + err.Error()
		}
	}
	if s := q.Get("before"); s != "" {
		if f.Before, err = strconv.ParseInt(s, 10, 64); err != nil || f.Before < 1 {
			p.Error = "before: want an entry number"
		}
	}
	if p.Error != "" {
		h.render(w, r, http.StatusBadRequest, "audit", p)
		return
	}
	entries, err := h.o.Accounts.ListAudit(r.Context(), f)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p.Entries = entries
	if len(entries) == auditPageSize {
		v := url.Values{"before": {strconv.FormatInt(entries[len(entries)-1].ID, 10)}}
		for k, s := range map[string]string{"actor": p.Actor, "action": p.Action, "since": p.Since, "until": p.Until} {
			if s != "" {
				v.Set(k, s)
			}
		}
		p.NextURL = "/settings/admin/audit?" + v.Encode()
	}
	h.render(w, r, http.StatusOK, "audit", p)
}

// parseWhen reads a time from a form: a date, a datetime-local value or RFC 3339, in
// UTC unless it says otherwise.
func parseWhen(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want a date (2006-01-02) or a time (2006-01-02T15:04)")
}

// clip cuts s to at most n bytes of valid UTF-8: filters are short, and a long one
// is a mistake.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s[:n])
		s = s[:n-size+1]
		if utf8.ValidString(s) {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// runState is what the run pages call a state.
func runState(s string) string { return strings.ReplaceAll(s, "_", " ") }

// url is the address of the embedded asset name with its content hash.
func (a assets) url(name string) string { return "/static/" + name + "?v=" + a.files[name].hash }
