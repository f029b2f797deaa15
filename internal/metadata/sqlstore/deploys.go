package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// This file holds the deploy history and the deploy locks (migration 0030,
// docs/design/deploy.md "State, history and locks"). Every time is the database's
// clock (dialect.now), read once per transaction, so hubs whose clocks disagree
// still agree on when a lock went stale. A service's lock is its one row of
// deploy_locks: taken by an insert, or by the upsert's update of a row whose expiry
// has passed; the upsert's WHERE is judged on the newest version of the row, so of
// two Begins racing for one service exactly one takes it (on PostgreSQL the second
// waits for the first's insert, then finds it held).

// BeginDeploy takes rec's service lock for holder (its Host and PID; the rest is
// set here) for ttl, and records rec as running with the next number of its service,
// deployed by account byID (rec.By names it); Number, Started, Finished and Outcome
// are set here. A lock held and not expired answers *deploy.LockedError;
// a stale one is taken over and the deploy that held it, if still running, is marked
// failed (abandoned). It writes the audit entry ctx carries in its transaction.
func (s *Store) BeginDeploy(ctx context.Context, rec deploy.Record, byID int64, holder deploy.LockHolder, ttl time.Duration) (deploy.Record, error) {
	digests, err := json.Marshal(nonNilMap(rec.Digests))
	if err != nil {
		return deploy.Record{}, err
	}
	hosts, err := json.Marshal(nonNilSlice(rec.Hosts))
	if err != nil {
		return deploy.Record{}, err
	}
	var out deploy.Record
	err = s.write(ctx, func(q querier) error {
		now, err := s.dbNow(ctx, q)
		if err != nil {
			return err
		}
		prev, held, err := s.deployLock(ctx, q, rec.Namespace, rec.Service, s.d.forUpdate)
		if err != nil {
			return err
		}
		var acquired, expires int64
		err = q.QueryRow(ctx, `INSERT INTO deploy_locks AS l (namespace, service, number, by_id, by_name, host, pid, acquired, expires)
			VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (namespace, service) DO UPDATE SET number = excluded.number, by_id = excluded.by_id,
				by_name = excluded.by_name, host = excluded.host, pid = excluded.pid,
				acquired = excluded.acquired, expires = excluded.expires
			WHERE l.expires <= excluded.acquired
			RETURNING acquired, expires`,
			rec.Namespace, rec.Service, byID, rec.By, holder.Host, holder.PID, now, now+ttl.Nanoseconds()).Scan(&acquired, &expires)
		if isNoRows(err) {
			// Held: a new statement, so at READ COMMITTED it sees the holder whose
			// insert or renewal the upsert waited for.
			h, ok, err := s.deployLock(ctx, q, rec.Namespace, rec.Service, "")
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("deploy %s/%s: the lock was released while taking it, try again", rec.Namespace, rec.Service)
			}
			return &deploy.LockedError{Service: rec.Namespace + "/" + rec.Service, Holder: h}
		}
		if err != nil {
			return err
		}
		if held && prev.Number > 0 {
			if _, err := q.Exec(ctx, `UPDATE deploys SET outcome = 'failed', error = $4, finished = $5
				WHERE namespace = $1 AND service = $2 AND number = $3 AND outcome = 'running'`,
				rec.Namespace, rec.Service, prev.Number,
				fmt.Sprintf("abandoned: its lock (held by %s on %s, pid %d) went stale and was taken over", prev.By, prev.Host, prev.PID), now); err != nil {
				return err
			}
		}
		var number int
		if err := q.QueryRow(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM deploys WHERE namespace = $1 AND service = $2`,
			rec.Namespace, rec.Service).Scan(&number); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `INSERT INTO deploys (namespace, service, number, spec, digests, target, hosts, by_id, by_name,
				started, outcome, rollback_of)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', $11)`,
			rec.Namespace, rec.Service, number, rec.SpecYAML, string(digests), rec.Target, string(hosts), byID, rec.By,
			now, rec.RollbackOf); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE deploy_locks SET number = $3 WHERE namespace = $1 AND service = $2`,
			rec.Namespace, rec.Service, number); err != nil {
			return err
		}
		out = rec
		out.Number, out.Started, out.Finished, out.Outcome, out.Error = number, fromNanos(now), time.Time{}, deploy.OutcomeRunning, ""
		return s.recordChange(ctx, q, events.Event{})
	})
	if err != nil {
		return deploy.Record{}, err
	}
	return out, nil
}

// RenewDeployLock extends the lock deploy number of namespace/service holds by ttl
// from now; metadata.ErrDeployLockLost when it holds it no more. A lock that expired
// but was not taken over is still its holder's.
func (s *Store) RenewDeployLock(ctx context.Context, namespace, service string, number int, ttl time.Duration) (deploy.LockHolder, error) {
	var h deploy.LockHolder
	err := s.write(ctx, func(q querier) error {
		now, err := s.dbNow(ctx, q)
		if err != nil {
			return err
		}
		n, err := q.Exec(ctx, `UPDATE deploy_locks SET expires = $4 WHERE namespace = $1 AND service = $2 AND number = $3`,
			namespace, service, number, now+ttl.Nanoseconds())
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("renew the lock of deploy %d of %s/%s: %w", number, namespace, service, metadata.ErrDeployLockLost)
		}
		h, _, err = s.deployLock(ctx, q, namespace, service, "")
		return err
	})
	return h, err
}

// FinishDeploy records the outcome of deploy number of namespace/service (not
// running) and releases its lock, answering the finished record. A deploy not
// running answers metadata.ErrDeployFinished, one that does not exist
// deploy.ErrNoRecord. It writes the audit entry ctx carries in its transaction.
func (s *Store) FinishDeploy(ctx context.Context, namespace, service string, number int, outcome deploy.Outcome, errMsg string) (deploy.Record, error) {
	if outcome == deploy.OutcomeRunning || !validOutcome(outcome) {
		return deploy.Record{}, fmt.Errorf("finish deploy %d of %s/%s: outcome %q is not succeeded, failed or rolled_back", number, namespace, service, outcome)
	}
	var out deploy.Record
	err := s.write(ctx, func(q querier) error {
		now, err := s.dbNow(ctx, q)
		if err != nil {
			return err
		}
		n, err := q.Exec(ctx, `UPDATE deploys SET outcome = $4, error = $5, finished = $6
			WHERE namespace = $1 AND service = $2 AND number = $3 AND outcome = 'running'`,
			namespace, service, number, string(outcome), errMsg, now)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := s.getDeploy(ctx, q, namespace, service, number); err != nil {
				return err
			}
			return fmt.Errorf("deploy %d of %s/%s: %w", number, namespace, service, metadata.ErrDeployFinished)
		}
		if _, err := q.Exec(ctx, `DELETE FROM deploy_locks WHERE namespace = $1 AND service = $2 AND number = $3`,
			namespace, service, number); err != nil {
			return err
		}
		if out, err = s.getDeploy(ctx, q, namespace, service, number); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{})
	})
	return out, err
}

// BreakDeployLock removes namespace/service's lock whoever holds it, marks the deploy
// holding it failed (when still running) with a note naming by, and answers who held
// it; metadata.ErrNoDeployLock when none does. It writes the audit entry ctx carries
// in its transaction.
func (s *Store) BreakDeployLock(ctx context.Context, namespace, service, by string) (deploy.LockHolder, error) {
	var h deploy.LockHolder
	err := s.write(ctx, func(q querier) error {
		now, err := s.dbNow(ctx, q)
		if err != nil {
			return err
		}
		var ok bool
		if h, ok, err = s.deployLock(ctx, q, namespace, service, s.d.forUpdate); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("deploy lock of %s/%s: %w", namespace, service, metadata.ErrNoDeployLock)
		}
		if _, err := q.Exec(ctx, `DELETE FROM deploy_locks WHERE namespace = $1 AND service = $2`, namespace, service); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `UPDATE deploys SET outcome = 'failed', error = $4, finished = $5
			WHERE namespace = $1 AND service = $2 AND number = $3 AND outcome = 'running'`,
			namespace, service, h.Number, "abandoned: its lock was broken by "+by, now); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{})
	})
	return h, err
}

// TakeDeployLock takes namespace/service's lock for ttl for work that is not a
// deploy (`hubctl deploy down`): held by no deploy (Number 0) for account byID
// (named by) from holder's Host and PID. The same holder taking it again renews it.
// A lock held by another and not expired answers *deploy.LockedError; a stale one
// is taken over, and the deploy that held it, if still running, is marked failed
// (abandoned). It writes the audit entry ctx carries in its transaction.
func (s *Store) TakeDeployLock(ctx context.Context, namespace, service string, byID int64, by string, holder deploy.LockHolder, ttl time.Duration) (deploy.LockHolder, error) {
	var out deploy.LockHolder
	err := s.write(ctx, func(q querier) error {
		now, err := s.dbNow(ctx, q)
		if err != nil {
			return err
		}
		prev, held, err := s.deployLock(ctx, q, namespace, service, s.d.forUpdate)
		if err != nil {
			return err
		}
		var acquired, expires int64
		err = q.QueryRow(ctx, `INSERT INTO deploy_locks AS l (namespace, service, number, by_id, by_name, host, pid, acquired, expires)
			VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (namespace, service) DO UPDATE SET number = 0, by_id = excluded.by_id,
				by_name = excluded.by_name, host = excluded.host, pid = excluded.pid,
				acquired = CASE WHEN l.expires <= excluded.acquired THEN excluded.acquired ELSE l.acquired END,
				expires = excluded.expires
			WHERE l.expires <= excluded.acquired
				OR (l.number = 0 AND l.by_id = excluded.by_id AND l.host = excluded.host AND l.pid = excluded.pid)
			RETURNING acquired, expires`,
			namespace, service, byID, by, holder.Host, holder.PID, now, now+ttl.Nanoseconds()).Scan(&acquired, &expires)
		if isNoRows(err) {
			h, ok, err := s.deployLock(ctx, q, namespace, service, "")
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("deploy lock of %s/%s: released while taking it, try again", namespace, service)
			}
			return &deploy.LockedError{Service: namespace + "/" + service, Holder: h}
		}
		if err != nil {
			return err
		}
		if held && prev.Number > 0 {
			if _, err := q.Exec(ctx, `UPDATE deploys SET outcome = 'failed', error = $4, finished = $5
				WHERE namespace = $1 AND service = $2 AND number = $3 AND outcome = 'running'`,
				namespace, service, prev.Number,
				fmt.Sprintf("abandoned: its lock (held by %s on %s, pid %d) went stale and was taken over", prev.By, prev.Host, prev.PID), now); err != nil {
				return err
			}
		}
		out = deploy.LockHolder{By: by, Host: holder.Host, PID: holder.PID, Acquired: fromNanos(acquired), Expires: fromNanos(expires)}
		return s.recordChange(ctx, q, events.Event{})
	})
	return out, err
}

// ReleaseDeployLock releases the lock TakeDeployLock took for account byID from
// holder's Host and PID; a lock another holds now (a deploy, or another down) is
// left alone, and no lock is no error.
func (s *Store) ReleaseDeployLock(ctx context.Context, namespace, service string, byID int64, holder deploy.LockHolder) error {
	return s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM deploy_locks WHERE namespace = $1 AND service = $2 AND number = 0
			AND by_id = $3 AND host = $4 AND pid = $5`, namespace, service, byID, holder.Host, holder.PID)
		return err
	})
}

// DeployLock answers who holds namespace/service's lock, and false when nobody does.
// A stale lock is still answered (its Expires is in the past).
func (s *Store) DeployLock(ctx context.Context, namespace, service string) (deploy.LockHolder, bool, error) {
	var (
		h  deploy.LockHolder
		ok bool
	)
	err := s.read(ctx, func(q querier) error {
		var err error
		h, ok, err = s.deployLock(ctx, q, namespace, service, "")
		return err
	})
	return h, ok, err
}

// GetDeploy answers deploy number of namespace/service, spec included;
// deploy.ErrNoRecord when there is none.
func (s *Store) GetDeploy(ctx context.Context, namespace, service string, number int) (deploy.Record, error) {
	var out deploy.Record
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = s.getDeploy(ctx, q, namespace, service, number)
		return err
	})
	return out, err
}

// RunningDeployID answers the row id of deploy number of namespace/service, which
// must be running (metadata.ErrDeployNotRunning otherwise; deploy.ErrNoRecord when
// there is none): a pull token's subject names it.
func (s *Store) RunningDeployID(ctx context.Context, namespace, service string, number int) (int64, error) {
	var (
		id      int64
		outcome string
	)
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT id, outcome FROM deploys WHERE namespace = $1 AND service = $2 AND number = $3`,
			namespace, service, number).Scan(&id, &outcome)
	})
	if isNoRows(err) {
		return 0, fmt.Errorf("deploy %d of %s/%s: %w", number, namespace, service, deploy.ErrNoRecord)
	}
	if err != nil {
		return 0, err
	}
	if outcome != string(deploy.OutcomeRunning) {
		return 0, fmt.Errorf("deploy %d of %s/%s (%s): %w", number, namespace, service, outcome, metadata.ErrDeployNotRunning)
	}
	return id, nil
}

// ListDeploys answers namespace/service's deploys newest first, at most limit of
// them, numbered below before when before > 0. The records carry no SpecYAML (it may
// be large; GetDeploy has it).
func (s *Store) ListDeploys(ctx context.Context, namespace, service string, before, limit int) ([]deploy.Record, error) {
	var out []deploy.Record
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (deploy.Record, error) {
			return scanDeploy(r)
		})(q.Query(ctx, `SELECT namespace, service, number, '', digests, target, hosts, by_name, started, finished, outcome, error, rollback_of
			FROM deploys WHERE namespace = $1 AND service = $2 AND (number < $3 OR $3 <= 0)
			ORDER BY number DESC LIMIT $4`, namespace, service, before, s.d.limit(limit)))
		return err
	})
	return out, err
}

// ListDeployServices returns the newest deploy of each service of namespace that has
// any, by service name (without specs), at most limit services after the service
// named after (paging; "" from the start). The deploy history pages list a
// namespace's services with it.
func (s *Store) ListDeployServices(ctx context.Context, namespace, after string, limit int) ([]deploy.Record, error) {
	var out []deploy.Record
	err := s.read(ctx, func(q querier) error {
		var err error
		// The correlated MAX walks the (namespace, service, number) unique index.
		out, err = collect(func(r row) (deploy.Record, error) {
			return scanDeploy(r)
		})(q.Query(ctx, `SELECT namespace, service, number, '', digests, target, hosts, by_name, started, finished, outcome, error, rollback_of
			FROM deploys d WHERE namespace = $1 AND service > $2
				AND number = (SELECT MAX(number) FROM deploys m WHERE m.namespace = d.namespace AND m.service = d.service)
			ORDER BY service LIMIT $3`, namespace, after, s.d.limit(limit)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list deploy services of %s: %w", namespace, err)
	}
	return out, nil
}

// forgetDeploys deletes namespace's deploy history and locks, in the transaction
// deleting the namespace: a namespace made again under its name starts afresh.
func forgetDeploys(ctx context.Context, q querier, namespace string) error {
	if _, err := q.Exec(ctx, `DELETE FROM deploy_locks WHERE namespace = $1`, namespace); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `DELETE FROM deploys WHERE namespace = $1`, namespace)
	return err
}

func (s *Store) getDeploy(ctx context.Context, q querier, namespace, service string, number int) (deploy.Record, error) {
	rec, err := scanDeploy(q.QueryRow(ctx, `SELECT namespace, service, number, spec, digests, target, hosts, by_name, started, finished,
			outcome, error, rollback_of
		FROM deploys WHERE namespace = $1 AND service = $2 AND number = $3`, namespace, service, number))
	if isNoRows(err) {
		return deploy.Record{}, fmt.Errorf("deploy %d of %s/%s: %w", number, namespace, service, deploy.ErrNoRecord)
	}
	return rec, err
}

func scanDeploy(r row) (deploy.Record, error) {
	var (
		rec                           deploy.Record
		digests, hosts, outcome       string
		started, finished, rollbackOf int64
	)
	if err := r.Scan(&rec.Namespace, &rec.Service, &rec.Number, &rec.SpecYAML, &digests, &rec.Target, &hosts, &rec.By,
		&started, &finished, &outcome, &rec.Error, &rollbackOf); err != nil {
		return deploy.Record{}, err
	}
	if err := json.Unmarshal([]byte(digests), &rec.Digests); err != nil {
		return deploy.Record{}, fmt.Errorf("deploy %d of %s/%s: digests: %w", rec.Number, rec.Namespace, rec.Service, err)
	}
	if err := json.Unmarshal([]byte(hosts), &rec.Hosts); err != nil {
		return deploy.Record{}, fmt.Errorf("deploy %d of %s/%s: hosts: %w", rec.Number, rec.Namespace, rec.Service, err)
	}
	rec.Started, rec.Outcome, rec.RollbackOf = fromNanos(started), deploy.Outcome(outcome), int(rollbackOf)
	if finished != 0 {
		rec.Finished = fromNanos(finished)
	}
	return rec, nil
}

// deployLock reads namespace/service's lock row, with lock (a dialect clause, or "")
// appended to the SELECT.
func (s *Store) deployLock(ctx context.Context, q querier, namespace, service, lock string) (deploy.LockHolder, bool, error) {
	var (
		h                 deploy.LockHolder
		acquired, expires int64
	)
	err := q.QueryRow(ctx, `SELECT number, by_name, host, pid, acquired, expires FROM deploy_locks
		WHERE namespace = $1 AND service = $2`+lock, namespace, service).Scan(&h.Number, &h.By, &h.Host, &h.PID, &acquired, &expires)
	if isNoRows(err) {
		return deploy.LockHolder{}, false, nil
	}
	if err != nil {
		return deploy.LockHolder{}, false, err
	}
	h.Acquired, h.Expires = fromNanos(acquired), fromNanos(expires)
	return h, true, nil
}

// dbNow reads the database's clock (unix nanoseconds).
func (s *Store) dbNow(ctx context.Context, q querier) (int64, error) {
	var now int64
	err := q.QueryRow(ctx, "SELECT "+s.d.now).Scan(&now)
	return now, err
}

func validOutcome(o deploy.Outcome) bool {
	switch o {
	case deploy.OutcomeRunning, deploy.OutcomeSucceeded, deploy.OutcomeFailed, deploy.OutcomeRolledBack:
		return true
	}
	return false
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
