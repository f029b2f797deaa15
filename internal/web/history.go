package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/hubapi"
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

// restoreTag points a tag back at a manifest of its history ("restore this tag
// here"): a POST with the form's CSRF token. The restore itself, and every check of
// who may restore what, is the hub API's (hubapi.Access.RestoreTag, as POST
// /api/v1/repositories/{repo}/tags/{tag}/restore): push right, a digest of the tag's
// history, immutable tags refused as a push would be, audited as tag.restore.
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
	if !reference.IsTag(tag) {
		h.fail(w, r, http.StatusBadRequest, "Pick a tag and a manifest from the tag's history.")
		return
	}
	var store hubapi.TagStore
	if h.o.History != nil {
		store = tagStore{h.o.Meta, h.o.History}
	}
	p := v.principal()
	if _, err := h.access.RestoreTag(r, &p, store, h.o.TagRules, repo, tag, r.PostForm.Get("digest")); err != nil {
		if msg, status := hubapi.Message(err); status != 0 {
			h.fail(w, r, status, msg)
			return
		}
		h.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/"+repo+"/-/tags/"+url.PathEscape(tag), http.StatusSeeOther)
}

// tagStore is the store a restore reads and writes: the registry's manifests and
// the tag history beside them.
type tagStore struct {
	metadata.Store
	History
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
