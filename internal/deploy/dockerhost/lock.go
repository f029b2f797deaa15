package dockerhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
)

// Labels of the lock container: who holds it and until when.
const (
	labelLockBy       = "dev.hubctl.lock.by"
	labelLockHost     = "dev.hubctl.lock.host"
	labelLockPID      = "dev.hubctl.lock.pid"
	labelLockNumber   = "dev.hubctl.lock.number"
	labelLockAcquired = "dev.hubctl.lock.acquired"
	labelLockExpires  = "dev.hubctl.lock.expires"
)

// Lock creates the never-started container hubctl-lock-SERVICE: the engine refuses
// a second container of one name, so creating it is taking the lock. A lock whose
// expiry passed, or whose holder was a process of this machine that has ended, is
// removed and taken.
func (h *Host) Lock(ctx context.Context, service string, holder deploy.LockHolder) error {
	for try := 0; try < 3; try++ {
		err := h.createLock(ctx, service, holder)
		if err == nil || !cerrdefs.IsConflict(err) {
			return err
		}
		cur, id, err := h.lockHolder(ctx, service)
		if cerrdefs.IsNotFound(err) {
			continue // released meanwhile
		}
		if err != nil {
			return err
		}
		if sameHolder(cur, holder) {
			return nil
		}
		if !stale(cur, time.Now()) {
			return &deploy.LockedError{Service: service, Holder: cur}
		}
		if _, err := h.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove stale lock %s: %w", deploy.LockName(service), err)
		}
	}
	cur, _, err := h.lockHolder(ctx, service)
	if err != nil {
		return fmt.Errorf("lock %s: %w", deploy.LockName(service), err)
	}
	return &deploy.LockedError{Service: service, Holder: cur}
}

func sameHolder(a, b deploy.LockHolder) bool {
	return a.Host == b.Host && a.PID == b.PID && a.Acquired.Equal(b.Acquired)
}

// stale reports whether a lock may be taken over: its holder did not renew it in
// time, or it was a process of this machine that no longer runs.
func stale(l deploy.LockHolder, now time.Time) bool {
	if now.After(l.Expires) {
		return true
	}
	me, err := os.Hostname()
	if err != nil || l.Host != me || l.PID <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(l.PID, 0), syscall.ESRCH)
}

func (h *Host) createLock(ctx context.Context, service string, holder deploy.LockHolder) error {
	image, err := h.lockImage(ctx, service)
	if err != nil {
		return err
	}
	labels := map[string]string{
		deploy.LabelService: service,
		deploy.LabelRole:    deploy.RoleLock,
		labelLockBy:         holder.By,
		labelLockHost:       holder.Host,
		labelLockPID:        strconv.Itoa(holder.PID),
		labelLockNumber:     strconv.Itoa(holder.Number),
		labelLockAcquired:   holder.Acquired.UTC().Format(time.RFC3339Nano),
		labelLockExpires:    holder.Expires.UTC().Format(time.RFC3339Nano),
	}
	_, err = h.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   deploy.LockName(service),
		Config: &container.Config{Image: image, Labels: labels, Entrypoint: []string{"/nonexistent-never-started"}},
		HostConfig: &container.HostConfig{
			NetworkMode: "none",
		},
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("create lock %s: %w", deploy.LockName(service), err)
	}
	return err
}

// lockImage is an image the engine has, for the lock container (never started):
// the lock image of Options, the proxy's, or one a container of the service runs;
// the lock image is pulled when the engine has none.
func (h *Host) lockImage(ctx context.Context, service string) (string, error) {
	cands := []string{h.opts.LockImage, h.opts.ProxyImage}
	if res, err := h.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: h.filter(service)}); err == nil {
		for _, c := range res.Items {
			cands = append(cands, c.ImageID)
		}
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if _, err := h.api.ImageInspect(ctx, c); err == nil {
			return c, nil
		}
	}
	if h.opts.LockImage != "" {
		if err := h.Pull(ctx, h.opts.LockImage); err != nil {
			return "", err
		}
		return h.opts.LockImage, nil
	}
	return "", errors.New("no image on the engine to make the deploy lock from (give a lock image)")
}

// lockHolder reads the lock container's labels.
func (h *Host) lockHolder(ctx context.Context, service string) (deploy.LockHolder, string, error) {
	ins, err := h.api.ContainerInspect(ctx, deploy.LockName(service), client.ContainerInspectOptions{})
	if err != nil {
		return deploy.LockHolder{}, "", err
	}
	c := ins.Container
	if c.Config == nil || c.Config.Labels[deploy.LabelRole] != deploy.RoleLock || c.Config.Labels[deploy.LabelService] != service {
		return deploy.LockHolder{}, "", fmt.Errorf("container name %s is taken by a container that is not hubctl's lock", deploy.LockName(service))
	}
	l := c.Config.Labels
	var lh deploy.LockHolder
	lh.By, lh.Host = l[labelLockBy], l[labelLockHost]
	lh.PID, _ = strconv.Atoi(l[labelLockPID])
	lh.Number, _ = strconv.Atoi(l[labelLockNumber])
	lh.Acquired, _ = time.Parse(time.RFC3339Nano, l[labelLockAcquired])
	lh.Expires, _ = time.Parse(time.RFC3339Nano, l[labelLockExpires])
	return lh, c.ID, nil
}

// Renew makes the lock again with the new expiry (labels cannot change): if another
// took it in between, the lock is lost and Renew says so.
func (h *Host) Renew(ctx context.Context, service string, holder deploy.LockHolder) error {
	cur, id, err := h.lockHolder(ctx, service)
	if err != nil {
		return fmt.Errorf("renew lock: %w", err)
	}
	if !sameHolder(cur, holder) {
		return &deploy.LockedError{Service: service, Holder: cur}
	}
	// Remove and create are one step: a renewal cut between them (the deploy ending
	// meanwhile cancels ctx) would leave the engine still removing the lock while the
	// deployer's Unlock finds it ("removal already in progress").
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockOpTimeout)
	defer cancel()
	if _, err := h.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("renew lock: %w", err)
	}
	if err := h.createLock(ctx, service, holder); err != nil {
		if cerrdefs.IsConflict(err) {
			cur, _, _ := h.lockHolder(ctx, service)
			return &deploy.LockedError{Service: service, Holder: cur}
		}
		return fmt.Errorf("renew lock: %w", err)
	}
	return nil
}

// Unlock removes holder's lock; one another holds now is left alone.
func (h *Host) Unlock(ctx context.Context, service string, holder deploy.LockHolder) error {
	cur, id, err := h.lockHolder(ctx, service)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !sameHolder(cur, holder) {
		return nil
	}
	if err := h.removeLock(ctx, id); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

// lockOpTimeout bounds a lock operation that must not be cut halfway.
const lockOpTimeout = 30 * time.Second

// removeLock removes the lock container id; a removal the engine already has in
// progress (an earlier call whose client gave up) is waited for, not failed.
func (h *Host) removeLock(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, lockOpTimeout)
	defer cancel()
	for {
		_, err := h.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			return nil
		}
		if !cerrdefs.IsConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Break removes the lock whoever holds it.
func (h *Host) Break(ctx context.Context, service string) error {
	_, id, err := h.lockHolder(ctx, service)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.removeLock(ctx, id); err != nil {
		return fmt.Errorf("break lock: %w", err)
	}
	return nil
}
