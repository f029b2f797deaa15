package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
)

// This file holds the event outbox (migration 0017, docs/design/events.md). The methods
// that change repositories, manifests and tags call appendEvent inside their own
// transactions; the feed is read in (xid, seq) order, up to the snapshot's horizon.

var _ events.Store = (*Store)(nil)

// auditActions maps the events that go to the audit log, in the same transaction, to
// their audit actions: pushes and deletes are what an audit needs (mounts and tag moves
// are part of a push), and the repository changes the hub API makes.
var auditActions = map[events.Type]string{
	events.ManifestPushed:              "push",
	events.ManifestDeleted:             "delete",
	events.TagDeleted:                  "delete",
	events.BlobDeleted:                 "delete",
	events.RepositoryVisibilityChanged: "visibility.change",
	events.RepositoryDeleted:           "repository.delete",
}

// lockRepo takes the transaction-scoped lock that orders the event-writing
// transactions of one repository. It must come before any other statement that writes
// or locks a row: on PostgreSQL the advisory lock assigns no transaction id, so the id
// (the feed's order) is assigned after the lock is held, in commit order.
func (s *Store) lockRepo(ctx context.Context, q querier, name string) error {
	if s.d.lockRepo == "" {
		return nil
	}
	_, err := q.Exec(ctx, s.d.lockRepo, name)
	return err
}

// appendEvent writes e in q's transaction, stamped with the actor of ctx, a new id and
// the time, and for pushes and deletes the audit entry too.
func (s *Store) appendEvent(ctx context.Context, q querier, e events.Event) error {
	e.Stamp(ctx)
	e.Seq, e.Cursor = 0, ""
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("event %s: %w", e.Type, err)
	}
	var repoID *int64
	if e.RepositoryID != 0 {
		repoID = &e.RepositoryID
	}
	ns := ""
	if e.Repository != "" {
		ns = namespaceOf(e.Repository)
	}
	if _, err := q.Exec(ctx, `INSERT INTO events (id, type, repo_id, repository, namespace, actor, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.ID, string(e.Type), repoID, e.Repository, ns, e.Actor, string(payload), nanos(e.Time)); err != nil {
		return fmt.Errorf("event %s: %w", e.Type, err)
	}
	action, ok := auditActions[e.Type]
	if !ok {
		return nil
	}
	target := e.Repository
	switch {
	case e.Tag != "":
		target += ":" + e.Tag
	case e.Digest != "":
		target += "@" + e.Digest
	}
	actor := e.Actor
	if actor == "" {
		actor = "anonymous"
	}
	detail := string(e.Type)
	switch e.Type {
	case events.RepositoryVisibilityChanged:
		detail = e.Visibility
	case events.RepositoryDeleted:
		detail = ""
		if ns, ok := e.Detail["purgedWith"].(string); ok {
			detail = "purged with " + ns
		}
	}
	if tok := events.ActorFrom(ctx).Token; tok != "" {
		// Which token acted matters when one leaks.
		detail = strings.TrimSpace(detail + " (token " + tok + ")")
	}
	a := accounts.AuditEntry{Time: e.Time, Actor: actor, Action: action, Target: target, Remote: e.Remote, Detail: detail}.Clean()
	_, err = q.Exec(ctx, `INSERT INTO audit_log (time, actor, action, target, remote, detail)
		VALUES ($1, $2, $3, $4, $5, $6)`, nanos(a.Time), a.Actor, a.Action, a.Target, a.Remote, a.Detail)
	return err
}

// AppendEvent writes an event that changes nothing else (a GC run, a refused push).
func (s *Store) AppendEvent(ctx context.Context, e events.Event) (events.Event, error) {
	e.Stamp(ctx)
	err := s.write(ctx, func(q querier) error {
		if e.Repository != "" {
			if err := s.lockRepo(ctx, q, e.Repository); err != nil {
				return err
			}
			if e.RepositoryID == 0 {
				id, err := repoID(ctx, q, e.Repository)
				if err != nil && !isNoRows(err) {
					return err
				}
				e.RepositoryID = id
			}
		}
		return s.appendEvent(ctx, q, e)
	})
	if err != nil {
		return events.Event{}, fmt.Errorf("append event: %w", err)
	}
	return e, nil
}

// ListEvents returns the events q selects after q.After, in (xid, seq) order, only
// those of transactions finished before the read's snapshot (see the design note), so
// that a row committed later always sorts after the returned ones.
func (s *Store) ListEvents(ctx context.Context, eq events.Query) (events.Page, error) {
	n := eq.Limit
	if n <= 0 {
		n = events.DefaultPage
	}
	n = min(n, events.MaxPage)
	page := events.Page{Events: []events.Event{}, Next: eq.After}
	access, args, ok := s.eventAccess(eq)
	if !ok {
		return page, nil
	}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var where []string
	where = append(where, access)
	xidArg := len(args)
	xid, seq := arg(int64(eq.After.XID)), arg(eq.After.Seq)
	// A row comparison, which both databases read as one range of the feed index.
	where = append(where, "(e.xid, e.seq) > ("+xid+", "+seq+")")
	if s.d.xidHorizon != "" {
		where = append(where, "e.xid < "+s.d.xidHorizon)
	}
	if len(eq.Types) > 0 {
		ts := make([]string, len(eq.Types))
		for i, t := range eq.Types {
			ts[i] = string(t)
		}
		where = append(where, "e.type IN (SELECT value FROM "+s.d.list(arg(s.d.listArg(ts)), "text")+")")
	}
	if eq.Repository != "" {
		where = append(where, "e.repository = "+arg(eq.Repository))
	}
	if eq.Namespace != "" {
		where = append(where, "e.namespace = "+arg(eq.Namespace)+" AND e.repository <> e.namespace")
	}
	query := `SELECT e.seq, e.xid, e.id, e.type, COALESCE(e.repo_id, 0), e.repository, e.actor, CAST(e.payload AS TEXT), e.created_at
		FROM events e WHERE ` + strings.Join(where, " AND ")
	if eq.Newest {
		query += ` ORDER BY e.xid DESC, e.seq DESC LIMIT 1`
	} else {
		query += ` ORDER BY e.xid, e.seq LIMIT ` + arg(n)
	}
	bare := eq.After.XID == 0 && eq.After.Seq > 0
	err := s.read(ctx, func(q querier) error {
		if bare {
			// A bare event number: continue after that event's position (on SQLite, where
			// xid is 0, the number is the position; the look-up only checks it is kept).
			var x int64
			switch err := q.QueryRow(ctx, "SELECT xid FROM events WHERE seq = $1", eq.After.Seq).Scan(&x); {
			case isNoRows(err):
				return fmt.Errorf("event %d: %w", eq.After.Seq, events.ErrEventNotKept)
			case err != nil:
				return err
			}
			args[xidArg] = x
		}
		var err error
		page.Events, err = collect(scanEvent)(q.Query(ctx, query, args...))
		return err
	})
	if err != nil {
		return events.Page{}, fmt.Errorf("list events: %w", err)
	}
	if k := len(page.Events); k > 0 {
		page.Next, _ = events.ParseCursor(page.Events[k-1].Cursor)
		if eq.Newest {
			page.Events = page.Events[:0]
		}
	} else if bare {
		x, _ := args[xidArg].(int64)
		page.Next = events.Cursor{XID: uint64(x), Seq: eq.After.Seq}
	}
	return page, nil
}

// eventAccess returns the condition on events e that eq.Access allows, with its
// arguments (the first of the query's), or ok false when it allows nothing. It is the
// catalog's selection (see Catalog) applied to the event's repository as it is now:
// public repositories, the caller's namespaces, the repositories and organisations its
// teams are granted, narrowed by an access token's patterns. Hub-wide events (no
// repository) need All.
func (s *Store) eventAccess(eq events.Query) (string, []any, bool) {
	f := eq.Access
	restrict, exact, prefixes := patternSets(f)
	if restrict && len(exact)+len(prefixes) == 0 {
		return "", nil, false
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var or []string
	if f.All {
		if !restrict {
			return "TRUE", args, true
		}
		or = append(or, "e.repository <> ''")
	} else {
		if f.Public {
			or = append(or, "EXISTS (SELECT 1 FROM repositories r WHERE r.name = e.repository AND r.visibility = 'public')")
		}
		if len(f.Namespaces) > 0 {
			or = append(or, "(e.namespace IN (SELECT value FROM "+s.d.list(arg(s.d.listArg(f.Namespaces)), "text")+
				") AND e.repository <> e.namespace)")
		}
		if f.Member != "" {
			or = append(or, `EXISTS (SELECT 1 FROM team_members m
				JOIN team_grants g ON g.org = m.org AND g.team = m.team
				WHERE m.username = `+arg(f.Member)+` AND ((g.repository <> '' AND g.repository = e.repository)
					OR (g.repository = '' AND m.org = e.namespace AND e.repository <> e.namespace)))`)
		}
	}
	if len(or) == 0 {
		return "", nil, false
	}
	cond := "(" + strings.Join(or, " OR ") + ")"
	if restrict {
		var pats []string
		if len(exact) > 0 {
			pats = append(pats, "e.repository IN (SELECT value FROM "+s.d.list(arg(s.d.listArg(exact)), "text")+")")
		}
		if len(prefixes) > 0 {
			pats = append(pats, "EXISTS (SELECT 1 FROM "+s.d.list(arg(s.d.listArg(prefixes)), "text")+
				" WHERE substr(e.repository, 1, length(value)) = value)")
		}
		cond += " AND (" + strings.Join(pats, " OR ") + ")"
	}
	return cond, args, true
}

// scanEvent reads a row of ListEvents: the payload with the columns that are the
// event's identity laid over it.
func scanEvent(r row) (events.Event, error) {
	var (
		e                        events.Event
		seq, xid, repo, created  int64
		id, typ, name, actor, pl string
	)
	if err := r.Scan(&seq, &xid, &id, &typ, &repo, &name, &actor, &pl, &created); err != nil {
		return events.Event{}, err
	}
	if err := json.Unmarshal([]byte(pl), &e); err != nil {
		return events.Event{}, fmt.Errorf("event %d: decode payload: %w", seq, err)
	}
	e.Seq, e.ID, e.Type, e.RepositoryID, e.Repository, e.Actor = seq, id, events.Type(typ), repo, name, actor
	e.Cursor = events.Cursor{XID: uint64(xid), Seq: seq}.String()
	e.Time = fromNanos(created)
	return e, nil
}

// PurgeEvents deletes the events written before before, batch rows per transaction
// (1000 when batch <= 0), and returns how many went. Deleting is idempotent, so
// replicas purging at the same moment need no lease: a row one deletes, the other's
// statement skips.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time, batch int) (int, error) {
	return s.purgeInBatches(ctx, "events", `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2)`, before, batch)
}

// purgeInBatches runs del, a DELETE of at most $2 rows older than $1 (unix
// nanoseconds), one transaction at a time until a batch (0: 1,000) comes back short, so
// a long backlog never holds the writer for long; it returns how many rows went.
func (s *Store) purgeInBatches(ctx context.Context, what, del string, before time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 1000
	}
	total := 0
	for {
		var n int64
		err := s.write(ctx, func(q querier) error {
			var err error
			n, err = q.Exec(ctx, del, nanos(before), batch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("purge %s: %w", what, err)
		}
		total += int(n)
		if n < int64(batch) || ctx.Err() != nil {
			return total, nil
		}
	}
}
