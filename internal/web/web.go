// Package web is the hub's web UI: server-rendered pages on `/` of the serve listener
// (explore, namespaces, repositories, tags and manifests, access tokens) with sign-in
// sessions, CSRF tokens and strict security headers. It follows golang/pkgsite's
// internal/frontend: one handler and one typed page struct per page, templates parsed
// once at start, static assets embedded; no JavaScript is needed but for the copy
// buttons. docs/design/web.md is the plan, docs/web.md the user's page.
package web

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/policy"
	"github.com/hubctl/hubctl/internal/secrets"
)

// TagViews reads a repository's tags with their push and pull times in one snapshot
// (the store's policy.Store does).
type TagViews interface {
	RetentionView(ctx context.Context, repo string) (policy.View, error)
}

// Options are the dependencies of the web handler; all are required but Log, Now and
// ExternalURL.
type Options struct {
	Accounts accounts.Store
	Meta     metadata.Store
	// Search backs explore's search and the repository page's tag table (one page of
	// tags read in SQL); the SQL store implements it.
	Search metadata.Searcher
	Views  TagViews
	Blobs  blobstore.Store
	// Policy decides who may pull what, as for the registry itself.
	Policy *authz.Policy
	// Guard limits failed sign-ins; pass the token service's, so a guess counts
	// wherever it is made.
	Guard *ratelimit.Guard
	// History reads tag history and unique sizes, and TagRules says which tags are
	// immutable; without them the pages show neither history nor unique sizes, and
	// restores are not checked against immutable tags.
	History  History
	TagRules TagRules
	// ExternalURL is the hub's URL as clients reach it (pull commands name its host;
	// an https URL makes cookies Secure behind a TLS-terminating proxy); "" means each
	// request's Host.
	ExternalURL string
	Log         *slog.Logger
	Now         func() time.Time
	// Workflows, Webhooks and Deploys back the admin pages of runs, hooks and deploy
	// history (admin.go); a nil one answers its pages 404.
	Workflows WorkflowStore
	Webhooks  HookStore
	// Keyring seals the secrets of webhooks made or changed on the pages (the
	// server's; nil refuses what needs sealing, as the API does).
	Keyring *secrets.Keyring
	Deploys DeployHistory
	// Charts backs the chart pages (charts.go); nil answers them 404.
	Charts ChartVersions
	// Policies backs the policies page; nil answers it 404.
	Policies PolicyList
	// PolicyEdit sets and removes policies for the policies page's forms (the
	// policy API's own code); nil leaves the page read-only.
	PolicyEdit PolicyEditor
}

// Handler serves the web UI.
type Handler struct {
	o       Options
	mux     *http.ServeMux
	pages   map[string]*pageTemplate
	assets  assets
	cop     *http.CrossOriginProtection
	touched sync.Map // session id -> time of the last recorded use
	access  *hubapi.Access
	streams streamLimit // open live-log streams
	// dummyHash is verified against for unknown users, so names cannot be probed by
	// timing.
	dummyOnce sync.Once
	dummy     string
}

// New returns the web UI's handler. It parses every template and hashes every asset
// now, so a broken template fails the start, not a request.
func New(o Options) (*Handler, error) {
	if o.Accounts == nil || o.Meta == nil || o.Search == nil || o.Views == nil || o.Blobs == nil || o.Policy == nil || o.Guard == nil {
		return nil, errors.New("web: Accounts, Meta, Search, Views, Blobs, Policy and Guard are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{o: o, mux: http.NewServeMux(), cop: http.NewCrossOriginProtection()}
	var err error
	if h.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if h.pages, err = parsePages(h.assets); err != nil {
		return nil, err
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	h.mux.HandleFunc("GET /{$}", h.explore)
	h.mux.HandleFunc("GET /explore", h.explore)
	h.mux.HandleFunc("GET /login", h.loginForm)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.HandleFunc("POST /logout", h.logout)
	h.mux.HandleFunc("GET /settings/tokens", h.tokens)
	h.mux.HandleFunc("POST /settings/tokens", h.createToken)
	h.mux.HandleFunc("POST /settings/tokens/revoke", h.revokeToken)
	h.mux.HandleFunc("GET /settings", h.settings)
	h.mux.HandleFunc("POST /settings/email", h.setEmail)
	h.mux.HandleFunc("POST /settings/password", h.changePassword)
	h.mux.HandleFunc("POST /settings/sessions/end", h.endSession)
	h.mux.HandleFunc("POST /settings/sessions/end-all", h.endAllSessions)
	h.mux.HandleFunc("GET /static/{file}", h.static)
	h.adminRoutes()
	// Everything else is a namespace, a repository or one of its tags or manifests,
	// parsed by repoRoute: a repository name has any number of components.
	h.mux.HandleFunc("GET /", h.namespaceOrRepo)
	h.mux.HandleFunc("POST /", h.repoAction)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, http.StatusMethodNotAllowed, "That method is not allowed here.")
	})
}

// ServeHTTP serves a page with the security headers every response carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	v, err := h.viewer(r)
	if err != nil {
		h.o.Log.ErrorContext(r.Context(), "web: look up session", "err", err)
		h.fail(w, r, http.StatusInternalServerError, "Something went wrong; try again.")
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
}

// viewerOf is who the request comes from (a zero viewer when signed out).
func viewerOf(r *http.Request) *viewer {
	if v, ok := r.Context().Value(viewerKey{}).(*viewer); ok {
		return v
	}
	return &viewer{}
}

type viewerKey struct{}

// render writes page with status through its template. It executes into a buffer
// first, so a failing template answers a clean 500 instead of half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, page any) {
	t, ok := h.pages[name]
	if !ok {
		h.o.Log.ErrorContext(r.Context(), "web: no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.execute(&buf, page); err != nil {
		h.o.Log.ErrorContext(r.Context(), "web: render page", "page", name, "err", err)
		if name != "error" {
			h.fail(w, r, http.StatusInternalServerError, "Something went wrong; try again.")
			return
		}
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorPage is the page of every refusal and failure.
type errorPage struct {
	basePage
	Status  int
	Message string
}

// fail answers status with the error page and message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, message string) {
	p := errorPage{basePage: h.base(r, http.StatusText(status)), Status: status, Message: message}
	// No return address: a 404 must be the same page whatever path it answers.
	p.Path = ""
	h.render(w, r, status, "error", p)
}

// notFound is the one answer for what does not exist and what the viewer may not see:
// the same status and the same body, so neither tells the other apart.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusNotFound, "There is nothing here, or you may not see it.")
}

// internal logs err and answers 500 without details.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.o.Log.ErrorContext(r.Context(), "web", "path", r.URL.Path, "err", err)
	h.fail(w, r, http.StatusInternalServerError, "Something went wrong; try again.")
}

// basePage is what every page's layout needs.
type basePage struct {
	Title  string
	Viewer string // the signed-in user's name; "" when signed out
	Admin  bool
	CSRF   string
	Assets assets
	// Path is the request path, for the sign-in link's return address.
	Path string
}

func (h *Handler) base(r *http.Request, title string) basePage {
	v := viewerOf(r)
	b := basePage{Title: title, CSRF: v.csrf, Assets: h.assets, Path: r.URL.Path}
	if v.user != nil {
		b.Viewer, b.Admin = v.user.Name, v.user.Admin
	}
	return b
}

// registryHost is the host:port clients pull from: the external URL's, else the
// request's.
func (h *Handler) registryHost(r *http.Request) string {
	if h.o.ExternalURL != "" {
		if u, err := url.Parse(h.o.ExternalURL); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return r.Host
}

// secure reports whether cookies must be Secure: the request came over TLS, or the hub
// is reached through https (a TLS-terminating proxy).
func (h *Handler) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(h.o.ExternalURL), "https://")
}
