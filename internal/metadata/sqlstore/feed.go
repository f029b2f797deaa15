package sqlstore

import (
	"context"

	"github.com/hubctl/hubctl/internal/events"
)

// A feed cursor is a one-row table (id 1: xid, seq) holding a consumer's place in the
// event feed: the webhook dispatcher's and the workflow dispatcher's. The names are
// constants of this package, never input.
const (
	webhookCursor  = "webhook_cursor"
	workflowCursor = "workflow_cursor"
)

// feedWaiting reports whether events wait after cursor. Idle replicas look without
// taking the writer (SQLite) or a row lock (PostgreSQL).
func (s *Store) feedWaiting(ctx context.Context, cursor string) (bool, error) {
	return s.any(ctx, `SELECT 1 FROM events e WHERE (e.xid, e.seq) > (COALESCE((SELECT xid FROM `+cursor+` WHERE id = 1), 0),
		COALESCE((SELECT seq FROM `+cursor+` WHERE id = 1), 0))`)
}

// feedNext locks cursor's row for the rest of q's transaction, so replicas dispatching
// at once take turns and each event is handled once, and reads up to limit events
// after it. On PostgreSQL the feed is read below the transaction-id horizon
// (docs/design/events.md): an event of a transaction still running sorts after
// everything read here, so moving the cursor past what was read never skips it.
func (s *Store) feedNext(ctx context.Context, q querier, cursor string, limit int) ([]events.Event, error) {
	if _, err := q.Exec(ctx, `INSERT INTO `+cursor+` (id, xid, seq) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING`); err != nil {
		return nil, err
	}
	var xid, seq int64
	if err := q.QueryRow(ctx, `SELECT xid, seq FROM `+cursor+` WHERE id = 1`+s.d.forUpdate).Scan(&xid, &seq); err != nil {
		return nil, err
	}
	query := `SELECT e.seq, e.xid, e.id, e.type, COALESCE(e.repo_id, 0), e.repository, e.actor, CAST(e.payload AS TEXT), e.created_at
		FROM events e WHERE (e.xid, e.seq) > ($1, $2)`
	if s.d.xidHorizon != "" {
		query += " AND e.xid < " + s.d.xidHorizon
	}
	query += " ORDER BY e.xid, e.seq LIMIT $3"
	return collect(scanEvent)(q.Query(ctx, query, xid, seq, limit))
}

// feedAdvance moves cursor past evs, the last read by feedNext in q's transaction.
func (s *Store) feedAdvance(ctx context.Context, q querier, cursor string, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	next, err := events.ParseCursor(evs[len(evs)-1].Cursor)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `UPDATE `+cursor+` SET xid = $1, seq = $2 WHERE id = 1`, int64(next.XID), next.Seq)
	return err
}

// consumeFeed is one step of a feed consumer: in one write transaction it takes the
// next events after cursor (feedNext), lets handle write what they cause, and moves
// the cursor past them, so an event's effects and the cursor commit together. It
// returns how many events were read; an idle feed costs one read without a lock.
func (s *Store) consumeFeed(ctx context.Context, cursor string, limit int, handle func(q querier, evs []events.Event) error) (int, error) {
	if limit <= 0 || limit > events.MaxPage {
		limit = events.DefaultPage
	}
	if ok, err := s.feedWaiting(ctx, cursor); err != nil || !ok {
		return 0, err
	}
	read := 0
	err := s.write(ctx, func(q querier) error {
		read = 0
		evs, err := s.feedNext(ctx, q, cursor, limit)
		if err != nil || len(evs) == 0 {
			return err
		}
		if err := handle(q, evs); err != nil {
			return err
		}
		read = len(evs)
		return s.feedAdvance(ctx, q, cursor, evs)
	})
	return read, err
}
