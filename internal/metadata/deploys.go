package metadata

import "errors"

// Errors of the deploy history and locks (sqlstore's deploys.go); a missing deploy
// is deploy.ErrNoRecord and a held lock *deploy.LockedError.
var (
	// ErrDeployLockLost answers a renewal by a deploy that no longer holds its
	// service's lock: it finished, was broken, or went stale and was taken over.
	ErrDeployLockLost = errors.New("the deploy no longer holds its service's lock")
	// ErrDeployFinished answers a second outcome for a deploy: it finished already
	// (or was marked failed when its lock was broken or taken over).
	ErrDeployFinished = errors.New("the deploy has finished already")
	// ErrNoDeployLock answers breaking the lock of a service that no deploy holds.
	ErrNoDeployLock = errors.New("no deploy holds the service's lock")
	// ErrDeployNotRunning answers a pull token asked for a deploy that is not running.
	ErrDeployNotRunning = errors.New("the deploy is not running")
)
