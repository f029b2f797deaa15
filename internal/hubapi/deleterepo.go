package hubapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/metadata"
)

// RepositoryDeleter deletes a repository with its tags, manifests and blob links in one
// transaction (metadata.Store does); the blobs are left to garbage collection.
type RepositoryDeleter interface {
	DeleteRepository(ctx context.Context, name string) error
}

// deleteRepository answers DELETE /api/v1/repositories/{name…}: the whole repository,
// for whoever may delete in it (the delete action, which the admin role and a token
// scope of "delete" or "*" give).
func (a *api) deleteRepository(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name, err := repositoryName(r)
	if err != nil {
		return err
	}
	if a.repos == nil {
		return notFound("repository %s not found", name)
	}
	ok, err := a.allowed(r, p, name, scope.Delete)
	if err != nil {
		return err
	}
	if !ok {
		// Without pull a repository is answered as missing, so its existence does not
		// leak; with pull, the refusal says what is missing.
		if pull, err := a.allowed(r, p, name, scope.Pull); err != nil || !pull {
			return notFound("repository %s not found", name)
		}
		return denied("deleting %s needs the delete action on it (the admin role)", name)
	}
	if err := a.repos.DeleteRepository(r.Context(), name); errors.Is(err, metadata.ErrRepositoryNotFound) {
		return notFound("repository %s not found", name)
	} else if err != nil {
		return err
	}
	// The store audited the deletion in its transaction, with the event it raised.
	return noContent(w)
}
