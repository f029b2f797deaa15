package hubapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/webhook"
)

// Webhooks are managed by whoever administers what they watch: site administrators
// every hook (site hooks only them), a namespace's administrators (the user whose
// namespace it is, an organisation's admins) its namespace and repository hooks, and a
// repository's admins that repository's hooks. An access token also needs
// hub:webhooks:read to read them and hub:webhooks:write to change them.

// writes wraps an endpoint that changes area so that an access token reaches it only
// with a hub:AREA:write scope.
func writes(area string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
		if !p.MayWriteHub(area) {
			return denied("this access token may not change %s: that needs a token with the scope hub:%s:write, or a password login", area, area)
		}
		return h(w, r, p)
	}
}

func (a *api) webhookRoutes() {
	a.route("/api/v1/webhooks", map[string]handlerFunc{
		"GET":  reads(scope.HubWebhooks, a.listWebhooks),
		"POST": writes(scope.HubWebhooks, a.createWebhook),
	})
	a.route("/api/v1/webhooks/{id}", map[string]handlerFunc{
		"GET":    reads(scope.HubWebhooks, a.getWebhook),
		"PATCH":  writes(scope.HubWebhooks, a.updateWebhook),
		"DELETE": writes(scope.HubWebhooks, a.deleteWebhook),
	})
	a.route("/api/v1/webhooks/{id}/rotate-secret", map[string]handlerFunc{"POST": writes(scope.HubWebhooks, a.rotateWebhookSecret)})
	a.route("/api/v1/webhooks/{id}/test", map[string]handlerFunc{"POST": writes(scope.HubWebhooks, a.testWebhook)})
	a.route("/api/v1/webhooks/{id}/deliveries", map[string]handlerFunc{"GET": reads(scope.HubWebhooks, a.listDeliveries)})
	a.route("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", map[string]handlerFunc{"POST": writes(scope.HubWebhooks, a.redeliver)})
}

func deliveryView(d webhook.Delivery) hubtypes.WebhookDelivery {
	v := hubtypes.WebhookDelivery{ID: d.ID, Event: d.EventID, Type: string(d.EventType), Repository: d.Repository, State: d.State,
		Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: formatTime(d.CreatedAt)}
	if d.State == webhook.StatePending {
		v.NextAt = formatTime(d.NextAt)
	}
	if d.Job != "" {
		if j, err := webhook.ParsePreheatJob(d.Job); err == nil {
			v.Job = &hubtypes.WebhookJob{ID: j.ID, State: j.State, Deadline: formatTime(j.Deadline)}
		}
		if d.Running() {
			v.State = webhook.StateRunning
		}
	}
	for _, a := range d.Log {
		v.Log = append(v.Log, hubtypes.WebhookAttempt{Time: a.Started.UTC().Format(time.RFC3339Nano), DurationMillis: a.Duration.Milliseconds(),
			Status: a.Status, Error: a.Error, RequestHeaders: a.RequestHeaders, ResponseHeaders: a.ResponseHeaders, ResponseBody: a.ResponseBody})
	}
	return v
}

// listDeliveries answers GET /api/v1/webhooks/{id}/deliveries[?limit=N]: the hook's
// newest deliveries (at most 50 unless limit says, up to 1000) with their attempts.
func (a *api) listDeliveries(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	h, err := a.managedWebhook(r, p)
	if err != nil {
		return err
	}
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return invalid("limit %q: want 1 to 1000", s)
		}
	}
	ds, err := a.webhooks.ListWebhookDeliveries(r.Context(), h.ID, limit)
	if err != nil {
		return err
	}
	out := []hubtypes.WebhookDelivery{}
	for _, d := range ds {
		out = append(out, deliveryView(d))
	}
	return reply(w, http.StatusOK, out)
}

// redeliver answers POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver: the
// delivery's event is queued again for the hook, due now, with the same event id.
func (a *api) redeliver(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	h, err := a.managedWebhook(r, p)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil {
		return notFound("delivery %s not found", r.PathValue("delivery"))
	}
	d, err := a.webhooks.RedeliverWebhook(r.Context(), h.ID, id, p.Name(), a.now())
	if errors.Is(err, webhook.ErrNotFound) {
		return notFound("delivery %d of webhook %s not found", id, h.ID)
	}
	if err != nil {
		return err
	}
	return reply(w, http.StatusAccepted, deliveryView(d))
}

// mayManageWebhooks reports whether p may manage hooks of scope on target.
func (a *api) mayManageWebhooks(ctx context.Context, p *authz.Principal, sc, target string) (bool, error) {
	if p.User == nil || p.User.Disabled {
		return false, nil
	}
	if p.User.Admin {
		return true, nil
	}
	if sc == webhook.ScopeSite || p.User.Robot {
		// Robots are service accounts: a robot that could add hooks could send its
		// organisation's events anywhere.
		return false, nil
	}
	ns, _, _ := strings.Cut(target, "/")
	if ns == p.User.Name {
		return true, nil
	}
	var e *errcode.Error
	switch _, err := a.orgAdmin(ctx, p, ns); {
	case err == nil:
		return true, nil
	case errors.As(err, &e) && (e.Code == errcode.Denied || e.Code == errcode.NameUnknown):
	default:
		return false, err
	}
	if sc == webhook.ScopeRepository {
		role, err := a.policy.RoleOn(ctx, p.User, target)
		if err != nil {
			return false, err
		}
		return role == accounts.RoleAdmin, nil
	}
	return false, nil
}

func (a *api) webhookView(ctx context.Context, h webhook.Hook) hubtypes.Webhook {
	v := hubtypes.Webhook{ID: h.ID, Scope: h.Scope, Target: h.Target, URL: h.URL, Repositories: h.Repositories, Tags: h.Tags,
		Format: h.Format, Headers: h.HeaderNames, Enabled: h.Enabled, DisabledReason: h.DisabledReason, Failures: h.Failures,
		CreatedAt: formatTime(h.CreatedAt), Kind: h.Kind}
	if h.HasPrevious(a.now()) {
		v.PreviousSecretExpiresAt = formatTime(h.PreviousExpires)
	}
	if v.Kind == "" {
		v.Kind = webhook.KindWebhook
	}
	if s := h.Dragonfly; s != nil {
		v.Dragonfly = &hubtypes.WebhookDragonfly{API: s.API, Scope: s.Scope, SchedulerClusterIDs: s.SchedulerClusterIDs, Platform: s.Platform,
			Timeout: s.Timeout.String(), HasToken: h.DragonflyToken != ""}
	}
	for _, t := range h.Events {
		v.Events = append(v.Events, string(t))
	}
	if u, err := a.webhooks.UserByID(ctx, h.CreatedBy); err == nil {
		v.CreatedBy = u.Name
	}
	return v
}

func (a *api) createWebhook(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	if err := a.needKeyring(); err != nil {
		return err
	}
	var req hubtypes.CreateWebhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	h, secret, err := a.addWebhook(r, p, req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, hubtypes.CreateWebhookResponse{Webhook: a.webhookView(r.Context(), h), Secret: secret})
}

// addWebhook creates the hook req asks for, as POST /api/v1/webhooks does: checked,
// for whoever manages what it watches, its secret (given, or made) and headers
// sealed; the store audits it. It returns the hook and its secret ("" for a
// dragonfly hook, which signs nothing).
func (a *api) addWebhook(r *http.Request, p *authz.Principal, req hubtypes.CreateWebhookRequest) (webhook.Hook, string, error) {
	if err := a.needKeyring(); err != nil {
		return webhook.Hook{}, "", err
	}
	if req.Format == "" {
		req.Format = webhook.FormatHubctl
	}
	now := a.now().UTC()
	h := webhook.Hook{ID: uuid.NewString(), Scope: req.Scope, Target: req.Target, URL: req.URL, Repositories: req.Repositories,
		Tags: req.Tags, Format: req.Format, Enabled: !req.Disabled, CreatedBy: p.User.ID, CreatedAt: now, UpdatedAt: now}
	for _, t := range req.Events {
		h.Events = append(h.Events, events.Type(t))
	}
	pat, err := dragonflySettings(&h, req)
	if err != nil {
		return h, "", err
	}
	if err := webhook.Validate(h, req.Headers); err != nil {
		return h, "", invalid("%s", strings.TrimPrefix(err.Error(), webhook.ErrInvalid.Error()+": "))
	}
	if err := webhook.ValidateKind(h, pat); err != nil {
		return h, "", invalid("%s", strings.TrimPrefix(err.Error(), webhook.ErrInvalid.Error()+": "))
	}
	if h.Scope == webhook.ScopeRepository {
		if err := reference.ValidateRepository(h.Target); err != nil {
			return h, "", invalid("target: %v", err)
		}
	}
	switch ok, err := a.mayManageWebhooks(r.Context(), p, h.Scope, h.Target); {
	case err != nil:
		return h, "", err
	case !ok && h.Scope == webhook.ScopeSite:
		return h, "", denied("site webhooks are for site administrators")
	case !ok:
		return h, "", denied("webhooks of %s are managed by its administrators", h.Target)
	}
	secret := req.Secret
	if secret == "" {
		var err error
		if secret, err = webhook.NewSecret(); err != nil {
			return h, "", err
		}
	} else if _, err := webhook.SecretKey(secret); err != nil {
		return h, "", invalid("secret: want %s and the base64 of 24 to 64 bytes", webhook.SecretPrefix)
	}
	if err := webhook.Seal(a.keyring, &h, secret, req.Headers); err != nil {
		return h, "", err
	}
	if err := webhook.SealDragonflyToken(a.keyring, &h, pat); err != nil {
		return h, "", err
	}
	if err := a.webhooks.CreateWebhook(r.Context(), h, p.Name()); err != nil {
		return h, "", err
	}
	if h.Kind == webhook.KindDragonfly {
		// It signs nothing: the secret it holds (every hook has one) is never used.
		secret = ""
	}
	return h, secret, nil
}

// listWebhooks answers GET /api/v1/webhooks[?namespace=NS]: the hooks the caller
// manages, of NS (default: every hook for admins, the caller's own namespace else).
func (a *api) listWebhooks(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	f := webhook.Filter{All: p.User.Admin}
	if ns := r.URL.Query().Get("namespace"); ns != "" {
		f = webhook.Filter{Namespaces: []string{ns}}
	} else if !p.User.Admin {
		f.Namespaces = []string{p.User.Name}
	}
	hooks, err := a.webhooks.ListWebhooks(r.Context(), f)
	if err != nil {
		return err
	}
	out := []hubtypes.Webhook{}
	for _, h := range hooks {
		ok, err := a.mayManageWebhooks(r.Context(), p, h.Scope, h.Target)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, a.webhookView(r.Context(), h))
		}
	}
	return reply(w, http.StatusOK, out)
}

// managedWebhook returns the hook of the path if p manages it; one answer, not found,
// for a hook that is missing and one that is not p's.
func (a *api) managedWebhook(r *http.Request, p *authz.Principal) (webhook.Hook, error) {
	id := r.PathValue("id")
	h, err := a.webhooks.GetWebhook(r.Context(), id)
	if errors.Is(err, webhook.ErrNotFound) {
		return h, notFound("webhook %s not found", id)
	}
	if err != nil {
		return h, err
	}
	ok, err := a.mayManageWebhooks(r.Context(), p, h.Scope, h.Target)
	if err != nil {
		return h, err
	}
	if !ok {
		return h, notFound("webhook %s not found", id)
	}
	return h, nil
}

func (a *api) getWebhook(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	h, err := a.managedWebhook(r, p)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, a.webhookView(r.Context(), h))
}

func (a *api) deleteWebhook(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if a.webhooks == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	if err := a.removeWebhook(r, p); err != nil {
		return err
	}
	return noContent(w)
}

// removeWebhook deletes the hook of r's path, as DELETE /api/v1/webhooks/{id} does:
// whoever manages it; the store audits it.
func (a *api) removeWebhook(r *http.Request, p *authz.Principal) error {
	h, err := a.managedWebhook(r, p)
	if err != nil {
		return err
	}
	if err := a.webhooks.DeleteWebhook(r.Context(), h.ID, p.Name()); errors.Is(err, webhook.ErrNotFound) {
		return notFound("webhook %s not found", h.ID)
	} else if err != nil {
		return err
	}
	return nil
}

// dragonflySettings sets the kind and Dragonfly settings of h from req, with their
// defaults (a dragonfly hook wants manifest.pushed), and returns the manager's
// personal access token.
func dragonflySettings(h *webhook.Hook, req hubtypes.CreateWebhookRequest) (string, error) {
	h.Kind = req.Kind
	if h.Kind == "" {
		h.Kind = webhook.KindWebhook
	}
	d := req.Dragonfly
	if d == nil {
		return "", nil
	}
	if h.Kind != webhook.KindDragonfly {
		return "", invalid("dragonfly settings are for hooks of kind %s", webhook.KindDragonfly)
	}
	if req.Secret != "" {
		return "", invalid("a dragonfly hook signs nothing: give it no secret")
	}
	s := webhook.Dragonfly{API: d.API, Scope: d.Scope, SchedulerClusterIDs: d.SchedulerClusterIDs, Platform: d.Platform}
	if d.Timeout != "" {
		t, err := time.ParseDuration(d.Timeout)
		if err != nil {
			return "", invalid("dragonfly timeout %q: want a duration such as 30m", d.Timeout)
		}
		s.Timeout = t
	}
	s = s.WithDefaults()
	h.Dragonfly = &s
	if len(h.Events) == 0 {
		h.Events = []events.Type{events.ManifestPushed}
	}
	return d.Token, nil
}
