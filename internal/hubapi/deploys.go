package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/proxy"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
)

// A service's deploys belong to its namespace (docs/design/deploy.md "State, history
// and locks"). Whoever may write to the whole namespace deploys (begins, renews and
// finishes deploys, breaks locks, mints pull tokens, reads the namespace's secrets);
// whoever may read it sees the history. Outsiders get the answer of a namespace that
// does not exist. An access token also needs hub:deploys:read to read and
// hub:deploys:write for the rest. The hub records and locks; the deploying itself
// runs where `hubctl deploy` runs.

// Error codes of the deploy endpoints.
var (
	// DeployLocked refuses a deploy while another holds the service's lock; its
	// detail is the holder (hubtypes.DeployLock).
	DeployLocked = errcode.Code{Name: "DEPLOY_LOCKED", Status: http.StatusConflict, Message: "another deploy holds the service's lock"}
	// DeployUnknown answers a deploy number the service's history does not hold (a
	// namespace one may not read is NAME_UNKNOWN, as elsewhere).
	DeployUnknown = errcode.Code{Name: "DEPLOY_UNKNOWN", Status: http.StatusNotFound, Message: "no such deploy"}
	// DeployNotLocked answers reading or breaking the lock of a service that no
	// deploy holds.
	DeployNotLocked = errcode.Code{Name: "DEPLOY_NOT_LOCKED", Status: http.StatusNotFound, Message: "no deploy holds the lock"}
	// DeployLockLost answers a renewal by a deploy that no longer holds its lock.
	DeployLockLost = errcode.Code{Name: "DEPLOY_LOCK_LOST", Status: http.StatusConflict, Message: "the deploy no longer holds the lock"}
)

// Bounds of the deploy endpoints' input.
const (
	// MaxDeployBody bounds the body of a begin: a spec of deploy.MaxFileSize,
	// JSON-escaped (at most 6 bytes per byte), and the rest.
	MaxDeployBody    = 6*deploy.MaxFileSize + 64<<10
	maxDeployDigests = 64
	maxDeployError   = 4 << 10
	maxHostName      = 255
	maxDeployRef     = 512
	maxPullRepos     = 32
	maxSecretNames   = 64
	defaultDeploys   = 20
	maxDeploysPage   = 100
	// DeployPullTokenTTL is the lifetime of a deploy's pull token.
	DeployPullTokenTTL = 10 * time.Minute
)

// DeployStore is what the deploy endpoints need of the hub's store (sqlstore
// implements it); without it they answer 404.
type DeployStore interface {
	BeginDeploy(ctx context.Context, rec deploy.Record, byID int64, holder deploy.LockHolder, ttl time.Duration) (deploy.Record, error)
	RenewDeployLock(ctx context.Context, namespace, service string, number int, ttl time.Duration) (deploy.LockHolder, error)
	FinishDeploy(ctx context.Context, namespace, service string, number int, outcome deploy.Outcome, errMsg string) (deploy.Record, error)
	BreakDeployLock(ctx context.Context, namespace, service, by string) (deploy.LockHolder, error)
	TakeDeployLock(ctx context.Context, namespace, service string, byID int64, by string, holder deploy.LockHolder, ttl time.Duration) (deploy.LockHolder, error)
	ReleaseDeployLock(ctx context.Context, namespace, service string, byID int64, holder deploy.LockHolder) error
	DeployLock(ctx context.Context, namespace, service string) (deploy.LockHolder, bool, error)
	GetDeploy(ctx context.Context, namespace, service string, number int) (deploy.Record, error)
	ListDeploys(ctx context.Context, namespace, service string, before, limit int) ([]deploy.Record, error)
	RunningDeployID(ctx context.Context, namespace, service string, number int) (int64, error)
}

// deployPrefix starts the paths of the deploy endpoints, the only ones a workflow
// job's token may call.
const deployPrefix = "/api/v1/deploys/"

func (a *api) deployRoutes() {
	base := deployPrefix + "{ns}/{service}"
	a.route(base, map[string]handlerFunc{"GET": reads(scope.HubDeploys, a.listDeploys), "POST": writes(scope.HubDeploys, a.beginDeploy)})
	a.route(base+"/{number}", map[string]handlerFunc{"GET": reads(scope.HubDeploys, a.getDeploy), "PATCH": writes(scope.HubDeploys, a.finishDeploy)})
	a.route(base+"/{number}/renew", map[string]handlerFunc{"POST": writes(scope.HubDeploys, a.renewDeploy)})
	a.route(base+"/lock", map[string]handlerFunc{"GET": reads(scope.HubDeploys, a.getDeployLock), "POST": writes(scope.HubDeploys, a.takeDeployLock),
		"DELETE": writes(scope.HubDeploys, a.breakDeployLock)})
	a.route(base+"/lock/release", map[string]handlerFunc{"POST": writes(scope.HubDeploys, a.releaseDeployLock)})
	a.route(base+"/pull-token", map[string]handlerFunc{"POST": writes(scope.HubDeploys, a.deployPullToken)})
	a.route(base+"/secrets", map[string]handlerFunc{"POST": writes(scope.HubDeploys, a.deploySecrets)})
}

// deployTarget is the namespace and service of a request p may act on with role need.
type deployTarget struct {
	store       DeployStore
	ns, service string
}

func (t deployTarget) name() string { return t.ns + "/" + t.service }

// deployAccess checks that the service name is valid, that p has at least role need
// on the whole namespace, which exists, and answers the target. Whoever may not read
// the namespace gets the answer of a namespace that does not exist.
func (a *api) deployAccess(r *http.Request, p *authz.Principal, need accounts.Role, what string) (deployTarget, error) {
	if a.deploys == nil {
		return deployTarget{}, notFound("no API endpoint %s", r.URL.Path)
	}
	t := deployTarget{store: a.deploys, ns: r.PathValue("ns"), service: r.PathValue("service")}
	if !proxy.ServiceNameRe.MatchString(t.service) {
		return deployTarget{}, invalid("service name %q: want lower-case letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 64 characters", clip(t.service))
	}
	role, err := a.namespaceRole(r.Context(), p, t.ns)
	if err != nil {
		return deployTarget{}, err
	}
	switch {
	case !p.MayDeploy(t.ns, t.service):
		// A job's token for another namespace or service: as to an outsider.
		return deployTarget{}, errNoWorkflows(t.ns)
	case role.Rank() < accounts.RoleRead.Rank():
		return deployTarget{}, errNoWorkflows(t.ns)
	case p.Job != nil && role.Rank() < accounts.RoleWrite.Rank():
		return deployTarget{}, denied("%s %s: %s, whom this job acts for, no longer has the write role on the whole namespace %s", what, t.name(), p.User.Name, t.ns)
	case role.Rank() < need.Rank():
		return deployTarget{}, denied("%s %s needs the %s role on the whole namespace %s", what, t.name(), need, t.ns)
	}
	if _, err := a.store.GetNamespace(r.Context(), t.ns); errors.Is(err, accounts.ErrNotFound) {
		return deployTarget{}, errNoWorkflows(t.ns)
	} else if err != nil {
		return deployTarget{}, err
	}
	return t, nil
}

// deployNumber reads the {number} of the path.
func deployNumber(r *http.Request) (int, error) {
	s := r.PathValue("number")
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || len(s) > 10 {
		return 0, invalid("deploy number %q: want a positive integer", clip(s))
	}
	return n, nil
}

// deployStoreError maps the store's deploy errors to answers.
func deployStoreError(err error) error {
	var le *deploy.LockedError
	switch {
	case errors.As(err, &le):
		return errcode.New(DeployLocked, "%v", err).WithDetail(lockView(le.Service, le.Holder))
	case errors.Is(err, deploy.ErrNoRecord):
		return errcode.New(DeployUnknown, "%v", err)
	case errors.Is(err, metadata.ErrNoDeployLock):
		return errcode.New(DeployNotLocked, "%v", err)
	case errors.Is(err, metadata.ErrDeployLockLost):
		return errcode.New(DeployLockLost, "%v", err)
	case errors.Is(err, metadata.ErrDeployFinished), errors.Is(err, metadata.ErrDeployNotRunning):
		return errcode.New(Conflict, "%v", err)
	}
	return err
}

func lockView(name string, h deploy.LockHolder) hubtypes.DeployLock {
	ns, service, _ := strings.Cut(name, "/")
	return hubtypes.DeployLock{Namespace: ns, Service: service, By: h.By, Host: h.Host, PID: h.PID, Number: h.Number,
		Acquired: formatTime(h.Acquired), Expires: formatTime(h.Expires)}
}

// DeployView is the API's form of a deploy record.
func DeployView(rec deploy.Record) hubtypes.DeployRecord {
	v := hubtypes.DeployRecord{Namespace: rec.Namespace, Service: rec.Service, Number: rec.Number, Spec: rec.SpecYAML,
		Digests: rec.Digests, Target: rec.Target, Hosts: rec.Hosts, By: rec.By, Started: formatTime(rec.Started),
		Finished: formatTime(rec.Finished), Outcome: string(rec.Outcome), Error: rec.Error, RollbackOf: rec.RollbackOf}
	if v.Digests == nil {
		v.Digests = map[string]string{}
	}
	if v.Hosts == nil {
		v.Hosts = []string{}
	}
	return v
}

// deployAudit is ctx carrying the audit entry of a change of t, which the store
// writes in the change's transaction.
func (a *api) deployAudit(r *http.Request, p *authz.Principal, action string, t deployTarget, detail string) context.Context {
	return a.audited(r, p, action, t.name(), detail)
}

// beginDeploy answers POST /api/v1/deploys/{ns}/{service}: takes the service's lock,
// records the deploy as running and answers it with its number (201), or
// DEPLOY_LOCKED with the holder.
func (a *api) beginDeploy(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleWrite, "deploying")
	if err != nil {
		return err
	}
	var req hubtypes.BeginDeployRequest
	if err := decodeLimited(w, r, &req, MaxDeployBody); err != nil {
		return err
	}
	if err := checkBegin(&req); err != nil {
		return err
	}
	if req.RollbackOf > 0 {
		if _, err := t.store.GetDeploy(r.Context(), t.ns, t.service, req.RollbackOf); err != nil {
			if errors.Is(err, deploy.ErrNoRecord) {
				return invalid("rollbackOf: %s has no deploy %d", t.name(), req.RollbackOf)
			}
			return err
		}
	}
	rec := deploy.Record{Namespace: t.ns, Service: t.service, SpecYAML: req.Spec, Digests: req.Digests, Target: req.Target,
		Hosts: req.Hosts, By: p.Name(), RollbackOf: req.RollbackOf}
	ctx := a.deployAudit(r, p, "deploy.begin", t, "from "+req.Host+" pid "+strconv.Itoa(req.PID))
	rec, err = t.store.BeginDeploy(ctx, rec, p.User.ID, deploy.LockHolder{Host: req.Host, PID: req.PID}, deploy.LockTTL)
	if err != nil {
		return deployStoreError(err)
	}
	h, _, err := t.store.DeployLock(r.Context(), t.ns, t.service)
	if err != nil {
		return err
	}
	v := DeployView(rec)
	v.Spec = ""
	return reply(w, http.StatusCreated, hubtypes.BeginDeployResponse{Deploy: v, Lock: lockView(t.name(), h)})
}

// checkBegin bounds and validates a begin's body.
func checkBegin(req *hubtypes.BeginDeployRequest) error {
	switch {
	case strings.TrimSpace(req.Spec) == "":
		return invalid("spec is empty: want the deploy file as deployed")
	case len(req.Spec) > deploy.MaxFileSize:
		return errcode.New(InvalidRequest, "spec is %d bytes, more than %d", len(req.Spec), deploy.MaxFileSize).WithStatus(http.StatusRequestEntityTooLarge)
	case !utf8.ValidString(req.Spec) || strings.IndexByte(req.Spec, 0) >= 0:
		return invalid("spec is not UTF-8 text")
	case req.Target != "docker" && req.Target != "kubernetes":
		return invalid("target %q: want docker or kubernetes", clip(req.Target))
	case len(req.Hosts) > deploy.MaxHostsList:
		return invalid("%d hosts, more than %d", len(req.Hosts), deploy.MaxHostsList)
	case len(req.Digests) == 0:
		return invalid("digests is empty: want at least the service's pinned image")
	case len(req.Digests) > maxDeployDigests:
		return invalid("%d digests, more than %d", len(req.Digests), maxDeployDigests)
	case req.RollbackOf < 0:
		return invalid("rollbackOf %d: want a deploy number", req.RollbackOf)
	case req.PID < 0 || req.PID > 1<<31:
		return invalid("pid %d is not a process id", req.PID)
	}
	if err := printable("host", req.Host, maxHostName); err != nil {
		return err
	}
	for _, h := range req.Hosts {
		if err := printable("hosts", h, maxHostName); err != nil {
			return err
		}
	}
	for what, ref := range req.Digests {
		if what != "service" && !proxy.ServiceNameRe.MatchString(what) {
			return invalid("digests: key %q: want service or an accessory's name", clip(what))
		}
		if err := pinnedRef(ref); err != nil {
			return invalid("digests: %s: %v", what, err)
		}
	}
	return nil
}

// pinnedRef checks a reference pinned by digest: NAME@ALGORITHM:HEX.
func pinnedRef(ref string) error {
	name, dgst, ok := strings.Cut(ref, "@")
	if !ok || name == "" || len(ref) > maxDeployRef {
		return errors.New("want a reference pinned by digest (HOST/REPOSITORY@sha256:…), at most 512 bytes")
	}
	if err := printable("reference", name, maxDeployRef); err != nil {
		return err
	}
	if _, err := reference.ParseDigest(dgst); err != nil {
		return err
	}
	return nil
}

// printable refuses an empty value, one longer than max, and one with a space or a
// control character.
func printable(what, v string, max int) error {
	if v == "" || len(v) > max {
		return invalid("%s %q: want 1 to %d characters", what, clip(v), max)
	}
	for _, c := range v {
		if c <= ' ' || c == 0x7f || !utf8.ValidRune(c) || c == utf8.RuneError {
			return invalid("%s %q has a space or a control character", what, clip(v))
		}
	}
	return nil
}

// decodeLimited is decode with a bound of its own.
func decodeLimited(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return errcode.New(InvalidRequest, "request body exceeds %d bytes", limit).WithStatus(http.StatusRequestEntityTooLarge)
		case errors.Is(err, io.EOF):
			return invalid("request body is empty, want a JSON object")
		}
		return invalid("request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("request body: want exactly one JSON object")
	}
	return nil
}

// renewDeploy answers POST …/{number}/renew: extends the lock by deploy.LockTTL.
func (a *api) renewDeploy(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleWrite, "deploying")
	if err != nil {
		return err
	}
	n, err := deployNumber(r)
	if err != nil {
		return err
	}
	h, err := t.store.RenewDeployLock(r.Context(), t.ns, t.service, n, deploy.LockTTL)
	if err != nil {
		return deployStoreError(err)
	}
	return reply(w, http.StatusOK, lockView(t.name(), h))
}

// finishDeploy answers PATCH …/{number}: records the outcome and releases the lock.
func (a *api) finishDeploy(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleWrite, "deploying")
	if err != nil {
		return err
	}
	n, err := deployNumber(r)
	if err != nil {
		return err
	}
	var req hubtypes.FinishDeployRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	switch deploy.Outcome(req.Outcome) {
	case deploy.OutcomeSucceeded, deploy.OutcomeFailed, deploy.OutcomeRolledBack:
	default:
		return invalid("outcome %q: want succeeded, failed or rolled_back", clip(req.Outcome))
	}
	if len(req.Error) > maxDeployError || !utf8.ValidString(req.Error) {
		return invalid("error: at most %d bytes of UTF-8 text", maxDeployError)
	}
	ctx := a.deployAudit(r, p, "deploy.finish", t, "deploy "+strconv.Itoa(n)+" "+req.Outcome)
	rec, err := t.store.FinishDeploy(ctx, t.ns, t.service, n, deploy.Outcome(req.Outcome), req.Error)
	if err != nil {
		return deployStoreError(err)
	}
	v := DeployView(rec)
	v.Spec = ""
	return reply(w, http.StatusOK, v)
}

// listDeploys answers GET /api/v1/deploys/{ns}/{service}?before=N&limit=M: newest
// first, without specs.
func (a *api) listDeploys(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleRead, "reading the deploys of")
	if err != nil {
		return err
	}
	limit, before := defaultDeploys, 0
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxDeploysPage {
			return invalid("limit %q: want 1 to %d", clip(s), maxDeploysPage)
		}
	}
	if s := r.URL.Query().Get("before"); s != "" {
		if before, err = strconv.Atoi(s); err != nil || before < 1 {
			return invalid("before %q: want a deploy number", clip(s))
		}
	}
	list, err := t.store.ListDeploys(r.Context(), t.ns, t.service, before, limit)
	if err != nil {
		return err
	}
	page := hubtypes.DeployPage{Deploys: make([]hubtypes.DeployRecord, 0, len(list))}
	for _, rec := range list {
		v := DeployView(rec)
		v.Spec = ""
		page.Deploys = append(page.Deploys, v)
	}
	if len(list) == limit && list[len(list)-1].Number > 1 {
		page.Next = list[len(list)-1].Number
	}
	return reply(w, http.StatusOK, page)
}

// getDeploy answers GET …/{number}: the record with its spec.
func (a *api) getDeploy(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleRead, "reading the deploys of")
	if err != nil {
		return err
	}
	n, err := deployNumber(r)
	if err != nil {
		return err
	}
	rec, err := t.store.GetDeploy(r.Context(), t.ns, t.service, n)
	if err != nil {
		return deployStoreError(err)
	}
	return reply(w, http.StatusOK, DeployView(rec))
}

// getDeployLock answers GET …/lock: who holds it (a stale lock too), or 404.
func (a *api) getDeployLock(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleRead, "reading the deploys of")
	if err != nil {
		return err
	}
	h, ok, err := t.store.DeployLock(r.Context(), t.ns, t.service)
	if err != nil {
		return err
	}
	if !ok {
		return deployStoreError(fmt.Errorf("deploy lock of %s: %w", t.name(), metadata.ErrNoDeployLock))
	}
	return reply(w, http.StatusOK, lockView(t.name(), h))
}

// takeDeployLock answers POST …/lock {"host", "pid"}: takes the service's lock for
// work that is no deploy (`hubctl deploy down`), or renews it for the same holder
// (account, host, pid), for deploy.LockTTL; DEPLOY_LOCKED with the holder while
// another holds it. Taking it is audited; its renewals are not.
func (a *api) takeDeployLock(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, req, err := a.deployLockRequest(w, r, p)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if h, ok, err := t.store.DeployLock(ctx, t.ns, t.service); err != nil {
		return err
	} else if !ok || h.Number != 0 || h.By != p.Name() || h.Host != req.Host || h.PID != req.PID {
		ctx = a.deployAudit(r, p, "deploy.lock.take", t, "from "+req.Host+" pid "+strconv.Itoa(req.PID))
	}
	h, err := t.store.TakeDeployLock(ctx, t.ns, t.service, p.User.ID, p.Name(), deploy.LockHolder{Host: req.Host, PID: req.PID}, deploy.LockTTL)
	if err != nil {
		return deployStoreError(err)
	}
	return reply(w, http.StatusOK, lockView(t.name(), h))
}

// releaseDeployLock answers POST …/lock/release {"host", "pid"}: releases the lock
// takeDeployLock took for this holder (204); one another holds is left alone.
func (a *api) releaseDeployLock(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, req, err := a.deployLockRequest(w, r, p)
	if err != nil {
		return err
	}
	if err := t.store.ReleaseDeployLock(r.Context(), t.ns, t.service, p.User.ID, deploy.LockHolder{Host: req.Host, PID: req.PID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deployLockRequest checks access and reads the body of a lock take or release.
func (a *api) deployLockRequest(w http.ResponseWriter, r *http.Request, p *authz.Principal) (deployTarget, hubtypes.TakeDeployLockRequest, error) {
	var req hubtypes.TakeDeployLockRequest
	t, err := a.deployAccess(r, p, accounts.RoleWrite, "locking the deploys of")
	if err != nil {
		return t, req, err
	}
	if err := decode(w, r, &req); err != nil {
		return t, req, err
	}
	if req.PID < 0 || req.PID > 1<<31 {
		return t, req, invalid("pid %d is not a process id", req.PID)
	}
	if err := printable("host", req.Host, maxHostName); err != nil {
		return t, req, err
	}
	return t, req, nil
}

// breakDeployLock answers DELETE …/lock: removes the lock whoever holds it, marks its
// deploy failed, audits it, and answers who held it.
func (a *api) breakDeployLock(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	t, err := a.deployAccess(r, p, accounts.RoleWrite, "breaking the deploy lock of")
	if err != nil {
		return err
	}
	var detail string
	if h, ok, err := t.store.DeployLock(r.Context(), t.ns, t.service); err == nil && ok {
		detail = "held by " + h.By + " on " + h.Host + " pid " + strconv.Itoa(h.PID) + " for deploy " + strconv.Itoa(h.Number)
	}
	h, err := t.store.BreakDeployLock(a.deployAudit(r, p, "deploy.lock.break", t, detail), t.ns, t.service, p.Name())
	if err != nil {
		return deployStoreError(err)
	}
	return reply(w, http.StatusOK, lockView(t.name(), h))
}
