package chartrepo

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// Options are the chart repository's dependencies.
type Options struct {
	Store Store
	Blobs blobstore.Store
	// Registry is the /v2/ handler: ChartMuseum uploads and deletes go through it
	// in-process, so they are checked, recorded, counted against quotas and published
	// as any push is.
	Registry http.Handler
	// Auth decides access; nil serves everyone (--auth=none).
	Auth *Auth
	Log  *slog.Logger
}

// Handler serves /charts/… and the ChartMuseum API under /api/… (except /api/v1/,
// the hub API).
type Handler struct {
	o     Options
	cache *renderCache
}

// New returns the chart repository handler.
func New(o Options) *Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Handler{o: o, cache: newRenderCache()}
}

// errRetry marks a failure a retry would not meet (a concurrent change).
var errRetry = errors.New("retry")

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/"); ok {
		h.serveChartMuseum(w, r, rest)
		return
	}
	if err := h.serveCharts(w, r); err != nil {
		h.fail(w, r, err)
	}
}

// fail writes err as the distribution spec's error body.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	errcode.Write(w, h.publicError(r, err))
}

// publicError maps err to what the client may see: *errcode.Error as it is, an
// unavailable store as 503, anything else as 500 with the request id, logged.
func (h *Handler) publicError(r *http.Request, err error) *errcode.Error {
	var e *errcode.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, metadata.ErrUnavailable), errors.Is(err, blobstore.ErrUnavailable):
		return errcode.New(errcode.Unavailable, "storage is unavailable; retry shortly")
	case errors.Is(err, errRetry):
		return errcode.New(errcode.Unavailable, "the repository changed while it was read; retry")
	}
	id := reqlog.From(r.Context()).RequestID
	h.o.Log.ErrorContext(r.Context(), "chart request failed", "request_id", id, "method", r.Method, "path", r.URL.Path, "error", err)
	return errcode.New(errcode.Unknown, "internal error, see the server log (request id %s)", id)
}

func (h *Handler) serveCharts(w http.ResponseWriter, r *http.Request) error {
	rest := strings.TrimPrefix(r.URL.Path, "/charts/")
	ns, file, ok := strings.Cut(rest, "/")
	if ok && ns == "-" {
		return h.serveHubAPI(w, r, file)
	}
	if !ok || file == "" || strings.Contains(file, "/") {
		return errcode.New(errcode.NameUnknown, "no such chart endpoint %s", r.URL.Path).WithStatus(http.StatusNotFound)
	}
	if err := checkNamespace(ns); err != nil {
		return err
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return errcode.New(errcode.Unsupported, "%s is not allowed on %s", r.Method, r.URL.Path)
	}
	switch file {
	case "index.yaml":
		return h.serveIndex(w, r, ns, formatYAML)
	case "index.json":
		return h.serveIndex(w, r, ns, formatJSON)
	}
	if base, ok := strings.CutSuffix(file, ".tgz.prov"); ok {
		return h.serveFile(w, r, ns, base, true)
	}
	if base, ok := strings.CutSuffix(file, ".tgz"); ok {
		return h.serveFile(w, r, ns, base, false)
	}
	return errcode.New(errcode.NameUnknown, "no such file %s in chart repository %s", file, ns).WithStatus(http.StatusNotFound)
}

// checkNamespace refuses names that cannot be a namespace.
func checkNamespace(ns string) error {
	if err := reference.ValidateRepository(ns + "/x"); err != nil || strings.Contains(ns, "/") {
		return errcode.New(errcode.NameInvalid, "%q is not a namespace name", ns)
	}
	return nil
}

// visible lists the versions q selects that the caller may pull.
func (h *Handler) visible(ctx context.Context, c *caller, q chartstore.Query) ([]chartstore.Version, error) {
	vs, err := h.o.Store.Charts(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		c.public[v.Repository] = v.Public
	}
	out := vs[:0]
	for _, v := range vs {
		ok, err := c.may(ctx, v.Repository, scope.Pull)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// notVisible is the answer about a namespace in which the caller sees nothing: an
// empty repository for its members (and without auth), else the same answer whether
// the namespace is private or does not exist — 401 asking anonymous callers to sign
// in, 404 for the signed-in.
func (h *Handler) notVisible(ctx context.Context, w http.ResponseWriter, c *caller, ns string) (empty bool, err error) {
	member, err := c.hasRole(ctx, ns, accounts.RoleRead)
	if err != nil || member {
		return member, err
	}
	if c.anonymous() {
		return false, challenge(w, "chart repository %s: sign in (a password or an access token)", ns)
	}
	return false, errcode.New(errcode.NameUnknown, "chart repository %s not found", ns).WithStatus(http.StatusNotFound)
}

func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request, ns, format string) error {
	ctx := r.Context()
	c, err := h.o.Auth.caller(w, r)
	if err != nil {
		return err
	}
	ix, err := h.loadIndex(ctx, ns, format)
	if err != nil {
		return err
	}
	hidden, err := c.hiddenRepos(ctx, ns, ix)
	if err != nil {
		return err
	}
	if len(hidden) == len(ix.repos) {
		if empty, err := h.notVisible(ctx, w, c, ns); !empty {
			return err
		}
	}
	tag := etag(ix, format, hidden)
	hd := w.Header()
	hd.Set("ETag", tag)
	// What an index holds depends on who asks: caches may keep it for that caller
	// only, and must revalidate.
	hd.Set("Cache-Control", "private, no-cache")
	hd.Set("Vary", "Authorization")
	if m := r.Header.Get("If-None-Match"); m != "" && matchesETag(m, tag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	body, err := h.indexBody(ctx, ns, ix, format, hidden, tag)
	if err != nil {
		return err
	}
	if format == formatJSON {
		hd.Set("Content-Type", "application/json")
	} else {
		hd.Set("Content-Type", "application/x-yaml")
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// findVersion finds the version a file base name (NAME-VERSION) names: chart names
// and versions both hold dashes, so every split whose right side is a semver is tried.
func (h *Handler) findVersion(ctx context.Context, c *caller, ns, base string) (chartstore.Version, bool, error) {
	for i := strings.IndexByte(base, '-'); i > 0; {
		name, version := base[:i], base[i+1:]
		if _, err := charts.ParseVersion(version); err == nil {
			vs, err := h.visible(ctx, c, chartstore.Query{Namespace: ns, Name: name, Version: version})
			if err != nil {
				return chartstore.Version{}, false, err
			}
			if len(vs) > 0 {
				return vs[0], true, nil
			}
		}
		j := strings.IndexByte(base[i+1:], '-')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return chartstore.Version{}, false, nil
}

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, ns, base string, prov bool) error {
	ctx := r.Context()
	c, err := h.o.Auth.caller(w, r)
	if err != nil {
		return err
	}
	v, ok, err := h.findVersion(ctx, c, ns, base)
	if err != nil {
		return err
	}
	if !ok {
		if c.anonymous() {
			return challenge(w, "chart %s not found in %s, or you must sign in", base, ns)
		}
		return errcode.New(errcode.NameUnknown, "chart %s not found in %s", base, ns).WithStatus(http.StatusNotFound)
	}
	d, ct := v.ChartDigest, "application/gzip"
	if prov {
		if v.ProvDigest == "" {
			return errcode.New(errcode.BlobUnknown, "chart %s in %s has no provenance file", base, ns)
		}
		d, ct = v.ProvDigest, "application/pgp-signature"
	}
	b, err := h.o.Store.RepositoryBlob(ctx, v.Repository, d)
	if errors.Is(err, metadata.ErrBlobNotFound) {
		return errcode.New(errcode.BlobUnknown, "blob %s of chart %s is missing", d, base)
	} else if err != nil {
		return err
	}
	rc, _, err := h.o.Blobs.Open(ctx, d, b.Location)
	if errors.Is(err, blobstore.ErrNotFound) {
		return errcode.New(errcode.BlobUnknown, "blob %s of chart %s is missing from storage", d, base)
	} else if err != nil {
		return err
	}
	defer rc.Close()
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("ETag", `"`+d.String()+`"`)
	hd.Set("Docker-Content-Digest", d.String())
	http.ServeContent(w, r, "", v.CreatedAt, rc)
	return nil
}

// serveHubAPI serves /charts/-/…: search and listing, and namespace settings.
func (h *Handler) serveHubAPI(w http.ResponseWriter, r *http.Request, rest string) error {
	switch {
	case rest == "search":
		if r.Method != http.MethodGet {
			return errcode.New(errcode.Unsupported, "%s is not allowed on %s", r.Method, r.URL.Path)
		}
		return h.search(w, r)
	case strings.HasPrefix(rest, "settings/"):
		return h.settings(w, r, strings.TrimPrefix(rest, "settings/"))
	}
	return errcode.New(errcode.NameUnknown, "no such chart endpoint %s", r.URL.Path).WithStatus(http.StatusNotFound)
}

// maxSearchRows bounds what one search reads.
const maxSearchRows = 20_000

// search answers GET /charts/-/search?q=TERM&namespace=NS with the charts the caller
// may pull whose name, description or keywords hold TERM (every chart without q), one
// Summary per repository, in repository order.
func (h *Handler) search(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := h.o.Auth.caller(w, r)
	if err != nil {
		return err
	}
	q := chartstore.Query{Term: r.URL.Query().Get("q"), Limit: maxSearchRows}
	if ns := r.URL.Query().Get("namespace"); ns != "" {
		if err := checkNamespace(ns); err != nil {
			return err
		}
		q.Namespace = ns
	}
	vs, err := h.visible(ctx, c, q)
	if err != nil {
		return err
	}
	if len(vs) == 0 && q.Namespace != "" {
		if _, err := h.notVisible(ctx, w, c, q.Namespace); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, summarize(vs))
}

// summarize groups versions (ordered by repository) into one Summary per repository.
func summarize(vs []chartstore.Version) []charts.Summary {
	out := []charts.Summary{}
	var latest chartstore.Version
	for i, v := range vs {
		if i == 0 || v.Repository != out[len(out)-1].Repository {
			out = append(out, charts.Summary{Repository: v.Repository, Name: v.Name})
			latest = v
		}
		s := &out[len(out)-1]
		s.Versions = append(s.Versions, charts.VersionSummary{Version: v.Version, AppVersion: v.AppVersion})
		if charts.VersionLess(latest.Version, v.Version) {
			latest = v
		}
		s.Version, s.AppVersion, s.Description, s.Deprecated = latest.Version, latest.AppVersion, latest.Description, latest.Deprecated
	}
	for i := range out {
		slices.SortStableFunc(out[i].Versions, func(a, b charts.VersionSummary) int {
			switch {
			case charts.VersionLess(b.Version, a.Version):
				return -1
			case charts.VersionLess(a.Version, b.Version):
				return 1
			}
			return 0
		})
	}
	return out
}

// settings serves GET and PUT /charts/-/settings/NS: members of the namespace read
// them, its administrators change them (with a password or registry-token sign-in:
// an access token may not loosen what guards the namespace).
func (h *Handler) settings(w http.ResponseWriter, r *http.Request, ns string) error {
	ctx := r.Context()
	if err := checkNamespace(ns); err != nil {
		return err
	}
	c, err := h.o.Auth.caller(w, r)
	if err != nil {
		return err
	}
	if c.anonymous() {
		return challenge(w, "sign in to read or change chart settings")
	}
	switch r.Method {
	case http.MethodGet:
		if ok, err := c.hasRole(ctx, ns, accounts.RoleRead); err != nil {
			return err
		} else if !ok {
			return errcode.New(errcode.NameUnknown, "chart repository %s not found", ns).WithStatus(http.StatusNotFound)
		}
	case http.MethodPut:
		if ok, err := c.hasRole(ctx, ns, accounts.RoleAdmin); err != nil {
			return err
		} else if !ok || c.p.Token != nil {
			return errcode.New(errcode.Denied, "changing the chart settings of %s needs the admin role on the whole namespace, signed in with a password", ns)
		}
		var in charts.Settings
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return errcode.New(errcode.Unsupported, "settings: %v", err).WithStatus(http.StatusBadRequest)
		}
		if err := h.o.Store.SetChartSettings(ctx, ns, chartstore.Settings{AllowOverwrite: in.AllowOverwrite}); err != nil {
			return err
		}
		h.o.Log.InfoContext(ctx, "chart settings changed", "namespace", ns, "allow_overwrite", in.AllowOverwrite,
			"user", c.p.Name(), "request_id", reqlog.From(ctx).RequestID)
	default:
		w.Header().Set("Allow", "GET, PUT")
		return errcode.New(errcode.Unsupported, "%s is not allowed on %s", r.Method, r.URL.Path)
	}
	st, err := h.o.Store.ChartSettings(ctx, ns)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, charts.Settings{AllowOverwrite: st.AllowOverwrite})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// now is the clock, for tests.
var now = time.Now
