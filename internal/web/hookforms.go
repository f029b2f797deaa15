package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/webhook"
)

// The webhook forms: create, edit (URL, events, filters, format), turn on or off,
// rotate the secret, delete. Each goes through hubapi.Access, the API endpoint's own
// code once its request is read, so the checks, the sealing and the store's audit
// entry are the API's. A secret is shown once, in the answer to the form that made
// it (never stored in a page afterwards, never in a URL).

func init() {
	pageNames = append(pageNames, "hooksecret")
}

func (h *Handler) hookFormRoutes() {
	h.mux.HandleFunc("POST /settings/admin/webhooks", h.hookCreate)
	h.mux.HandleFunc("POST /settings/admin/webhooks/{id}", h.hookEdit)
	h.mux.HandleFunc("POST /settings/admin/webhooks/{id}/enabled", h.hookSetEnabled)
	h.mux.HandleFunc("POST /settings/admin/webhooks/{id}/rotate-secret", h.hookRotate)
	h.mux.HandleFunc("GET /settings/admin/webhooks/{id}/delete", h.hookDeleteForm)
	h.mux.HandleFunc("POST /settings/admin/webhooks/{id}/delete", h.hookDelete)
}

// hookForm is what a hook's create or edit form holds, to show again beside a
// refusal.
type hookForm struct {
	Scope, Target, URL, Events, Repositories, Tags, Format string
	Disabled                                               bool
}

// list splits a form field of names separated by commas or white space.
func list(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		out = append(out, f)
	}
	return out
}

func hookFormOf(r *http.Request) hookForm {
	f := r.PostForm
	return hookForm{Scope: f.Get("scope"), Target: clip(strings.TrimSpace(f.Get("target")), 256), URL: clip(strings.TrimSpace(f.Get("url")), 2048),
		Events: clip(f.Get("events"), 2048), Repositories: clip(f.Get("repositories"), 2048), Tags: clip(f.Get("tags"), 2048),
		Format: f.Get("format"), Disabled: f.Get("disabled") == "on"}
}

func hookFormFrom(hk webhook.Hook) hookForm {
	var evs []string
	for _, e := range hk.Events {
		evs = append(evs, string(e))
	}
	return hookForm{Scope: hk.Scope, Target: hk.Target, URL: hk.URL, Events: strings.Join(evs, ", "),
		Repositories: strings.Join(hk.Repositories, ", "), Tags: strings.Join(hk.Tags, ", "), Format: hk.Format, Disabled: !hk.Enabled}
}

// hookSecretPage shows a hook's new secret, once.
type hookSecretPage struct {
	basePage
	Hook   hookRow
	Secret string
	Made   bool // created (else rotated)
}

func (h *Handler) showSecret(w http.ResponseWriter, r *http.Request, status int, hk webhook.Hook, secret string, made bool) {
	// The secret is in this answer only: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "hooksecret", hookSecretPage{basePage: h.base(r, "Webhook "+hk.ID), Hook: hookRowOf(hk), Secret: secret, Made: made})
}

func (h *Handler) hookCreate(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	if h.o.Webhooks == nil {
		h.notFound(w, r)
		return
	}
	f := hookFormOf(r)
	req := hubtypes.CreateWebhookRequest{Scope: f.Scope, Target: f.Target, URL: f.URL, Events: list(f.Events),
		Repositories: list(f.Repositories), Tags: list(f.Tags), Format: f.Format, Disabled: f.Disabled}
	if req.Scope == webhook.ScopeSite {
		req.Target = ""
	}
	hk, secret, err := h.access.CreateWebhook(r, ptr(viewerOf(r).principal()), req)
	if err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			h.renderHooks(w, r, status, "", f, msg)
		})
		return
	}
	h.showSecret(w, r, http.StatusCreated, hk, secret, true)
}

func (h *Handler) hookEdit(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	hk, ok := h.managedHook(w, r)
	if !ok {
		return
	}
	f := hookFormOf(r)
	req := hubtypes.UpdateWebhookRequest{URL: hubtypes.Some(f.URL), Events: hubtypes.Some(list(f.Events)),
		Repositories: hubtypes.Some(list(f.Repositories)), Tags: hubtypes.Some(list(f.Tags)), Format: hubtypes.Some(f.Format)}
	h.hookChanged(w, r, hk, f, req)
}

// hookChanged applies req to hk and answers: back to its page, or the page with
// the refusal beside the form's input.
func (h *Handler) hookChanged(w http.ResponseWriter, r *http.Request, hk webhook.Hook, f hookForm, req hubtypes.UpdateWebhookRequest) {
	if _, err := h.access.UpdateWebhook(r, ptr(viewerOf(r).principal()), req); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			f.Scope, f.Target = hk.Scope, hk.Target
			h.renderHook(w, r, status, hk, f, msg)
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/webhooks/"+url.PathEscape(hk.ID), http.StatusSeeOther)
}

func (h *Handler) hookSetEnabled(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	hk, ok := h.managedHook(w, r)
	if !ok {
		return
	}
	req := hubtypes.UpdateWebhookRequest{Enabled: hubtypes.Some(r.PostForm.Get("enabled") == "true")}
	h.hookChanged(w, r, hk, hookFormFrom(hk), req)
}

func (h *Handler) hookRotate(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	hk, ok := h.managedHook(w, r)
	if !ok {
		return
	}
	req := hubtypes.RotateWebhookSecretRequest{ExpirePreviousIn: r.PostForm.Get("expire_previous_in")}
	hk2, secret, err := h.access.RotateWebhookSecret(r, ptr(viewerOf(r).principal()), req)
	if err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			h.renderHook(w, r, status, hk, hookFormFrom(hk), msg)
		})
		return
	}
	h.showSecret(w, r, http.StatusOK, hk2, secret, false)
}

func hookConfirm(hk webhook.Hook) confirmPage {
	base := "/settings/admin/webhooks/" + url.PathEscape(hk.ID)
	return confirmPage{What: "webhook", Name: hk.ID, Type: "delete", Detail: hk.URL, Action: base + "/delete", Back: base}
}

func (h *Handler) hookDeleteForm(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	if hk, ok := h.managedHook(w, r); ok {
		h.confirm(w, r, http.StatusOK, hookConfirm(hk))
	}
}

func (h *Handler) hookDelete(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	hk, ok := h.managedHook(w, r)
	if !ok {
		return
	}
	p := hookConfirm(hk)
	if !h.confirmed(w, r, p) {
		return
	}
	if err := h.access.DeleteWebhook(r, ptr(viewerOf(r).principal())); err != nil {
		h.apiRefusal(w, r, err, func(status int, msg string) {
			p.Error = msg
			h.confirm(w, r, status, p)
		})
		return
	}
	http.Redirect(w, r, "/settings/admin/webhooks", http.StatusSeeOther)
}

// hookScopes are the scopes the create form offers.
var hookScopes = []string{webhook.ScopeNamespace, webhook.ScopeRepository, webhook.ScopeSite}

func init() {
	funcs["hookScopes"] = func() []string { return hookScopes }
	funcs["hookFormats"] = func() []string { return webhook.Formats }
}
