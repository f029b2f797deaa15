package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
	"github.com/hubctl/hubctl/internal/registry"
)

// Tag history (issue 21's time machine) in the API: GET
// /api/v1/repositories/{name…}/tags/{tag}/history lists a tag's moves, POST
// …/tags/{tag}/restore points the tag back at a digest of that history. The web UI's
// "restore this tag here" calls the same Access.RestoreTag, so the two can never
// differ in who may restore what.

// TagStore is what tag history and restore read and write (sqlstore.Store).
type TagStore interface {
	TagHistory(ctx context.Context, repo, tag string, n int) ([]metadata.TagMove, error)
	GetManifest(ctx context.Context, repo string, d digest.Digest) (metadata.Manifest, error)
	PutManifest(ctx context.Context, m metadata.Manifest, refs metadata.References, tag string) (metadata.PutManifestResult, error)
}

// TagRules says why a tag may not move (the policy engine's immutable tags).
type TagRules interface {
	ImmutableTag(ctx context.Context, repo, tag string) (string, error)
}

// tagPath cuts "{name…}/tags/{tag}/{verb}" from the request path. A repository's own
// name may end in those components too; such a repository's settings are not
// reachable at that path, the tag endpoint is.
func tagPath(r *http.Request, verb string) (repo, tag string, ok bool) {
	rest, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, Prefix+"repositories/"), "/"+verb)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/tags/")
	if i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len("/tags/"):], true
}

// repositoryGet answers GET under /api/v1/repositories/: a tag's history, else the
// repository's settings.
func (a *api) repositoryGet(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if repo, tag, ok := tagPath(r, "history"); ok {
		return a.tagHistory(w, r, p, repo, tag)
	}
	return a.getRepository(w, r, p)
}

// repositoryPost answers POST under /api/v1/repositories/: only a tag's restore.
func (a *api) repositoryPost(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if repo, tag, ok := tagPath(r, "restore"); ok {
		return a.restoreTagEndpoint(w, r, p, repo, tag)
	}
	w.Header().Set("Allow", "DELETE, GET, PATCH")
	return errcode.New(errcode.Unsupported, "POST is not allowed on %s (allowed: DELETE, GET, PATCH)", r.URL.Path)
}

// checkTagRef validates a repository name and tag of a tag endpoint.
func checkTagRef(repo, tag string) error {
	if err := reference.ValidateRepository(repo); err != nil {
		return invalid("%v", err)
	}
	if !reference.IsTag(tag) {
		return invalid("tag %q is invalid: it must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", tag)
	}
	return nil
}

// visibleRepository answers nil when p may pull repo and it exists, else the 404 of
// a missing repository: the same for one p may not see, so its existence does not leak.
func (a *api) visibleRepository(r *http.Request, p *authz.Principal, repo string) error {
	ok, err := a.allowed(r, p, repo, scope.Pull)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("repository %s not found", repo)
	}
	_, exists, err := a.store.RepositoryVisibility(r.Context(), repo)
	if err != nil {
		return err
	}
	if !exists {
		return notFound("repository %s not found", repo)
	}
	return nil
}

// tagHistory answers GET /api/v1/repositories/{name…}/tags/{tag}/history?before=&limit=:
// the tag's moves newest first, paged by move id as the audit log is, for whoever may
// pull the repository. The store keeps metadata.MaxTagHistory moves per tag.
func (a *api) tagHistory(w http.ResponseWriter, r *http.Request, p *authz.Principal, repo, tag string) error {
	if err := checkTagRef(repo, tag); err != nil {
		return err
	}
	if a.tags == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	q := r.URL.Query()
	var before int64
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return invalid("before %q: want a positive move id", s)
		}
		before = n
	}
	limit := metadata.MaxTagHistory
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > metadata.MaxTagHistory {
			return invalid("limit %q: want 1 to %d", s, metadata.MaxTagHistory)
		}
		limit = n
	}
	if err := a.visibleRepository(r, p, repo); err != nil {
		return err
	}
	// At most MaxTagHistory moves are kept: the page is cut from all of them.
	moves, err := a.tags.TagHistory(r.Context(), repo, tag, metadata.MaxTagHistory)
	if err != nil {
		return err
	}
	page := hubtypes.TagHistoryPage{Repository: repo, Tag: tag, Moves: make([]hubtypes.TagMove, 0, min(limit, len(moves)))}
	for _, m := range moves {
		if before > 0 && m.ID >= before {
			continue
		}
		if len(page.Moves) == limit {
			page.Next = page.Moves[len(page.Moves)-1].ID
			break
		}
		page.Moves = append(page.Moves, tagMoveView(m))
	}
	return reply(w, http.StatusOK, page)
}

// tagMoveView is a move as the API shows it.
func tagMoveView(m metadata.TagMove) hubtypes.TagMove {
	action := "move"
	switch {
	case m.New == "":
		action = "delete"
	case m.Old == "":
		action = "create"
	}
	return hubtypes.TagMove{ID: m.ID, Time: formatTime(m.At), Action: action, Digest: m.New.String(),
		PreviousDigest: m.Old.String(), Actor: m.Actor}
}

// restoreTagEndpoint answers POST /api/v1/repositories/{name…}/tags/{tag}/restore
// with {"digest": …}.
func (a *api) restoreTagEndpoint(w http.ResponseWriter, r *http.Request, p *authz.Principal, repo, tag string) error {
	if err := checkTagRef(repo, tag); err != nil {
		return err
	}
	var req hubtypes.RestoreTagRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	res, err := a.restoreTag(r, p, repo, tag, req.Digest)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, res)
}

// RestoreTag points tag of repo back at manifest dgst of the tag's history, exactly
// as POST /api/v1/repositories/{repo}/tags/{tag}/restore does (the web UI's "restore
// this tag here" calls it): the repository is answered as missing to whoever may not
// pull it, a restore needs the push right, dgst must be in the tag's kept history and
// still in the repository, an immutable tag is refused as a push would be. It is a
// push of the stored manifest under the tag (quota, tag history and events see it as
// one), audited as tag.restore with r's remote address. A refusal is an error whose
// Message is fit to show the caller. store and rules (nil: no immutable tags) are the
// web UI's, which the API takes from its Options.
func (x *Access) RestoreTag(r *http.Request, p *authz.Principal, store TagStore, rules TagRules, repo, tag, dgst string) (hubtypes.TagRestore, error) {
	a := &api{store: x.a.store, policy: x.a.policy, now: x.a.now, log: x.a.log, tags: store, tagRules: rules}
	if err := checkTagRef(repo, tag); err != nil {
		return hubtypes.TagRestore{}, err
	}
	return a.restoreTag(r, p, repo, tag, dgst)
}

// restoreTag is RestoreTag with the API's own store and rules.
func (a *api) restoreTag(r *http.Request, p *authz.Principal, repo, tag, dgst string) (hubtypes.TagRestore, error) {
	var none hubtypes.TagRestore
	if a.tags == nil {
		return none, notFound("no API endpoint %s", r.URL.Path)
	}
	d, err := reference.ParseDigest(dgst)
	if err != nil {
		return none, invalid("digest %q: %v", dgst, err)
	}
	if err := a.visibleRepository(r, p, repo); err != nil {
		return none, err
	}
	ctx := r.Context()
	if push, err := a.allowed(r, p, repo, scope.Push); err != nil {
		return none, err
	} else if !push {
		return none, denied("moving tag %s of %s needs the push right on it", tag, repo)
	}
	// Only a digest the tag named before: the manifest is this repository's, and a
	// restore cannot point a tag at anything a push to it never did.
	moves, err := a.tags.TagHistory(ctx, repo, tag, metadata.MaxTagHistory)
	if err != nil {
		return none, err
	}
	if !inHistory(moves, d) {
		return none, errcode.New(errcode.ManifestUnknown, "%s is not in the history of tag %s of %s", d, tag, repo).
			WithDetail(map[string]string{"digest": d.String()})
	}
	if a.tagRules != nil {
		reason, err := a.tagRules.ImmutableTag(ctx, repo, tag)
		if err != nil {
			return none, err
		}
		if reason != "" {
			return none, registry.ImmutableTagError(repo, tag, reason, "it cannot be restored")
		}
	}
	m, err := a.tags.GetManifest(ctx, repo, d)
	if errors.Is(err, metadata.ErrManifestNotFound) {
		return none, errcode.New(errcode.ManifestUnknown, "manifest %s is no longer in %s; it cannot be restored", d, repo).
			WithDetail(map[string]string{"digest": d.String()})
	} else if err != nil {
		return none, err
	}
	if charts.IsChartManifest(m.ArtifactType) {
		// A chart's tag is its version, and the chart repository's rules (no other
		// version's content under it) are checked at push: push the chart again.
		return none, errcode.New(errcode.Denied, "tag %s of %s is a chart version; push the chart again instead of restoring it", tag, repo).
			WithStatus(http.StatusConflict)
	}
	refs, err := referencesOf(m.Payload)
	if err != nil {
		return none, err
	}
	if events.ActorFrom(ctx).Name == "" {
		ctx = events.WithActor(ctx, events.Actor{Name: p.Name(), Remote: remoteAddr(r)})
	}
	res, err := a.tags.PutManifest(ctx, m, refs, tag)
	var missing *metadata.MissingReferenceError
	switch {
	case errors.As(err, &missing):
		return none, errcode.New(errcode.ManifestBlobUnknown, "manifest %s's content is no longer all here (%s is missing); it cannot be restored",
			d, missing.Digest).WithStatus(http.StatusConflict).WithDetail(map[string]string{"digest": missing.Digest.String()})
	case errors.Is(err, metadata.ErrQuotaExceeded), errors.Is(err, metadata.ErrRepositoryFull):
		return none, denied("%v", err)
	case err != nil:
		return none, err
	}
	detail := strings.TrimSpace(res.PreviousTagDigest.String() + " -> " + d.String())
	e := a.auditEntry(r, p, "tag.restore", repo+":"+tag, detail)
	if err := a.store.Audit(ctx, e); err != nil {
		// The tag moved; its history row and events say so even without this entry.
		a.log.WarnContext(ctx, "hub API: audit tag restore", "repo", repo, "tag", tag, "error", err)
	}
	prev := res.PreviousTagDigest
	if !res.TagMoved {
		prev = d
	}
	return hubtypes.TagRestore{Repository: repo, Tag: tag, Digest: d.String(), PreviousDigest: prev.String()}, nil
}

// inHistory reports whether the tag named d in one of moves.
func inHistory(moves []metadata.TagMove, d digest.Digest) bool {
	for _, m := range moves {
		if m.Old == d || m.New == d {
			return true
		}
	}
	return false
}

// storedManifest is what a stored manifest points at, as the registry recorded it.
type storedManifest struct {
	Config *struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
	} `json:"layers"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
}

// referencesOf is what a stored manifest points at, as the registry recorded it at
// push: config and layers, or an index's children.
func referencesOf(payload []byte) (metadata.References, error) {
	var doc storedManifest
	var refs metadata.References
	if err := json.Unmarshal(payload, &doc); err != nil {
		return refs, err
	}
	add := func(list *[]digest.Digest, s string) {
		if d, err := digest.Parse(s); err == nil {
			*list = append(*list, d)
		}
	}
	if doc.Config != nil {
		add(&refs.Blobs, doc.Config.Digest)
	}
	for _, l := range doc.Layers {
		// Non-distributable layers are not stored here (the registry's rule).
		if !strings.Contains(l.MediaType, ".nondistributable.") && l.MediaType != "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" {
			add(&refs.Blobs, l.Digest)
		}
	}
	for _, c := range doc.Manifests {
		add(&refs.Manifests, c.Digest)
	}
	return refs, nil
}
