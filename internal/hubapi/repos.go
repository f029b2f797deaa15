package hubapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/reference"
)

// repositoryName cuts the repository name from the request path.
func repositoryName(r *http.Request) (string, error) {
	name := strings.TrimPrefix(r.URL.Path, Prefix+"repositories/")
	if err := reference.ValidateRepository(name); err != nil {
		return "", invalid("%v", err)
	}
	return name, nil
}

// allowed reports whether p may do action on repository: the policy's grant,
// narrowed by p's token scopes when p is an access token.
func (a *api) allowed(r *http.Request, p *authz.Principal, repository, action string) (bool, error) {
	g, err := a.policy.Grant(r.Context(), *p, scope.Scope{Type: scope.TypeRepository, Name: repository, Actions: []string{action}})
	if err != nil {
		return false, err
	}
	return g.Allows(action), nil
}

func (a *api) getRepository(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name, err := repositoryName(r)
	if err != nil {
		return err
	}
	ok, err := a.allowed(r, p, name, scope.Pull)
	if err != nil {
		return err
	}
	// Without pull, a private repository is answered as missing, so its existence
	// does not leak.
	vis, exists, err := a.store.RepositoryVisibility(r.Context(), name)
	if err != nil {
		return err
	}
	if !ok || !exists {
		return notFound("repository %s not found", name)
	}
	return reply(w, http.StatusOK, hubtypes.Repository{Name: name, Visibility: string(vis)})
}

func (a *api) updateRepository(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name, err := repositoryName(r)
	if err != nil {
		return err
	}
	var req hubtypes.UpdateRepositoryRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	vis, err := parseVisibility(req.Visibility)
	if err != nil {
		return err
	}
	// Settings need the admin role, which the token scopes express as "*".
	ok, err := a.allowed(r, p, name, scope.All)
	if err != nil {
		return err
	}
	if !ok {
		if pull, err := a.allowed(r, p, name, scope.Pull); err != nil || !pull {
			return notFound("repository %s not found", name)
		}
		return denied("changing the visibility of %s needs the admin role on it", name)
	}
	// The store audits the change in its transaction, with the event it raises.
	if err := a.store.SetRepositoryVisibility(r.Context(), name, vis); err != nil {
		return err
	}
	return reply(w, http.StatusOK, hubtypes.Repository{Name: name, Visibility: string(vis)})
}

func (a *api) listAudit(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	q := r.URL.Query()
	f := accounts.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action")}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return invalid("before %q: want a positive entry id", s)
		}
		f.Before = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return invalid("limit %q: want 1 to 1000", s)
		}
		f.Limit = n
	}
	// since and until bound the entries' time in the store's query, so each page is
	// a page of the range.
	for name, t := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if s := q.Get(name); s != "" {
			v, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return invalid("%s %q: want an RFC 3339 time, e.g. 2026-03-01T12:00:00Z", name, s)
			}
			*t = v
		}
	}
	entries, err := a.store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	page := hubtypes.AuditPage{Entries: make([]hubtypes.AuditEntry, 0, len(entries))}
	for _, e := range entries {
		page.Entries = append(page.Entries, hubtypes.AuditEntry{ID: e.ID, Time: formatTime(e.Time), Actor: e.Actor,
			Action: e.Action, Target: e.Target, Remote: e.Remote, Detail: e.Detail})
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	if len(entries) == limit && len(entries) > 0 {
		page.Next = entries[len(entries)-1].ID
	}
	return reply(w, http.StatusOK, page)
}
