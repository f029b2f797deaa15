package registry

import (
	"context"
	"errors"
	"net/http"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
)

// TagPolicy enforces immutable tags and hears of manifest pulls (internal/policy's
// Engine is one). Options.Policy nil enforces nothing.
type TagPolicy interface {
	// ImmutableTag returns why tag of repo may not move or go, or "".
	ImmutableTag(ctx context.Context, repo, tag string) (string, error)
	// ManifestImmutableTag returns an immutable tag of manifest d and why, or "".
	ManifestImmutableTag(ctx context.Context, repo string, d digest.Digest) (tag, reason string, err error)
	// Pulled notes a successful GET of manifest d, by tag ("" when by digest); it must
	// not block, and must not write to a database on the request's path.
	Pulled(repo string, d digest.Digest, tag string)
}

// ImmutableTagError refuses a change of an immutable tag: 409 with DENIED, like a
// refused delete of an index child, since the request conflicts with the repository's
// rules. what says what was refused ("push under a new tag"). The hub API's tag
// restore answers with it too, so a restore is refused as a push would be.
func ImmutableTagError(repo, tag, reason, what string) error {
	return errcode.New(errcode.Denied, "tag %s of %s is immutable (%s): %s", tag, repo, reason, what).
		WithStatus(http.StatusConflict).WithDetail(map[string]string{"tag": tag})
}

// checkTagMove refuses a push that would move an immutable tag to another digest;
// pushing the digest it already names again is allowed.
func (h *Handler) checkTagMove(ctx context.Context, repo, tag string, to digest.Digest) error {
	if h.o.Policy == nil || tag == "" {
		return nil
	}
	reason, err := h.o.Policy.ImmutableTag(ctx, repo, tag)
	if err != nil || reason == "" {
		return err
	}
	cur, err := h.o.Meta.ResolveTag(ctx, repo, tag)
	switch {
	case errors.Is(err, metadata.ErrTagNotFound), errors.Is(err, metadata.ErrRepositoryNotFound):
		return nil
	case err != nil:
		return err
	case cur == to:
		return nil
	}
	return ImmutableTagError(repo, tag, reason, "push under a new tag")
}

// checkTagDelete refuses deleting an immutable tag.
func (h *Handler) checkTagDelete(ctx context.Context, repo, tag string) error {
	if h.o.Policy == nil {
		return nil
	}
	reason, err := h.o.Policy.ImmutableTag(ctx, repo, tag)
	if err != nil || reason == "" {
		return err
	}
	return ImmutableTagError(repo, tag, reason, "it cannot be deleted")
}

// checkManifestDelete refuses deleting a manifest an immutable tag names (the delete
// would take the tag with it).
func (h *Handler) checkManifestDelete(ctx context.Context, repo string, d digest.Digest) error {
	if h.o.Policy == nil {
		return nil
	}
	tag, reason, err := h.o.Policy.ManifestImmutableTag(ctx, repo, d)
	if err != nil || tag == "" {
		return err
	}
	return ImmutableTagError(repo, tag, reason, "its manifest cannot be deleted")
}
