package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// Workflow artifacts and caches (migration 0028): rows naming blobs of the blob
// store. A blob is pinned (PinBlob) before its bytes are stored, and the row is
// written with commitWorkflowBlob, which records the blob's size the way a push's
// commit does, so GC's pin / mark / sweep protocol covers these blobs too; gcUnlinked
// counts a row of either table as a reference.

var _ wfengine.ArtifactStore = (*Store)(nil)

// commitWorkflowBlob records the size of blob d, pinned at pinnedAt and now stored at
// its own key, unless GC marked or swept it since (metadata.ErrBlobReclaimed). The
// UPDATE locks the row, so a sweep cannot delete it before the naming row commits.
func commitWorkflowBlob(ctx context.Context, q querier, d digest.Digest, size int64, pinnedAt time.Time) error {
	n, err := q.Exec(ctx, `UPDATE blobs SET size = CASE WHEN size < 0 THEN $1 ELSE size END,
			location = CASE WHEN size < 0 THEN '' ELSE location END
		WHERE digest = $2 AND created_at <= $3 AND deleting_at IS NULL`,
		size, d.String(), pinnedAt.UTC().UnixNano())
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("blob %s: %w", d, metadata.ErrBlobReclaimed)
	}
	return nil
}

// AddWorkflowArtifact records an artifact of owner's running job run; see
// wfengine.ArtifactStore.
func (s *Store) AddWorkflowArtifact(ctx context.Context, a wfengine.Artifact, owner string, pinnedAt time.Time, maxRun int64) error {
	err := s.write(ctx, func(q querier) error {
		// The run's row first, as FinishWorkflowJob takes it: two jobs of one run
		// adding artifacts at once check the run's total one after the other.
		var id int64
		if err := q.QueryRow(ctx, "SELECT id FROM workflow_runs WHERE id = $1"+s.d.forNoKeyUpdate, a.RunID).Scan(&id); err != nil {
			return notFoundAs(err, wfengine.ErrNotFound)
		}
		var total int64
		if err := q.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0) FROM workflow_artifacts
			WHERE run_id = $1 AND NOT (job_id = $2 AND name = $3)`, a.RunID, a.JobID, a.Name).Scan(&total); err != nil {
			return err
		}
		if total+a.Size > maxRun {
			return wfengine.ErrTooLarge
		}
		if err := commitWorkflowBlob(ctx, q, a.Digest, a.Size, pinnedAt); err != nil {
			return err
		}
		n, err := q.Exec(ctx, `INSERT INTO workflow_artifacts (run_id, job_id, name, path, digest, size, created_at)
			SELECT run_id, id, $3, $4, $5, $6, $7 FROM workflow_jobs
			WHERE id = $2 AND run_id = $1 AND owner = $8 AND state = 'running'
			ON CONFLICT (job_id, name) DO UPDATE SET path = excluded.path, digest = excluded.digest,
				size = excluded.size, created_at = excluded.created_at`,
			a.RunID, a.JobID, a.Name, a.Path, a.Digest.String(), a.Size, nanos(time.Time{}), owner)
		if err != nil {
			return err
		}
		if n == 0 {
			return wfengine.ErrLost
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add artifact %s of job run %d: %w", a.Name, a.JobID, err)
	}
	return nil
}

// ListWorkflowArtifacts lists a run's artifacts by job run and name.
func (s *Store) ListWorkflowArtifacts(ctx context.Context, runID int64) ([]wfengine.Artifact, error) {
	var out []wfengine.Artifact
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanArtifact)(q.Query(ctx, `SELECT a.id, a.run_id, a.job_id, j.display, a.name, a.path, a.digest,
				a.size, b.location, a.created_at
			FROM workflow_artifacts a JOIN workflow_jobs j ON j.id = a.job_id JOIN blobs b ON b.digest = a.digest
			WHERE a.run_id = $1 ORDER BY a.job_id, a.name`, runID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list artifacts of run %d: %w", runID, err)
	}
	return out, nil
}

func scanArtifact(r row) (wfengine.Artifact, error) {
	var (
		a       wfengine.Artifact
		dg      string
		created int64
	)
	if err := r.Scan(&a.ID, &a.RunID, &a.JobID, &a.Job, &a.Name, &a.Path, &dg, &a.Size, &a.Location, &created); err != nil {
		return a, err
	}
	a.Digest = digest.Digest(dg)
	a.CreatedAt = fromNanos(created)
	return a, nil
}

const cacheColumns = "c.workflow_id, c.key, c.digest, c.size, b.location, c.created_at, c.last_used"

func scanCache(r row) (wfengine.Cache, error) {
	var (
		c             wfengine.Cache
		dg            string
		created, used int64
	)
	if err := r.Scan(&c.WorkflowID, &c.Key, &dg, &c.Size, &c.Location, &created, &used); err != nil {
		return c, err
	}
	c.Digest = digest.Digest(dg)
	c.CreatedAt, c.LastUsed = fromNanos(created), fromNanos(used)
	return c, nil
}

// UseWorkflowCache returns the cache of a workflow under key and marks it used now,
// or wfengine.ErrNotFound.
func (s *Store) UseWorkflowCache(ctx context.Context, workflowID int64, key string) (wfengine.Cache, error) {
	var c wfengine.Cache
	err := s.write(ctx, func(q querier) error {
		n, err := q.Exec(ctx, "UPDATE workflow_caches SET last_used = $3 WHERE workflow_id = $1 AND key = $2",
			workflowID, key, nanos(time.Time{}))
		if err != nil {
			return err
		}
		if n == 0 {
			return wfengine.ErrNotFound
		}
		c, err = scanCache(q.QueryRow(ctx, "SELECT "+cacheColumns+` FROM workflow_caches c JOIN blobs b ON b.digest = c.digest
			WHERE c.workflow_id = $1 AND c.key = $2`, workflowID, key))
		return err
	})
	if err != nil {
		return wfengine.Cache{}, fmt.Errorf("workflow %d cache %q: %w", workflowID, key, err)
	}
	return c, nil
}

// ListWorkflowCaches lists a workflow's caches, most recently used first.
func (s *Store) ListWorkflowCaches(ctx context.Context, workflowID int64) ([]wfengine.Cache, error) {
	var out []wfengine.Cache
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanCache)(q.Query(ctx, "SELECT "+cacheColumns+` FROM workflow_caches c JOIN blobs b ON b.digest = c.digest
			WHERE c.workflow_id = $1 ORDER BY c.last_used DESC, c.id DESC`, workflowID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list caches of workflow %d: %w", workflowID, err)
	}
	return out, nil
}

// AddWorkflowCache records cache c unless its key has one (false), then evicts the
// workflow's least recently used caches beyond maxTotal bytes; see
// wfengine.ArtifactStore.
func (s *Store) AddWorkflowCache(ctx context.Context, c wfengine.Cache, pinnedAt time.Time, maxTotal int64) (bool, error) {
	added := false
	err := s.write(ctx, func(q querier) error {
		added = false
		// The workflow's row orders two saves of one workflow's caches, so eviction
		// sees every cache committed before it.
		var id int64
		if err := q.QueryRow(ctx, "SELECT id FROM workflows WHERE id = $1"+s.d.forNoKeyUpdate, c.WorkflowID).Scan(&id); err != nil {
			return notFoundAs(err, wfengine.ErrNotFound)
		}
		if err := commitWorkflowBlob(ctx, q, c.Digest, c.Size, pinnedAt); err != nil {
			return err
		}
		now := nanos(time.Time{})
		n, err := q.Exec(ctx, `INSERT INTO workflow_caches (workflow_id, key, digest, size, created_at, last_used)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (workflow_id, key) DO NOTHING`,
			c.WorkflowID, c.Key, c.Digest.String(), c.Size, now)
		if err != nil {
			return err
		}
		added = n == 1
		type entry struct{ id, size int64 }
		all, err := collect(func(r row) (entry, error) {
			var e entry
			return e, r.Scan(&e.id, &e.size)
		})(q.Query(ctx, "SELECT id, size FROM workflow_caches WHERE workflow_id = $1 ORDER BY last_used DESC, id DESC", c.WorkflowID))
		if err != nil {
			return err
		}
		var kept int64
		var evict []int64
		for _, e := range all {
			if kept+e.size > maxTotal {
				evict = append(evict, e.id)
				continue
			}
			kept += e.size
		}
		if len(evict) > 0 {
			if _, err := q.Exec(ctx, "DELETE FROM workflow_caches WHERE id IN (SELECT value FROM "+s.d.list("$1", "bigint")+")",
				s.d.listArg(evict)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("add workflow %d cache %q: %w", c.WorkflowID, c.Key, err)
	}
	return added, nil
}
