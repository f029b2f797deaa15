package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/proxy"
)

// HostLock is a service's deploy lock on one host (dockerhost implements it with a
// labelled, never-started container). A lock whose holder has not renewed it for
// LockTTL, or whose holder was a process on this machine that no longer runs, is
// stale and taken over.
type HostLock interface {
	// Lock takes the lock for holder; held by another and not stale: *LockedError.
	// Taking a lock holder already holds succeeds (two host entries may reach one
	// engine).
	Lock(ctx context.Context, service string, holder LockHolder) error
	// Renew extends holder's lock to now + LockTTL.
	Renew(ctx context.Context, service string, holder LockHolder) error
	// Unlock releases holder's lock; a lock someone else took over is left alone.
	Unlock(ctx context.Context, service string, holder LockHolder) error
	// Break removes the lock whoever holds it.
	Break(ctx context.Context, service string) error
}

// FileHistory is the History without a hub: the records in a state file
// (DIR/SERVICE.json, written atomically, mode 0600) on the machine that deploys, and
// the lock on every host of the deploy.
type FileHistory struct {
	dir   string
	locks []HostLock
	now   func() time.Time

	mu      sync.Mutex
	holders map[string]LockHolder // by service, the locks this value took
}

// NewFileHistory returns the history kept in dir (made on the first write) with
// the hosts' locks.
func NewFileHistory(dir string, locks []HostLock) *FileHistory {
	return &FileHistory{dir: dir, locks: locks, now: time.Now, holders: map[string]LockHolder{}}
}

type historyFile struct {
	Service string   `json:"service"`
	Records []Record `json:"records"` // oldest first
}

func (h *FileHistory) path(service string) (string, error) {
	if err := proxy.CheckServiceName(service); err != nil {
		return "", err
	}
	return filepath.Join(h.dir, service+".json"), nil
}

func (h *FileHistory) read(service string) (historyFile, error) {
	f := historyFile{Service: service}
	p, err := h.path(service)
	if err != nil {
		return f, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("deploy history: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("deploy history %s: %w", p, err)
	}
	return f, nil
}

// write replaces the file atomically: a temp file in the same directory, synced,
// renamed over the old one.
func (h *FileHistory) write(f historyFile) error {
	p, err := h.path(f.Service)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return fmt.Errorf("deploy history: %w", err)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(h.dir, "."+f.Service+".*.tmp")
	if err != nil {
		return fmt.Errorf("deploy history: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("deploy history: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("deploy history: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("deploy history: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("deploy history: %w", err)
	}
	return nil
}

// Begin takes the lock on every host (releasing those taken when one is refused),
// marks records a killed deploy left running as failed, and records rec.
func (h *FileHistory) Begin(ctx context.Context, rec Record, holder LockHolder) (Record, error) {
	if _, err := h.path(rec.Service); err != nil {
		return rec, err
	}
	f, err := h.read(rec.Service)
	if err != nil {
		return rec, err
	}
	rec.Number = 1
	for _, r := range f.Records {
		rec.Number = max(rec.Number, r.Number+1)
	}
	holder.Number = rec.Number
	holder.Acquired = h.now()
	holder.Expires = holder.Acquired.Add(LockTTL)
	var taken []HostLock
	for _, l := range h.locks {
		if err := l.Lock(ctx, rec.Service, holder); err != nil {
			for _, t := range taken {
				_ = t.Unlock(context.WithoutCancel(ctx), rec.Service, holder)
			}
			return rec, err
		}
		taken = append(taken, l)
	}
	h.mu.Lock()
	h.holders[rec.Service] = holder
	h.mu.Unlock()
	// Read again under the lock: another deploy may have finished meanwhile.
	if f, err = h.read(rec.Service); err != nil {
		h.release(ctx, rec.Service)
		return rec, err
	}
	for i, r := range f.Records {
		rec.Number = max(rec.Number, r.Number+1)
		if r.Outcome == OutcomeRunning {
			f.Records[i].Outcome = OutcomeFailed
			f.Records[i].Error = "interrupted: its hubctl ended before the deploy did"
			f.Records[i].Finished = h.now()
		}
	}
	holder.Number = rec.Number
	h.mu.Lock()
	h.holders[rec.Service] = holder
	h.mu.Unlock()
	rec.Outcome = OutcomeRunning
	f.Records = append(f.Records, rec)
	if err := h.write(f); err != nil {
		h.release(ctx, rec.Service)
		return rec, err
	}
	return rec, nil
}

func (h *FileHistory) release(ctx context.Context, service string) error {
	h.mu.Lock()
	holder, ok := h.holders[service]
	delete(h.holders, service)
	h.mu.Unlock()
	if !ok {
		return nil
	}
	var errs []error
	for _, l := range h.locks {
		if err := l.Unlock(context.WithoutCancel(ctx), service, holder); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Renew extends the lock on every host.
func (h *FileHistory) Renew(ctx context.Context, service string, number int) error {
	h.mu.Lock()
	holder, ok := h.holders[service]
	h.mu.Unlock()
	if !ok || holder.Number != number {
		return fmt.Errorf("deploy %d of %s holds no lock here", number, service)
	}
	holder.Expires = h.now().Add(LockTTL)
	var errs []error
	for _, l := range h.locks {
		if err := l.Renew(ctx, service, holder); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Finish records the outcome and releases the lock.
func (h *FileHistory) Finish(ctx context.Context, service string, number int, outcome Outcome, errMsg string) error {
	f, err := h.read(service)
	if err == nil {
		i := slices.IndexFunc(f.Records, func(r Record) bool { return r.Number == number })
		if i < 0 {
			err = fmt.Errorf("deploy %d of %s: %w", number, service, ErrNoRecord)
		} else {
			f.Records[i].Outcome, f.Records[i].Error, f.Records[i].Finished = outcome, errMsg, h.now()
			err = h.write(f)
		}
	}
	return errors.Join(err, h.release(ctx, service))
}

// List answers the records, newest first.
func (h *FileHistory) List(_ context.Context, service string) ([]Record, error) {
	f, err := h.read(service)
	if err != nil {
		return nil, err
	}
	slices.Reverse(f.Records)
	return f.Records, nil
}

// Get answers deploy number.
func (h *FileHistory) Get(_ context.Context, service string, number int) (Record, error) {
	f, err := h.read(service)
	if err != nil {
		return Record{}, err
	}
	for _, r := range f.Records {
		if r.Number == number {
			return r, nil
		}
	}
	return Record{}, fmt.Errorf("deploy %d of %s: %w", number, service, ErrNoRecord)
}

// BreakLock removes the lock on every host.
func (h *FileHistory) BreakLock(ctx context.Context, service string) error {
	var errs []error
	for _, l := range h.locks {
		if err := l.Break(ctx, service); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var _ History = (*FileHistory)(nil)
