package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/webhook"
)

// Webhooks: the hooks the viewer manages (site administrators every one, a
// namespace's administrators its hooks, a repository's its hooks, as the hub API
// decides), their delivery log, and the redeliver button.

// hooksShown bounds the deliveries a hook's page shows.
const hooksShown = 50

// hookRow is a webhook in a list.
type hookRow struct {
	ID, Scope, Target, URL, Format, DisabledReason string
	Enabled                                        bool
	Failures                                       int
}

type hooksPage struct {
	basePage
	Namespace string
	Hooks     []hookRow
	// Form is the create form's input, kept beside Error, its refusal.
	Form  hookForm
	Error string
}

func hookRowOf(h webhook.Hook) hookRow {
	return hookRow{ID: h.ID, Scope: h.Scope, Target: h.Target, URL: h.URL, Format: h.Format, DisabledReason: h.DisabledReason,
		Enabled: h.Enabled, Failures: h.Failures}
}

// hooksList answers /settings/admin/webhooks[?namespace=NS], as GET
// /api/v1/webhooks does: site administrators see every hook, others their own
// namespace's (or NS's), each only if they manage it.
func (h *Handler) hooksList(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	if h.o.Webhooks == nil {
		h.notFound(w, r)
		return
	}
	ns := clip(r.URL.Query().Get("namespace"), 256)
	form := hookForm{Scope: webhook.ScopeNamespace, Target: ns, Format: webhook.FormatHubctl}
	if form.Target == "" {
		form.Target = viewerOf(r).user.Name
	}
	h.renderHooks(w, r, http.StatusOK, ns, form, "")
}

// renderHooks shows the hooks the viewer manages (of ns) with the create form's input
// and refusal.
func (h *Handler) renderHooks(w http.ResponseWriter, r *http.Request, status int, ns string, form hookForm, problem string) {
	ctx := r.Context()
	v := viewerOf(r)
	p := hooksPage{basePage: h.base(r, "Webhooks"), Namespace: ns, Form: form, Error: problem}
	f := webhook.Filter{All: v.user.Admin}
	if p.Namespace != "" {
		f = webhook.Filter{Namespaces: []string{p.Namespace}}
	} else if !v.user.Admin {
		f.Namespaces = []string{v.user.Name}
	}
	hooks, err := h.o.Webhooks.ListWebhooks(ctx, f)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	for _, hk := range hooks {
		ok, err := h.access.ManagesWebhook(ctx, ptr(v.principal()), hk.Scope, hk.Target)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if ok {
			p.Hooks = append(p.Hooks, hookRowOf(hk))
		}
	}
	h.render(w, r, status, "hooks", p)
}

// attemptRow is one attempt of a delivery.
type attemptRow struct {
	Started  time.Time
	Duration time.Duration
	Status   int
	Error    string
	Body     string
}

// deliveryRow is one delivery of a hook.
type deliveryRow struct {
	ID         int64
	Event      string
	Type       string
	Repository string
	State      string
	Attempts   []attemptRow
	LastStatus int
	LastError  string
	CreatedAt  time.Time
}

type hookPage struct {
	basePage
	Hook       hookRow
	Deliveries []deliveryRow
	Notice     string
	// Form is the edit form's input, kept beside Error, its refusal.
	Form           hookForm
	Error          string
	PreviousSecret bool // a rotated-out secret still signs
}

// managedHook returns the hook of the path if the viewer manages it; 404 alike for a
// missing hook and one that is not theirs.
func (h *Handler) managedHook(w http.ResponseWriter, r *http.Request) (webhook.Hook, bool) {
	if h.o.Webhooks == nil {
		h.notFound(w, r)
		return webhook.Hook{}, false
	}
	hk, err := h.o.Webhooks.GetWebhook(r.Context(), r.PathValue("id"))
	if errors.Is(err, webhook.ErrNotFound) {
		h.notFound(w, r)
		return hk, false
	} else if err != nil {
		h.internal(w, r, err)
		return hk, false
	}
	ok, err := h.access.ManagesWebhook(r.Context(), ptr(viewerOf(r).principal()), hk.Scope, hk.Target)
	if err != nil {
		h.internal(w, r, err)
		return hk, false
	}
	if !ok {
		h.notFound(w, r)
		return hk, false
	}
	return hk, true
}

func (h *Handler) hookPage(w http.ResponseWriter, r *http.Request) {
	if !h.requireViewer(w, r) {
		return
	}
	hk, ok := h.managedHook(w, r)
	if !ok {
		return
	}
	h.renderHook(w, r, http.StatusOK, hk, hookFormFrom(hk), "")
}

// renderHook shows hook hk's page with the edit form's input and refusal.
func (h *Handler) renderHook(w http.ResponseWriter, r *http.Request, status int, hk webhook.Hook, form hookForm, problem string) {
	ds, err := h.o.Webhooks.ListWebhookDeliveries(r.Context(), hk.ID, hooksShown)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := hookPage{basePage: h.base(r, "Webhook "+hk.ID), Hook: hookRowOf(hk), Form: form, Error: problem,
		PreviousSecret: hk.HasPrevious(h.o.Now())}
	if d := r.URL.Query().Get("redelivered"); d != "" {
		p.Notice = "The delivery was queued again; it shows here as a new delivery."
	}
	for _, d := range ds {
		row := deliveryRow{ID: d.ID, Event: d.EventID, Type: string(d.EventType), Repository: d.Repository, State: d.State,
			LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: d.CreatedAt}
		for _, a := range d.Log {
			row.Attempts = append(row.Attempts, attemptRow{Started: a.Started, Duration: a.Duration, Status: a.Status, Error: a.Error,
				Body: a.ResponseBody})
		}
		p.Deliveries = append(p.Deliveries, row)
	}
	h.render(w, r, status, "hook", p)
}

// hookRedeliver queues a delivery's event again for its hook (POST …/redeliver of
// the hub API: whoever manages the hook; the store audits it).
func (h *Handler) hookRedeliver(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	hk, ok := h.managedHook(w, r)
	if !ok {
		return
	}
	if p := viewerOf(r).principal(); !p.MayWriteHub(scope.HubWebhooks) {
		h.fail(w, r, http.StatusForbidden, "You may not change webhooks.")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		h.notFound(w, r)
		return
	}
	d, err := h.o.Webhooks.RedeliverWebhook(r.Context(), hk.ID, id, viewerOf(r).principal().Name(), h.o.Now())
	if errors.Is(err, webhook.ErrNotFound) {
		h.notFound(w, r)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/settings/admin/webhooks/%s?redelivered=%d", hk.ID, d.ID), http.StatusSeeOther)
}
