// Package registry serves the OCI distribution spec v1.1 API (/v2/…) on top of a blob
// store and a metadata store.
package registry

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// DefaultMaxManifestSize is the largest manifest accepted unless configured otherwise.
const DefaultMaxManifestSize = 4 << 20

// Options configure a Handler.
type Options struct {
	Blobs  blobstore.Store
	Meta   metadata.Store
	Events *events.Bus
	Log    *slog.Logger
	// MaxManifestSize bounds manifest bodies; 0 means DefaultMaxManifestSize.
	MaxManifestSize int64
	// Auth, when set, demands bearer tokens; nil serves everyone (--auth=none).
	Auth *Auth
	// RedirectTTL, when positive and the blob store is a blobstore.Redirector, answers
	// blob GETs with 307 to a URL valid that long instead of streaming the bytes.
	RedirectTTL time.Duration
	// MaxConcurrentUploads bounds requests that stream blob bytes in at once; more are
	// answered 429 TOOMANYREQUESTS with Retry-After. 0 means DefaultMaxConcurrentUploads.
	MaxConcurrentUploads int
	// Artifacts, when set, checks and records manifests of artifacts the hub
	// understands (helm charts) as they are put.
	Artifacts ArtifactHook
	// Policy, when set, enforces immutable tags and hears of pulls (policy.go).
	Policy TagPolicy
	// Outbox, when set, records refusals that change nothing (quota.exceeded); the
	// changes themselves write their events in Meta's transactions.
	Outbox events.Store
}

// DefaultMaxConcurrentUploads is the default bound on concurrently streaming uploads.
const DefaultMaxConcurrentUploads = 256

// Handler serves /v2/.
type Handler struct {
	o Options
	// uploadLocks serialises requests on one upload session within this process, so two
	// PATCHes racing on the same session cannot interleave their bytes.
	uploadLocks [64]sync.Mutex
	// uploadSlots is a semaphore bounding concurrent upload streams.
	uploadSlots chan struct{}
	// uploading counts the upload requests in flight, for WaitUploads.
	uploading sync.WaitGroup
}

// New returns a Handler serving the distribution API.
func New(o Options) *Handler {
	if o.MaxManifestSize <= 0 {
		o.MaxManifestSize = DefaultMaxManifestSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = events.NewBus(o.Log)
	}
	if o.MaxConcurrentUploads <= 0 {
		o.MaxConcurrentUploads = DefaultMaxConcurrentUploads
	}
	return &Handler{o: o, uploadSlots: make(chan struct{}, o.MaxConcurrentUploads)}
}

// acquireUpload takes an upload slot or answers TOOMANYREQUESTS, so a burst of pushes
// queues at the clients (which retry) instead of exhausting disk bandwidth and memory.
func (h *Handler) acquireUpload(w http.ResponseWriter) (func(), error) {
	select {
	case h.uploadSlots <- struct{}{}:
		h.uploading.Add(1)
		return func() { <-h.uploadSlots; h.uploading.Done() }, nil
	default:
		w.Header().Set("Retry-After", "1")
		return nil, errcode.New(errcode.TooManyRequests, "too many uploads in progress (limit %d), retry shortly", cap(h.uploadSlots))
	}
}

// WaitUploads waits until the upload requests in flight have returned, or ctx ends. At
// shutdown, once their contexts are cancelled, it gives them the time to abort what
// they were writing (a multipart upload, a session's chunk) before the process exits.
func (h *Handler) WaitUploads(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.uploading.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// route is a parsed /v2/ path.
type route struct {
	kind string // base, catalog, tags, manifest, blob, uploads, upload, referrers
	name string
	ref  string // tag/digest, blob digest, upload id
}

// parseRoute splits a /v2/ path. Repository names may contain slashes and even path
// components that look like route keywords, so the route is recognised from the end.
func parseRoute(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return route{kind: "base"}, true
		}
		return route{}, false
	}
	switch rest {
	case "":
		return route{kind: "base"}, true
	case "_catalog":
		return route{kind: "catalog"}, true
	}
	parts := strings.Split(rest, "/")
	n := len(parts)
	name := func(k int) string { return strings.Join(parts[:n-k], "/") }
	switch {
	case n >= 3 && parts[n-2] == "tags" && parts[n-1] == "list":
		return route{kind: "tags", name: name(2)}, true
	case n >= 4 && parts[n-3] == "blobs" && parts[n-2] == "uploads":
		if parts[n-1] == "" {
			return route{kind: "uploads", name: name(3)}, true
		}
		return route{kind: "upload", name: name(3), ref: parts[n-1]}, true
	case n >= 3 && parts[n-2] == "blobs" && parts[n-1] == "uploads":
		return route{kind: "uploads", name: name(2)}, true
	case n >= 3 && parts[n-2] == "manifests":
		return route{kind: "manifest", name: name(2), ref: parts[n-1]}, true
	case n >= 3 && parts[n-2] == "blobs":
		return route{kind: "blob", name: name(2), ref: parts[n-1]}, true
	case n >= 3 && parts[n-2] == "referrers":
		return route{kind: "referrers", name: name(2), ref: parts[n-1]}, true
	}
	return route{}, false
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := h.serve(w, r); err != nil {
		h.writeError(w, r, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		return errcode.New(errcode.Unsupported, "no such endpoint %s", r.URL.Path).WithStatus(http.StatusNotFound)
	}
	if rt.name != "" {
		reqlog.From(r.Context()).Repository = rt.name
		if err := reference.ValidateRepository(rt.name); err != nil {
			return errcode.New(errcode.NameInvalid, "%v", err).WithDetail(map[string]string{"name": rt.name})
		}
		if accounts.IsSystemRepository(rt.name) && r.Method != http.MethodGet && r.Method != http.MethodHead {
			// The hub writes its own images into its stores itself; whatever a
			// token says (or on a hub without auth), no request changes them.
			return errcode.New(errcode.Denied, "%s is the hub's own repository: nobody pushes to it or deletes from it", rt.name)
		}
	}
	if h.o.Auth != nil {
		tok, err := h.authorize(w, r, rt)
		if err != nil {
			return err
		}
		r = r.WithContext(context.WithValue(r.Context(), accessKey{}, tok))
	}
	m := r.Method
	if m != http.MethodGet && m != http.MethodHead {
		// The store records who made a change on its events (docs/design/events.md).
		info := reqlog.From(r.Context())
		r = r.WithContext(events.WithActor(r.Context(), events.Actor{Name: info.User, Remote: info.Remote, RequestID: info.RequestID}))
	}
	switch rt.kind {
	case "base":
		if m != http.MethodGet && m != http.MethodHead {
			return methodNotAllowed(m)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if m == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
		return nil
	case "catalog":
		if m != http.MethodGet {
			return methodNotAllowed(m)
		}
		return h.getCatalog(w, r)
	case "tags":
		if m != http.MethodGet {
			return methodNotAllowed(m)
		}
		return h.getTags(w, r, rt.name)
	case "referrers":
		if m != http.MethodGet {
			return methodNotAllowed(m)
		}
		return h.getReferrers(w, r, rt.name, rt.ref)
	case "manifest":
		switch m {
		case http.MethodGet, http.MethodHead:
			return h.getManifest(w, r, rt.name, rt.ref)
		case http.MethodPut:
			return h.putManifest(w, r, rt.name, rt.ref)
		case http.MethodDelete:
			return h.deleteManifest(w, r, rt.name, rt.ref)
		}
	case "blob":
		switch m {
		case http.MethodGet, http.MethodHead:
			return h.getBlob(w, r, rt.name, rt.ref)
		case http.MethodDelete:
			return h.deleteBlob(w, r, rt.name, rt.ref)
		}
	case "uploads":
		if m == http.MethodPost {
			release, err := h.acquireUpload(w)
			if err != nil {
				return err
			}
			defer release()
			return h.startUpload(w, r, rt.name)
		}
	case "upload":
		switch m {
		case http.MethodGet:
			return h.uploadStatus(w, r, rt.name, rt.ref)
		case http.MethodPatch, http.MethodPut:
			release, err := h.acquireUpload(w)
			if err != nil {
				return err
			}
			defer release()
			if m == http.MethodPatch {
				return h.patchUpload(w, r, rt.name, rt.ref)
			}
			return h.putUpload(w, r, rt.name, rt.ref)
		case http.MethodDelete:
			return h.cancelUpload(w, r, rt.name, rt.ref)
		}
	}
	return methodNotAllowed(m)
}

func methodNotAllowed(m string) error {
	return errcode.New(errcode.Unsupported, "method %s is not supported on this endpoint", m)
}

// writeError sends err as a spec error body; errors that are not the client's fault are
// logged with the request id and sent without their internals.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *errcode.Error
	if !errors.As(err, &e) {
		switch {
		case errors.Is(err, blobstore.ErrUnavailable), errors.Is(err, metadata.ErrUnavailable):
			h.o.Log.WarnContext(r.Context(), "backing store unavailable", "request_id", reqlog.From(r.Context()).RequestID,
				"method", r.Method, "path", r.URL.Path, "error", err)
			w.Header().Set("Retry-After", "5")
			e = errcode.New(errcode.Unavailable, "storage is unavailable; retry shortly")
		case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
			// The client went away; nobody reads the answer.
			e = errcode.New(errcode.BlobUploadInvalid, "request cancelled")
		default:
			h.o.Log.ErrorContext(r.Context(), "request failed", "request_id", reqlog.From(r.Context()).RequestID,
				"method", r.Method, "path", r.URL.Path, "error", err)
			e = errcode.New(errcode.Unknown, "internal error, see the server log (request id %s)", reqlog.From(r.Context()).RequestID)
		}
	}
	// quotaDenied's message carries the store's ErrQuotaExceeded: metrics count it.
	if e.Code == errcode.Denied && strings.Contains(e.Message, metadata.ErrQuotaExceeded.Error()) {
		info := reqlog.From(r.Context())
		info.Refusal = reqlog.RefusalQuota
		if h.o.Outbox != nil {
			// Refusals are few (a client gives up or the quota is raised), so one row
			// each is no flood; the write is bounded so a slow database delays the
			// answer little.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
			_, err := h.o.Outbox.AppendEvent(ctx, events.Event{Type: events.QuotaExceeded, Repository: info.Repository,
				Detail: map[string]any{"message": e.Message, "method": r.Method}})
			cancel()
			if err != nil {
				h.o.Log.WarnContext(r.Context(), "record quota.exceeded event", "request_id", info.RequestID, "error", err)
			}
		}
	}
	if r.Method == http.MethodHead {
		w.Header().Del("Content-Length")
		w.Header().Del("Docker-Content-Digest")
		w.WriteHeader(e.HTTPStatus())
		return
	}
	errcode.Write(w, e)
}

func (h *Handler) lockUpload(id string) func() {
	f := fnv.New32a()
	_, _ = f.Write([]byte(id))
	mu := &h.uploadLocks[f.Sum32()%uint32(len(h.uploadLocks))]
	mu.Lock()
	return mu.Unlock
}

func (h *Handler) publish(r *http.Request, e events.Event) {
	info := reqlog.From(r.Context())
	e.RequestID = info.RequestID
	e.Actor = info.User
	e.Remote = info.Remote
	h.o.Events.Publish(e)
}

// CleanStaleUploads aborts upload sessions that were not touched for maxAge and returns
// how many it removed.
func (h *Handler) CleanStaleUploads(ctx context.Context, maxAge time.Duration) (int, error) {
	cutoff := time.Now().Add(-maxAge)
	stale, err := h.o.Meta.StaleUploads(ctx, cutoff)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range stale {
		unlock := h.lockUpload(u.ID)
		// Claimed only if still stale: another replica may have touched, committed or
		// purged it since it was listed.
		err := h.discardUpload(ctx, u, cutoff)
		unlock()
		switch {
		case errors.Is(err, metadata.ErrUploadNotFound):
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}
