package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// Tag history (migration 0032): every tag move PutManifest, DeleteTag and
// DeleteManifest make is recorded in their transaction, with the actor their events
// carry. A manifest a tag moved away from (not one whose tag was deleted: that was
// somebody's decision) is held from GC phase 1 and retention for the hold
// (SetTagHistoryHold), so the tag can be restored to it.

// recordTagMove writes one move of tag in repository repoID and drops the tag's moves
// beyond metadata.MaxTagHistory.
func (s *Store) recordTagMove(ctx context.Context, q querier, repoID int64, tag, old, new string) error {
	if _, err := q.Exec(ctx, `INSERT INTO tag_history (repo_id, tag, old_digest, new_digest, actor, moved_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, repoID, tag, old, new, events.ActorFrom(ctx).Name, nanos(time.Time{})); err != nil {
		return fmt.Errorf("record move of tag %s: %w", tag, err)
	}
	// The subquery is NULL while the tag has few moves: nothing is deleted then.
	if _, err := q.Exec(ctx, `DELETE FROM tag_history WHERE repo_id = $1 AND tag = $2 AND id <=
		(SELECT id FROM tag_history WHERE repo_id = $1 AND tag = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)`,
		repoID, tag, metadata.MaxTagHistory); err != nil {
		return fmt.Errorf("trim history of tag %s: %w", tag, err)
	}
	return nil
}

// SetTagHistoryHold sets how long a manifest a tag moved away from is kept from
// garbage collection and retention (metadata.DefaultTagHistoryHold until set; 0 or
// less: not at all).
func (s *Store) SetTagHistoryHold(d time.Duration) { s.hold.Store(int64(max(d, 0))) }

// holdCutoff is the time after which a move away from a manifest holds it, in unix
// nanoseconds; with no hold, a time no move is after.
func (s *Store) holdCutoff() int64 {
	h := time.Duration(s.hold.Load())
	if h <= 0 {
		return 1<<63 - 1
	}
	return time.Now().Add(-h).UTC().UnixNano()
}

// heldWhere is true for a manifest m a tag moved away from after the cutoff in
// parameter p.
func heldWhere(p string) string {
	return `EXISTS (SELECT 1 FROM tag_history h WHERE h.repo_id = m.repo_id AND h.old_digest = m.digest
		AND h.new_digest <> '' AND h.moved_at > ` + p + `)`
}

// TagHistory returns up to n moves of tag in repo, newest first (n <= 0 or above
// metadata.MaxTagHistory: that many); an unknown repository or tag has none.
func (s *Store) TagHistory(ctx context.Context, repo, tag string, n int) ([]metadata.TagMove, error) {
	if n <= 0 || n > metadata.MaxTagHistory {
		n = metadata.MaxTagHistory
	}
	var out []metadata.TagMove
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (metadata.TagMove, error) {
			var m metadata.TagMove
			var old, nw string
			var at int64
			err := r.Scan(&m.ID, &m.Tag, &old, &nw, &m.Actor, &at)
			m.Old, m.New, m.At = digest.Digest(old), digest.Digest(nw), fromNanos(at)
			return m, err
		})(q.Query(ctx, `SELECT h.id, h.tag, h.old_digest, h.new_digest, h.actor, h.moved_at
			FROM tag_history h JOIN repositories r ON r.id = h.repo_id
			WHERE r.name = $1 AND h.tag = $2 ORDER BY h.id DESC LIMIT $3`, repo, tag, n))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("history of tag %s:%s: %w", repo, tag, err)
	}
	return out, nil
}

// UniqueSize returns the bytes of the blobs manifest d of repo references (config and
// layers, and those of its children for an index) that no other manifest of any
// repository in the same namespace references: what deleting it could free there.
// One query.
func (s *Store) UniqueSize(ctx context.Context, repo string, d digest.Digest) (int64, error) {
	ns := namespaceOf(repo)
	var n int64
	err := s.do(ctx, func(q querier) error {
		// mine: the manifest and its children (one level: an index lists images).
		// A blob is unique when every manifest of the namespace referencing it is
		// one of mine.
		return q.QueryRow(ctx, `WITH me AS (SELECT id FROM repositories WHERE name = $1),
			mine AS (
				SELECT CAST($2 AS TEXT) AS digest
				UNION SELECT mr.ref_digest FROM manifest_refs mr, me
					WHERE mr.repo_id = me.id AND mr.manifest_digest = $2 AND mr.kind = 'manifest'),
			blobs_of AS (
				SELECT DISTINCT mr.ref_digest AS digest FROM manifest_refs mr, me
				WHERE mr.repo_id = me.id AND mr.kind = 'blob' AND mr.manifest_digest IN (SELECT digest FROM mine))
			SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM blobs_of bo JOIN blobs b ON b.digest = bo.digest
			WHERE NOT EXISTS (SELECT 1 FROM manifest_refs o JOIN repositories r ON r.id = o.repo_id
				WHERE o.ref_digest = bo.digest AND o.kind = 'blob' AND r.name >= $3 AND r.name < $4
				AND NOT (o.repo_id = (SELECT id FROM me) AND o.manifest_digest IN (SELECT digest FROM mine)))`,
			repo, d.String(), ns+"/", ns+"0").Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("unique size of %s@%s: %w", repo, d, err)
	}
	return n, nil
}
