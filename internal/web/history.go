package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
)

// History reads what the repository pages show beyond the registry's own reads: a
// tag's moves and the bytes only one manifest holds (the store's sqlstore.Store).
type History interface {
	TagHistory(ctx context.Context, repo, tag string, n int) ([]metadata.TagMove, error)
	UniqueSize(ctx context.Context, repo string, d digest.Digest) (int64, error)
}

// TagRules says why a tag may not move (the policy engine's immutable tags).
type TagRules interface {
	ImmutableTag(ctx context.Context, repo, tag string) (string, error)
}

// historyShown is how many moves the tag page lists.
const historyShown = 20

// historyRow is one move of a tag.
type historyRow struct {
	Old, New   string
	OldURL     string
	Actor      string
	At         time.Time
	Restorable bool // the tag may be moved back to Old here
}

// fillHistory lists the tag's moves; a viewer who may push gets a restore button on
// each move away from a manifest that is still here.
func (h *Handler) fillHistory(ctx context.Context, p *manifestPage, v *viewer) error {
	if h.o.History == nil || p.Tag == "" {
		return nil
	}
	moves, err := h.o.History.TagHistory(ctx, p.Repository, p.Tag, historyShown)
	if err != nil {
		return err
	}
	if len(moves) == 0 {
		return nil
	}
	push, err := h.mayPush(ctx, v, p.Repository)
	if err != nil {
		return err
	}
	p.CanPush = push
	for _, m := range moves {
		row := historyRow{Old: m.Old.String(), New: m.New.String(), Actor: m.Actor, At: m.At}
		if m.Old != "" {
			row.OldURL = "/" + p.Repository + "/-/manifests/" + m.Old.String()
			if push && m.Old.String() != p.Digest {
				old, err := h.o.Meta.GetManifest(ctx, p.Repository, m.Old)
				switch {
				case err == nil:
					row.Restorable = !charts.IsChartManifest(old.ArtifactType)
				case !errors.Is(err, metadata.ErrManifestNotFound):
					return err
				}
			}
		}
		p.History = append(p.History, row)
	}
	return nil
}

// mayPush reports whether the viewer may push to repo, as the token service would
// grant.
func (h *Handler) mayPush(ctx context.Context, v *viewer, repo string) (bool, error) {
	if v.user == nil {
		return false, nil
	}
	g, err := h.o.Policy.Grant(ctx, v.principal(), scope.Scope{Type: scope.TypeRepository, Name: repo, Actions: []string{scope.Push}})
	if err != nil {
		return false, err
	}
	return slices.Contains(g.Actions, scope.Push) || slices.Contains(g.Actions, scope.All), nil
}

// restoreTag points a tag back at a manifest of the repository ("restore this tag
// here"): a POST with the form's CSRF token from a viewer who may push, refused for
// an immutable tag as a push would be. It is a push of the stored manifest under the
// tag, so quota, limits, events and tag history see it as one.
func (h *Handler) restoreTag(w http.ResponseWriter, r *http.Request, repo string) {
	if !h.checkForm(w, r) {
		return
	}
	ctx := r.Context()
	v := viewerOf(r)
	ok, err := h.visibleRepo(ctx, v, repo)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if !ok {
		h.notFound(w, r)
		return
	}
	tag := r.PostForm.Get("tag")
	d, derr := reference.ParseDigest(r.PostForm.Get("digest"))
	if !reference.IsTag(tag) || derr != nil {
		h.fail(w, r, http.StatusBadRequest, "Pick a tag and a manifest from the tag's history.")
		return
	}
	if push, err := h.mayPush(ctx, v, repo); err != nil {
		h.internal(w, r, err)
		return
	} else if !push {
		h.fail(w, r, http.StatusForbidden, "You may not push to this repository, so you may not move its tags.")
		return
	}
	if h.o.TagRules != nil {
		reason, err := h.o.TagRules.ImmutableTag(ctx, repo, tag)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		if reason != "" {
			h.fail(w, r, http.StatusConflict, fmt.Sprintf("Tag %s is immutable (%s): it cannot move.", tag, reason))
			return
		}
	}
	m, err := h.o.Meta.GetManifest(ctx, repo, d)
	if errors.Is(err, metadata.ErrManifestNotFound) {
		h.fail(w, r, http.StatusNotFound, "That manifest is no longer in this repository; it cannot be restored.")
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	if charts.IsChartManifest(m.ArtifactType) {
		// A chart's tag is its version, and the chart repository's rules (no other
		// version's content under it) are checked at push: push the chart again.
		h.fail(w, r, http.StatusConflict, "A chart version's tag is not moved here; push the chart again instead.")
		return
	}
	var doc manifestDoc
	if err := json.Unmarshal(m.Payload, &doc); err != nil {
		h.internal(w, r, fmt.Errorf("manifest %s@%s: %w", repo, d, err))
		return
	}
	ctx = events.WithActor(ctx, events.Actor{Name: v.user.Name, Remote: clientIP(r)})
	_, err = h.o.Meta.PutManifest(ctx, m, referencesOf(doc), tag)
	var missing *metadata.MissingReferenceError
	switch {
	case errors.As(err, &missing):
		h.fail(w, r, http.StatusConflict, "That manifest's content is no longer all here ("+missing.Digest.String()+" is missing); it cannot be restored.")
		return
	case errors.Is(err, metadata.ErrQuotaExceeded), errors.Is(err, metadata.ErrRepositoryFull):
		h.fail(w, r, http.StatusForbidden, "The repository or its namespace is full: "+err.Error())
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	h.audit(r, v.user.Name, "tag.restore", repo+":"+tag+" -> "+d.String())
	http.Redirect(w, r, "/"+repo+"/-/tags/"+url.PathEscape(tag), http.StatusSeeOther)
}

// referencesOf is what a stored manifest points at, as the registry recorded it at
// push: config and layers, or an index's children.
func referencesOf(doc manifestDoc) metadata.References {
	var refs metadata.References
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
	return refs
}

// repoAction routes the POSTs under a repository: /NS/REPO…/-/restore.
func (h *Handler) repoAction(w http.ResponseWriter, r *http.Request) {
	repo, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/-/")
	if !ok || rest != "restore" {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, http.StatusMethodNotAllowed, "That method is not allowed here.")
		return
	}
	h.restoreTag(w, r, repo)
}
