// Package hubhistory is deploy.History kept by a hub: a service's deploy records and
// its lock through the hub API (/api/v1/deploys, internal/hubclient), so history
// survives any laptop and two deploys of one service never run at once, whoever
// starts them. It also fetches what a deploy needs from the hub: a short-lived pull
// token for the Docker engines and the values of the secrets the spec names.
package hubhistory

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
	"unicode/utf8"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// MaxList bounds the records List answers (newest first); ListPage pages further.
const MaxList = 500

// MaxError is the longest error message Finish sends; a longer one is cut.
const MaxError = 4 << 10

// History is the deploy history and lock of one namespace's services on a hub.
type History struct {
	client    *hubclient.Client
	namespace string
}

var _ deploy.History = (*History)(nil)

// New returns the History of namespace's services on the hub c talks to.
func New(c *hubclient.Client, namespace string) *History {
	return &History{client: c, namespace: namespace}
}

// Namespace is the namespace whose services this History keeps.
func (h *History) Namespace() string { return h.namespace }

// Begin takes the service's lock for holder (its Host and PID; this machine and
// process when empty) and records rec as running; see deploy.History. rec.Namespace,
// when set, must be this History's. A lock held and not stale answers
// *deploy.LockedError.
func (h *History) Begin(ctx context.Context, rec deploy.Record, holder deploy.LockHolder) (deploy.Record, error) {
	if rec.Namespace != "" && rec.Namespace != h.namespace {
		return deploy.Record{}, fmt.Errorf("begin deploy of %s: record of namespace %s, history of %s", rec.Service, rec.Namespace, h.namespace)
	}
	if holder.Host == "" {
		holder.Host, _ = os.Hostname()
		if holder.Host == "" {
			holder.Host = "unknown"
		}
	}
	if holder.PID == 0 {
		holder.PID = os.Getpid()
	}
	res, err := h.client.BeginDeploy(ctx, h.namespace, rec.Service, hubtypes.BeginDeployRequest{
		Spec: rec.SpecYAML, Digests: rec.Digests, Target: rec.Target, Hosts: rec.Hosts, RollbackOf: rec.RollbackOf,
		Host: holder.Host, PID: holder.PID,
	})
	if err != nil {
		return deploy.Record{}, h.wrap("begin deploy of", rec.Service, err)
	}
	out := FromAPI(res.Deploy)
	out.SpecYAML = rec.SpecYAML
	return out, nil
}

// Renew extends the lock deploy number holds; the deployer calls it every
// deploy.LockRenew. An error wrapping ErrLockLost means another deploy took it.
func (h *History) Renew(ctx context.Context, service string, number int) error {
	if _, err := h.client.RenewDeployLock(ctx, h.namespace, service, number); err != nil {
		return h.wrap(fmt.Sprintf("renew the lock of deploy %d of", number), service, err)
	}
	return nil
}

// Finish records deploy number's outcome (errMsg cut to MaxError bytes) and
// releases the lock.
func (h *History) Finish(ctx context.Context, service string, number int, outcome deploy.Outcome, errMsg string) error {
	if len(errMsg) > MaxError {
		cut := MaxError - len("…")
		for cut > 0 && !utf8.RuneStart(errMsg[cut]) {
			cut--
		}
		errMsg = errMsg[:cut] + "…"
	}
	_, err := h.client.FinishDeploy(ctx, h.namespace, service, number, hubtypes.FinishDeployRequest{Outcome: string(outcome), Error: errMsg})
	if err != nil {
		return h.wrap(fmt.Sprintf("finish deploy %d of", number), service, err)
	}
	return nil
}

// List answers the service's newest records (at most MaxList), newest first. They
// carry no SpecYAML (Get has it).
func (h *History) List(ctx context.Context, service string) ([]deploy.Record, error) {
	var out []deploy.Record
	before := 0
	for len(out) < MaxList {
		page, next, err := h.ListPage(ctx, service, before, min(100, MaxList-len(out)))
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == 0 {
			break
		}
		before = next
	}
	if out == nil {
		out = []deploy.Record{}
	}
	return out, nil
}

// ListPage answers up to limit records numbered below before (0: the newest), newest
// first, and the before of the next page (0 when there is none).
func (h *History) ListPage(ctx context.Context, service string, before, limit int) ([]deploy.Record, int, error) {
	page, err := h.client.ListDeploys(ctx, h.namespace, service, before, limit)
	if err != nil {
		return nil, 0, h.wrap("list deploys of", service, err)
	}
	out := make([]deploy.Record, 0, len(page.Deploys))
	for _, d := range page.Deploys {
		out = append(out, FromAPI(d))
	}
	return out, page.Next, nil
}

// Get answers deploy number of the service, spec included; an error wrapping
// deploy.ErrNoRecord when there is none.
func (h *History) Get(ctx context.Context, service string, number int) (deploy.Record, error) {
	d, err := h.client.GetDeploy(ctx, h.namespace, service, number)
	if err != nil {
		return deploy.Record{}, h.wrap(fmt.Sprintf("deploy %d of", number), service, err)
	}
	return FromAPI(d), nil
}

// BreakLock removes the service's lock whoever holds it (the hub audits it and marks
// the deploy holding it failed).
func (h *History) BreakLock(ctx context.Context, service string) error {
	_, err := h.BreakLockHolder(ctx, service)
	return err
}

// BreakLockHolder is BreakLock answering who held the lock.
func (h *History) BreakLockHolder(ctx context.Context, service string) (deploy.LockHolder, error) {
	l, err := h.client.BreakDeployLock(ctx, h.namespace, service)
	if err != nil {
		return deploy.LockHolder{}, h.wrap("break the deploy lock of", service, err)
	}
	return holderOf(l), nil
}

// TakeLock takes the service's lock for work that is no deploy (down) for holder
// (its Host and PID; the account is the client's), or renews it when holder has
// it. A lock another holds and not stale answers *deploy.LockedError.
func (h *History) TakeLock(ctx context.Context, service string, holder deploy.LockHolder) error {
	_, err := h.client.TakeDeployLock(ctx, h.namespace, service, hubtypes.TakeDeployLockRequest{Host: holder.Host, PID: holder.PID})
	if err != nil {
		return h.wrap("lock the deploys of", service, err)
	}
	return nil
}

// ReleaseLock releases the lock TakeLock took for holder.
func (h *History) ReleaseLock(ctx context.Context, service string, holder deploy.LockHolder) error {
	err := h.client.ReleaseDeployLock(ctx, h.namespace, service, hubtypes.TakeDeployLockRequest{Host: holder.Host, PID: holder.PID})
	if err != nil {
		return h.wrap("release the deploy lock of", service, err)
	}
	return nil
}

// Lock answers who holds the service's lock (a stale one too: its Expires has
// passed), and false when nobody does.
func (h *History) Lock(ctx context.Context, service string) (deploy.LockHolder, bool, error) {
	l, err := h.client.DeployLock(ctx, h.namespace, service)
	if errors.Is(h.wrap("", service, err), ErrNotLocked) {
		return deploy.LockHolder{}, false, nil
	}
	if err != nil {
		return deploy.LockHolder{}, false, h.wrap("deploy lock of", service, err)
	}
	return holderOf(l), true, nil
}

// PullToken is a short-lived registry token that pulls Repositories only, minted by
// the hub for one running deploy. Token is a credential: never log or store it; its
// String hides it.
type PullToken struct {
	Token        string
	ExpiresAt    time.Time
	Repositories []string
}

// String hides the token.
func (t PullToken) String() string {
	return fmt.Sprintf("hubhistory.PullToken{Repositories:%v ExpiresAt:%s}", t.Repositories, t.ExpiresAt.Format(time.RFC3339))
}

// GoString hides the token from %#v as well.
func (t PullToken) GoString() string { return t.String() }

// RegistryAuth is the token as the Docker engine API takes a pull's credentials
// (the X-Registry-Auth header, the RegistryAuth option of the moby client's
// ImagePull): base64url of the JSON auth config carrying it as registrytoken for
// server (the hub's host[:port]). It is a credential, like the token.
func (t PullToken) RegistryAuth(server string) string {
	b, _ := json.Marshal(struct {
		ServerAddress string `json:"serveraddress"`
		RegistryToken string `json:"registrytoken"`
	}{server, t.Token})
	return base64.URLEncoding.EncodeToString(b)
}

// PullToken asks the hub for a token pulling repos (repository names on that hub,
// e.g. acme/web) for running deploy number of service, valid 10 minutes. Every
// repository must be one the caller may pull.
func (h *History) PullToken(ctx context.Context, service string, number int, repos []string) (PullToken, error) {
	t, err := h.client.DeployPullToken(ctx, h.namespace, service, number, repos)
	if err != nil {
		return PullToken{}, h.wrap("pull token for", service, err)
	}
	exp, _ := time.Parse(time.RFC3339, t.ExpiresAt)
	return PullToken{Token: t.Token, ExpiresAt: exp, Repositories: t.Repositories}, nil
}

// Secrets answers the values of the namespace's secrets names, for a deploy of
// service; every name must be set. The values are credentials: never log them.
func (h *History) Secrets(ctx context.Context, service string, names []string) (map[string]string, error) {
	v, err := h.client.DeploySecrets(ctx, h.namespace, service, names)
	if err != nil {
		return nil, h.wrap("secrets for", service, err)
	}
	return v, nil
}

// ErrNotLocked is wrapped by BreakLock's error when no deploy holds the lock.
var ErrNotLocked = errors.New("no deploy holds the lock")

// ErrLockLost is wrapped by Renew's error when the deploy no longer holds the lock:
// it finished, the lock was broken, or it went stale and another deploy took it.
var ErrLockLost = errors.New("the deploy lost its lock")

// wrap names what failed and maps the hub's deploy errors onto deploy's: a held
// lock to *deploy.LockedError, a missing record to deploy.ErrNoRecord, a lost lock
// to ErrLockLost.
func (h *History) wrap(what, service string, err error) error {
	var he *hubclient.Error
	if !errors.As(err, &he) {
		return fmt.Errorf("%s %s/%s: %w", what, h.namespace, service, err)
	}
	switch he.Code {
	case "DEPLOY_LOCKED":
		var l hubtypes.DeployLock
		if json.Unmarshal(he.Detail, &l) == nil && l.By != "" {
			return &deploy.LockedError{Service: h.namespace + "/" + service, Holder: holderOf(l)}
		}
	case "DEPLOY_UNKNOWN":
		return fmt.Errorf("%s %s/%s: %w (%v)", what, h.namespace, service, deploy.ErrNoRecord, err)
	case "DEPLOY_NOT_LOCKED":
		return fmt.Errorf("%s %s/%s: %w", what, h.namespace, service, ErrNotLocked)
	case "DEPLOY_LOCK_LOST":
		return fmt.Errorf("%s %s/%s: %w (%v)", what, h.namespace, service, ErrLockLost, err)
	}
	return fmt.Errorf("%s %s/%s: %w", what, h.namespace, service, err)
}

// FromAPI converts the hub API's record to deploy's.
func FromAPI(d hubtypes.DeployRecord) deploy.Record {
	return deploy.Record{Number: d.Number, Namespace: d.Namespace, Service: d.Service, SpecYAML: d.Spec, Digests: d.Digests,
		Target: d.Target, Hosts: d.Hosts, By: d.By, Started: parseTime(d.Started), Finished: parseTime(d.Finished),
		Outcome: deploy.Outcome(d.Outcome), Error: d.Error, RollbackOf: d.RollbackOf}
}

func holderOf(l hubtypes.DeployLock) deploy.LockHolder {
	return deploy.LockHolder{By: l.By, Host: l.Host, PID: l.PID, Number: l.Number, Acquired: parseTime(l.Acquired), Expires: parseTime(l.Expires)}
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339, s)
	return t
}
