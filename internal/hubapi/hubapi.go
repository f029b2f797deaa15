// Package hubapi is the hub's JSON API under /api/v1/: users, organisations, teams
// and their grants, robots, repository visibility, access tokens and the audit log.
// Every request is authenticated (a registry JWT, an access token, or HTTP Basic with a
// password or an access token), every mutation is audited, and errors use the
// distribution spec's JSON error body. docs/api.md documents the endpoints; package
// hubtypes holds their request and response bodies.
package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/reqlog"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
	"github.com/hubctl/hubctl/internal/workflow"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// Prefix is the path under which the API is served; the server mounts New's handler
// on it.
const Prefix = "/api/v1/"

// MaxBodySize bounds a request body: every request is a small JSON object, so a large
// one is a mistake or an attack.
const MaxBodySize = 64 << 10

// MinPasswordLength is the shortest password the API accepts for a user.
const MinPasswordLength = 8

// Error codes the distribution spec lacks but the API needs.
var (
	// Conflict answers a create whose name is taken.
	Conflict = errcode.Code{Name: "CONFLICT", Status: http.StatusConflict, Message: "already exists"}
	// InvalidRequest answers a malformed body, a bad name or value. The name matches
	// what the token service sends for a malformed request.
	InvalidRequest = errcode.Code{Name: "INVALID_REQUEST", Status: http.StatusBadRequest, Message: "invalid request"}
)

// Options are the dependencies of the API handler.
type Options struct {
	// Accounts is the accounts store; required.
	Accounts accounts.Store
	// Policy decides repository roles; nil means a Policy over Accounts.
	Policy *authz.Policy
	// VerifyJWT checks a registry token issued by /token and returns its subject and
	// how the subject signed in (the ids of the account and of the access token or
	// session behind the token, which the API checks are still live); nil refuses
	// registry tokens.
	VerifyJWT func(raw string) (subject string, hub token.Hub, err error)
	// Log receives failures that are not the client's; nil discards them.
	Log *slog.Logger
	// Now is the clock for token expiry and audit entries; nil means time.Now.
	Now func() time.Time
	// Repositories deletes whole repositories (DELETE /api/v1/repositories/{name…});
	// nil answers that endpoint 404.
	Repositories RepositoryDeleter
	// Events is the event outbox (GET /api/v1/events); nil answers that endpoint 404.
	Events events.Store
	// Search is the store's search (GET /api/v1/search); nil answers that endpoint 404.
	Search Searcher
	// Webhooks keeps webhooks and Keyring seals their secrets; nil answers the
	// /api/v1/webhooks endpoints 404.
	Webhooks webhook.DeliveryStore
	Keyring  *secrets.Keyring
	// Deliverer sends test deliveries (POST /api/v1/webhooks/{id}/test) as the hub's
	// deliverer sends real ones; nil answers that endpoint 503.
	Deliverer *webhook.Deliverer
	// Workflows keeps workflows, their runs and logs; nil answers the
	// /api/v1/workflows and /api/v1/runs endpoints 404.
	Workflows WorkflowStore
	// Blobs holds workflow artifacts (GET /api/v1/runs/{id}/artifacts/{name}); nil
	// answers the artifact endpoints 404.
	Blobs blobstore.Store
	// Deploys keeps deploy history and locks; nil answers the /api/v1/deploys
	// endpoints 404.
	Deploys DeployStore
	// Minter mints the deploys' pull tokens (the hub's one machine-token minter);
	// nil answers POST …/pull-token 404 (a hub without token auth).
	Minter *machinetoken.Minter
	// Guard limits failed sign-ins and concurrent password checks (shared with the
	// token service); nil means one of the handler's own.
	Guard *ratelimit.Guard
	// CheckWorkflow, when set, is asked about every workflow applied, after it parsed:
	// what this hub's executor cannot run (the Kubernetes executor: caches and
	// artifacts). Its workflow.Errors answer 400 as a parse error does.
	CheckWorkflow func(*workflow.Workflow) error
	// JobActive answers whether a workflow job's token (subject workflow-run:ID) is
	// still live: nil while its run has not ended, an error wrapping tokenserver.ErrJobRevoked
	// when it has or is gone. nil refuses every job token (the deploy endpoints are
	// the only ones a job token with permissions.deploy may call).
	JobActive func(ctx context.Context, subject string) error
	// JobArtifacts are the artifact store, blob store and limits through which a
	// job's helper (hubctl workflow-agent, on executors that cannot move files
	// themselves) uploads and downloads its run's artifacts; without Store and Blobs
	// those endpoints answer 404.
	JobArtifacts wfengine.ArtifactOptions
	// Rates makes the rate limit of one kind of action (max per key per window) that
	// the handler keeps: the calls of workflows' incoming URLs ("hook") and webhook
	// test deliveries ("hooktest"). Serve passes the database's, so every replica
	// counts together; nil keeps them in this process.
	Rates func(kind string, max int, window time.Duration) ratelimit.Rates
	// Tags reads tag history and restores tags (GET …/tags/{tag}/history, POST
	// …/tags/{tag}/restore); nil answers those endpoints 404. TagRules (nil: none)
	// refuses the restore of an immutable tag.
	Tags     TagStore
	TagRules TagRules
}

// api is the handler's state.
type api struct {
	store  accounts.Store
	repos  RepositoryDeleter
	events events.Store
	policy *authz.Policy
	// searcher is Options.Search.
	searcher Searcher

	webhooks  webhook.DeliveryStore
	keyring   *secrets.Keyring
	deliverer *webhook.Deliverer
	workflows WorkflowStore
	blobs     blobstore.Store
	deploys   DeployStore
	minter    *machinetoken.Minter
	// hookTests limits test deliveries per hook (Options.Rates).
	hookTests ratelimit.Rates
	jwt       func(string) (string, token.Hub, error)
	log       *slog.Logger
	now       func() time.Time
	mux       *http.ServeMux

	dummyOnce sync.Once
	dummy     string
	guard     *ratelimit.Guard

	// hookLimits limits calls of workflows' incoming URLs per workflow (Options.Rates).
	hookLimits ratelimit.Rates
	// checkWF is Options.CheckWorkflow.
	checkWF func(*workflow.Workflow) error
	// jobFiles is Options.JobArtifacts.
	jobFiles wfengine.ArtifactOptions
	// jobActive is Options.JobActive.
	jobActive func(ctx context.Context, subject string) error
	// tags and tagRules are Options.Tags and Options.TagRules.
	tags     TagStore
	tagRules TagRules
}

// New returns the handler of /api/v1/…. It serves full request paths (starting with
// Prefix), so it can be mounted with a plain ServeMux pattern.
func New(o Options) http.Handler {
	a := &api{store: o.Accounts, repos: o.Repositories, events: o.Events, policy: o.Policy, jwt: o.VerifyJWT, log: o.Log, now: o.Now, mux: http.NewServeMux(), guard: o.Guard,
		webhooks: o.Webhooks, keyring: o.Keyring, deliverer: o.Deliverer, workflows: o.Workflows, blobs: o.Blobs, deploys: o.Deploys, minter: o.Minter}
	rates := o.Rates
	if rates == nil {
		rates = func(_ string, max int, window time.Duration) ratelimit.Rates {
			return ratelimit.LocalRates(max, window)
		}
	}
	a.hookTests = rates("hooktest", 1, webhookTestInterval)
	a.hookLimits = rates("hook", hookRate, hookWindow)
	if a.now == nil {
		a.now = time.Now
	}
	a.searcher = o.Search
	a.checkWF = o.CheckWorkflow
	a.jobActive = o.JobActive
	a.jobFiles = o.JobArtifacts
	a.tags, a.tagRules = o.Tags, o.TagRules
	if a.guard == nil {
		a.guard = ratelimit.NewGuard(ratelimit.GuardOptions{Now: a.now})
	}
	if a.policy == nil {
		a.policy = &authz.Policy{Store: o.Accounts}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.routes()
	return a
}

// session wraps an endpoint that changes accounts, organisations, teams or quotas so
// that access tokens are refused: their scopes speak of repositories only, and a leaked
// CI token must not be able to reshape who may do what. Repository settings (scoped by
// the token) and revoking tokens stay open to them.
func session(h handlerFunc, what string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
		if err := requireSession(p, what); err != nil {
			return err
		}
		return h(w, r, p)
	}
}

// reads wraps an endpoint that reads area of the hub API (scope.HubAccounts, …) so
// that an access token reaches it only with a hub:AREA:read scope: a token made for
// pulling one repository must not read accounts, teams, grants or the audit log. The
// check comes before anything is looked up, so the refusal says nothing about what
// exists.
func reads(area string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
		if err := requireHubRead(p, area); err != nil {
			return err
		}
		return h(w, r, p)
	}
}

// handlerFunc is an endpoint: it runs for an authenticated principal and returns an
// error that ServeHTTP writes as the JSON error body.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *authz.Principal) error

type principalKey struct{}

// route registers the handlers of one path by method. Methods are dispatched here
// rather than in ServeMux patterns so that a wrong method gets a JSON error, not the
// mux's plain-text 405.
func (a *api) route(pattern string, byMethod map[string]handlerFunc) {
	allowed := make([]string, 0, len(byMethod))
	for m := range byMethod {
		allowed = append(allowed, m)
	}
	sort.Strings(allowed)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h, ok := byMethod[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			a.fail(w, r, errcode.New(errcode.Unsupported, "%s is not allowed on %s (allowed: %s)",
				r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			return
		}
		p := r.Context().Value(principalKey{}).(*authz.Principal)
		if err := h(w, r, p); err != nil {
			a.fail(w, r, err)
		}
	})
}

func (a *api) routes() {
	a.route("/api/v1/user", map[string]handlerFunc{"GET": a.whoami})

	a.route("/api/v1/users", map[string]handlerFunc{"GET": reads(scope.HubAccounts, a.listUsers), "POST": session(a.createUser, "creating a user")})
	a.route("/api/v1/users/{name}", map[string]handlerFunc{"GET": a.getUser, "PATCH": session(a.updateUser, "changing an account"), "DELETE": session(a.deleteUser, "deleting an account")})
	a.route("/api/v1/users/{name}/sessions", map[string]handlerFunc{"GET": session(a.listSessions, "listing sessions"), "DELETE": session(a.endSessions, "signing out everywhere")})
	a.route("/api/v1/users/{name}/sessions/{id}", map[string]handlerFunc{"DELETE": session(a.revokeSession, "revoking a session")})

	a.route("/api/v1/orgs", map[string]handlerFunc{"GET": reads(scope.HubOrgs, a.listOrgs), "POST": session(a.createOrg, "creating an organisation")})
	a.route("/api/v1/orgs/{org}", map[string]handlerFunc{"GET": reads(scope.HubOrgs, a.getOrg), "PATCH": session(a.updateOrg, "changing an organisation"), "DELETE": session(a.deleteOrg, "deleting an organisation")})
	a.route("/api/v1/orgs/{org}/teams", map[string]handlerFunc{"GET": reads(scope.HubTeams, a.listTeams), "POST": session(a.createTeam, "creating a team")})
	a.route("/api/v1/orgs/{org}/teams/{team}", map[string]handlerFunc{"DELETE": session(a.deleteTeam, "deleting a team")})
	a.route("/api/v1/orgs/{org}/teams/{team}/members", map[string]handlerFunc{"GET": reads(scope.HubTeams, a.listMembers)})
	a.route("/api/v1/orgs/{org}/teams/{team}/members/{user}", map[string]handlerFunc{"PUT": session(a.addMember, "adding a team member"), "DELETE": session(a.removeMember, "removing a team member")})
	a.route("/api/v1/orgs/{org}/teams/{team}/grants", map[string]handlerFunc{"GET": reads(scope.HubTeams, a.listGrants), "PUT": session(a.setGrant, "granting a team access")})
	a.route("/api/v1/orgs/{org}/robots", map[string]handlerFunc{"GET": reads(scope.HubOrgs, a.listRobots), "POST": a.createRobot})
	a.route("/api/v1/orgs/{org}/robots/{name}", map[string]handlerFunc{"DELETE": a.deleteRobot})
	a.route("/api/v1/orgs/{org}/robots/{name}/token", map[string]handlerFunc{"POST": a.rotateRobot})

	// Repository names contain slashes, which a {name} wildcard cannot match; the
	// handlers cut the name from the path themselves.
	a.route("/api/v1/repositories/", map[string]handlerFunc{"GET": a.repositoryGet, "POST": a.repositoryPost, "PATCH": a.updateRepository, "DELETE": a.deleteRepository})

	a.route("/api/v1/tokens", map[string]handlerFunc{"GET": a.listTokens, "POST": a.createToken})
	a.route("/api/v1/tokens/{name}", map[string]handlerFunc{"DELETE": a.revokeToken})

	a.route("/api/v1/namespaces/{ns}/quota", map[string]handlerFunc{"PUT": session(a.setQuota, "setting a quota")})
	a.route("/api/v1/namespaces/{ns}/usage", map[string]handlerFunc{"GET": reads(scope.HubQuotas, a.getUsage)})

	a.route(SearchPath, map[string]handlerFunc{"GET": a.search})
	a.route("/api/v1/audit", map[string]handlerFunc{"GET": reads(scope.HubAudit, a.listAudit)})
	a.route("/api/v1/events", map[string]handlerFunc{"GET": reads(scope.HubEvents, a.listEvents)})
	a.webhookRoutes()
	a.workflowRoutes()
	a.artifactRoutes()
	a.jobArtifactRoutes()
	a.deployRoutes()
}

// ServeHTTP authenticates the request before routing, so that even a request for an
// unknown path learns nothing without credentials.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, WorkflowHookPrefix) {
		// Signed with the workflow's secret, not authenticated (workflow_hooks.go).
		a.serveWorkflowHook(w, r)
		return
	}
	p, err := a.authenticate(r)
	if err != nil && r.URL.Path == SearchPath && r.Header.Get("Authorization") == "" {
		// Search without credentials is anonymous: public repositories only.
		p, err = &authz.Principal{}, nil
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	info := reqlog.From(r.Context())
	info.User = p.Name()
	// The changes this request makes record who made them on their events.
	actor := events.Actor{Name: p.Name(), Remote: remoteAddr(r), RequestID: info.RequestID}
	if p.Token != nil {
		actor.Token = p.Token.Name
	}
	if p.Job != nil {
		actor.Token = p.Job.Subject
	}
	ctx := events.WithActor(r.Context(), actor)
	r = r.WithContext(context.WithValue(ctx, principalKey{}, p))
	_, pattern := a.mux.Handler(r)
	if p.Job != nil && !(strings.HasPrefix(pattern, deployPrefix) && len(p.Job.Deploys) > 0) && !strings.HasPrefix(pattern, jobFilesPrefix) {
		// A job's token is anonymous everywhere but its own run's artifact endpoints
		// and, with permissions.deploy, the deploy endpoints.
		a.fail(w, r, errMachineToken())
		return
	}
	if pattern == "" {
		a.fail(w, r, errcode.New(errcode.NameUnknown, "no API endpoint %s", r.URL.Path))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// fail writes err as the JSON error body, mapping the store's sentinel errors to
// statuses; failures that are not the client's are logged and sent without detail.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *errcode.Error
	var tm *ratelimit.TooManyError
	switch {
	case errors.As(err, &tm):
		// A refused guess is the client's doing: warn, never error.
		a.log.WarnContext(r.Context(), "sign-in refused by the rate limit", "remote", remoteAddr(r), "reason", tm.Reason)
		w.Header().Set("Retry-After", strconv.Itoa(tm.RetryAfterSeconds()))
		err = errcode.New(errcode.TooManyRequests, "%s; retry in %d s", tm.Reason, tm.RetryAfterSeconds())
	case errors.As(err, &e):
	case errors.Is(err, accounts.ErrNotFound), errors.Is(err, accounts.ErrExists), errors.Is(err, accounts.ErrNotEmpty),
		errors.Is(err, accounts.ErrInvalid):
		err = storeError(err)
	case errors.Is(err, metadata.ErrUnavailable):
		a.log.WarnContext(r.Context(), "hub API: database unavailable", "error", err)
		w.Header().Set("Retry-After", "5")
		err = errcode.New(errcode.Unavailable, "the account database is unavailable; retry shortly")
	default:
		a.log.ErrorContext(r.Context(), "hub API", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if errors.As(err, &e) && e.Code.Name == errcode.Unauthorized.Name {
		w.Header().Set("WWW-Authenticate", `Basic realm="hubctl"`)
	}
	errcode.Write(w, err)
}

// storeError maps the store's sentinel errors (not found, exists, not empty, invalid)
// to the API's error codes; other errors are returned as they are.
func storeError(err error) error {
	var e *errcode.Error
	switch {
	case err == nil, errors.As(err, &e):
		return err
	case errors.Is(err, accounts.ErrNotFound):
		return errcode.New(errcode.NameUnknown, "%s", clientMessage(err))
	case errors.Is(err, accounts.ErrExists), errors.Is(err, accounts.ErrNotEmpty):
		return errcode.New(Conflict, "%s", clientMessage(err))
	case errors.Is(err, accounts.ErrInvalid):
		return errcode.New(InvalidRequest, "%s", clientMessage(err))
	}
	return err
}

// clientMessage is the store's error text, which names what was missing or taken and
// carries no secret (secrets never reach the store in clear).
func clientMessage(err error) string {
	return err.Error()
}

// decode reads a JSON request body into v: at most MaxBodySize, one value, no unknown
// fields, so a misspelt field is an error rather than silently ignored.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodySize)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errcode.New(InvalidRequest, "request body exceeds %d bytes", MaxBodySize).WithStatus(http.StatusRequestEntityTooLarge)
		}
		if errors.Is(err, io.EOF) {
			return errcode.New(InvalidRequest, "request body is empty, want a JSON object")
		}
		return errcode.New(InvalidRequest, "request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errcode.New(InvalidRequest, "request body: want exactly one JSON object")
	}
	return nil
}

// reply writes v as JSON with status.
func reply(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// noContent answers a mutation that has nothing to return.
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// audited returns r's context carrying the audit entry of the mutation that the one
// store call made with it is about to make (accounts.WithAudit): the store writes the
// entry in the mutation's transaction, so a mutation that commits always has its entry
// and one that fails has none. detail must never carry a secret.
func (a *api) audited(r *http.Request, p *authz.Principal, action, target, detail string) context.Context {
	return accounts.WithAudit(r.Context(), a.auditEntry(r, p, action, target, detail))
}

// auditEntry is the audit entry of an action p takes with r; detail must never carry
// a secret.
func (a *api) auditEntry(r *http.Request, p *authz.Principal, action, target, detail string) accounts.AuditEntry {
	e := accounts.AuditEntry{Time: a.now(), Actor: p.Name(), Action: action, Target: target, Remote: remoteAddr(r), Detail: detail}
	if p.Token != nil {
		// Which token acted matters when one leaks.
		e.Detail = strings.TrimSpace(detail + " (token " + p.Token.Name + ")")
	}
	if p.Job != nil {
		e.Detail = strings.TrimSpace(detail + " (job token of " + p.Job.Subject + ")")
	}
	return e
}

// remoteAddr is the peer's address. Forwarded headers are not trusted: a client could
// otherwise write any address into the audit log.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// formatTime renders t for responses; a zero time (never) is omitted.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// denied is the refusal of an authenticated principal.
func denied(format string, args ...any) error {
	return errcode.New(errcode.Denied, format, args...)
}

// invalid is the refusal of a malformed value.
func invalid(format string, args ...any) error {
	return errcode.New(InvalidRequest, format, args...)
}

// notFound is the answer for a missing user, organisation, team, token or repository.
func notFound(format string, args ...any) error {
	return errcode.New(errcode.NameUnknown, format, args...)
}
