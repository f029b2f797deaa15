package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Outcome is how a deploy ended, or running while it runs.
type Outcome string

// The outcomes a Record holds.
const (
	OutcomeRunning   Outcome = "running"
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	// OutcomeRolledBack is a deploy that failed and whose earlier version was put
	// back (helm's atomic upgrade; a Docker deploy never needs it: the old tasks keep
	// serving until the switch).
	OutcomeRolledBack Outcome = "rolled_back"
)

// Record is one deploy in a service's history: what was deployed (the spec with
// secrets by name only, the pinned digests), where, by whom, when, and how it ended.
// Rollback re-deploys a Record's SpecYAML and Digests.
type Record struct {
	// Number counts a service's deploys from 1; it is the deploy's version in
	// `hubctl deploy history` and `rollback VERSION`.
	Number    int
	Namespace string
	Service   string
	// SpecYAML is the deploy file as deployed: secret values never appear in a
	// spec (only their names), so it is kept whole.
	SpecYAML string
	// Digests pin what ran: "service" for the service's image, the accessory's name
	// for each accessory, as full references (HOST/REPO@sha256:…).
	Digests map[string]string
	// Target is "docker" or "kubernetes"; Hosts the engines (or the kube context).
	Target string
	Hosts  []string
	// By is who deployed: the hub account, or the local user without a hub.
	By       string
	Started  time.Time
	Finished time.Time // zero while running
	Outcome  Outcome
	Error    string
	// RollbackOf is the Number of the deploy a rollback re-deployed; 0 otherwise.
	RollbackOf int
}

// LockHolder says who holds a service's deploy lock, for the error that refuses a
// second deploy and for `hubctl deploy lock break`.
type LockHolder struct {
	By       string
	Host     string // the machine hubctl deploy runs on
	PID      int
	Number   int // the deploy holding it
	Acquired time.Time
	Expires  time.Time
}

// Lock timing: a holder renews every LockRenew; a lock not renewed for LockTTL is
// stale and the next deploy takes it over (a killed `hubctl deploy` leaves one).
const (
	LockTTL   = 60 * time.Second
	LockRenew = 10 * time.Second
)

// LockedError refuses a deploy while another holds the service's lock.
type LockedError struct {
	Service string
	Holder  LockHolder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("deploy of %s is locked by %s on %s (pid %d, deploy %d) since %s: wait for it, or run 'hubctl deploy lock break' if it is dead",
		e.Service, e.Holder.By, e.Holder.Host, e.Holder.PID, e.Holder.Number, e.Holder.Acquired.UTC().Format(time.RFC3339))
}

// ErrNoRecord is answered for a deploy number a service's history does not hold.
var ErrNoRecord = errors.New("no such deploy")

// History keeps a service's deploy records and its lock. Two implement it: the
// hub's store through its API (history survives any laptop), and a local state
// file with a lock on the host when no hub is used.
type History interface {
	// Begin takes the service's lock and records rec as running, answering it with
	// its Number set. A lock held and not stale answers *LockedError.
	Begin(ctx context.Context, rec Record, holder LockHolder) (Record, error)
	// Renew extends the lock Begin took; the deployer calls it every LockRenew.
	Renew(ctx context.Context, service string, number int) error
	// Finish records the outcome of deploy number and releases the lock.
	Finish(ctx context.Context, service string, number int, outcome Outcome, errMsg string) error
	// List answers the service's records, newest first.
	List(ctx context.Context, service string) ([]Record, error)
	// Get answers one record; ErrNoRecord when there is none.
	Get(ctx context.Context, service string, number int) (Record, error)
	// BreakLock removes the service's lock whoever holds it (audited by the hub).
	BreakLock(ctx context.Context, service string) error
}

// Release is a Kubernetes target: helm does its own rollout, so the deployer hands
// it the whole release (internal/deploy/kube implements it with the helm v4 SDK).
type Release interface {
	// Upgrade installs or upgrades the release with image (pinned by digest) written
	// under the spec's image path, waits for it to be ready within the spec's
	// timeout, and rolls back to the previous revision when it is not.
	Upgrade(ctx context.Context, spec *Spec, image string) (ReleaseRevision, error)
	// Plan renders the manifests the upgrade would apply and answers a unified
	// diff against the deployed release's (--dry-run); nothing is changed.
	Plan(ctx context.Context, spec *Spec, image string) (string, error)
	// History answers the release's revisions, newest first.
	History(ctx context.Context, spec *Spec) ([]ReleaseRevision, error)
	// Rollback returns the release to revision (0: the previous one).
	Rollback(ctx context.Context, spec *Spec, revision int) (ReleaseRevision, error)
	// Uninstall removes the release.
	Uninstall(ctx context.Context, spec *Spec) error
}

// ReleaseRevision is one helm revision of a release.
type ReleaseRevision struct {
	Revision    int
	Status      string // helm's: deployed, failed, superseded, …
	Chart       string
	AppVersion  string
	Updated     time.Time
	Description string
}
