package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/policy"
)

// This file holds tag and retention policies and manifest pull times (migration 0015).

var _ policy.Store = (*Store)(nil)

// PutPolicy sets the policy of scope (a namespace or a repository), replacing one.
func (s *Store) PutPolicy(ctx context.Context, scope string, p policy.Policy, by string) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO tag_policies (scope, policy, updated_at, updated_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (scope) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			scope, string(b), nanos(time.Now()), by)
		return err
	})
	if err != nil {
		return fmt.Errorf("set policy of %s: %w", scope, err)
	}
	return nil
}

// DeletePolicy removes the policy of scope, or returns policy.ErrNotFound.
func (s *Store) DeletePolicy(ctx context.Context, scope string) error {
	err := s.write(ctx, func(q querier) error {
		n, err := q.Exec(ctx, "DELETE FROM tag_policies WHERE scope = $1", scope)
		if err == nil && n == 0 {
			return policy.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete policy of %s: %w", scope, err)
	}
	return nil
}

// ListPolicies returns every policy, by scope.
func (s *Store) ListPolicies(ctx context.Context) ([]policy.Stored, error) {
	var out []policy.Stored
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (policy.Stored, error) {
			var st policy.Stored
			var body []byte
			var at int64
			if err := r.Scan(&st.Scope, &body, &at, &st.UpdatedBy); err != nil {
				return st, err
			}
			st.UpdatedAt = fromNanos(at)
			return st, json.Unmarshal(body, &st.Policy)
		})(q.Query(ctx, "SELECT scope, policy, updated_at, updated_by FROM tag_policies ORDER BY scope"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}

// RecordPulls writes one flush of a replica's pull notes in one transaction: the pull
// times, keeping the later of the stored and the new time (pulls of manifests gone
// meanwhile are skipped), and the counts as repository.pulled events, with one event
// without a repository for the pulls that overflowed the counter. The events take no
// repository lock: a flush touches many repositories (as a GC run does), and an
// aggregate has no order to keep against one repository's pushes.
func (s *Store) RecordPulls(ctx context.Context, b policy.PullBatch) error {
	if len(b.Times) == 0 && len(b.Counts) == 0 && b.Overflow == 0 {
		return nil
	}
	window := func(d map[string]any) map[string]any {
		d["windowStart"], d["windowEnd"] = b.WindowStart.UTC(), b.WindowEnd.UTC()
		return d
	}
	err := s.write(ctx, func(q querier) error {
		for _, p := range b.Times {
			if _, err := q.Exec(ctx, `INSERT INTO manifest_pulls (repo_id, digest, pulled_at)
				SELECT m.repo_id, m.digest, $3 FROM manifests m JOIN repositories r ON r.id = m.repo_id
				WHERE r.name = $1 AND m.digest = $2
				ON CONFLICT (repo_id, digest) DO UPDATE SET pulled_at = `+s.d.greatest+`(manifest_pulls.pulled_at, excluded.pulled_at)`,
				p.Repository, p.Digest.String(), nanos(p.At)); err != nil {
				return err
			}
		}
		ids := map[string]int64{}
		for _, c := range b.Counts {
			id, ok := ids[c.Repository]
			if !ok {
				// A repository deleted since keeps its pulls, under the name it had.
				var err error
				if id, err = repoID(ctx, q, c.Repository); err != nil && !isNoRows(err) {
					return err
				}
				ids[c.Repository] = id
			}
			if err := s.appendEvent(ctx, q, events.Event{Type: events.RepositoryPulled, RepositoryID: id, Repository: c.Repository,
				Digest: c.Digest.String(), Tag: c.Tag, Time: b.WindowEnd, Detail: window(map[string]any{"count": c.Count})}); err != nil {
				return err
			}
		}
		if b.Overflow > 0 {
			return s.appendEvent(ctx, q, events.Event{Type: events.RepositoryPulled, Time: b.WindowEnd,
				Detail: window(map[string]any{"count": b.Overflow, "unattributed": true})})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d pull times and %d pull counts: %w", len(b.Times), len(b.Counts), err)
	}
	return nil
}

// RetentionView reads repo's tags, manifests (with pull times, subjects and index
// children) in one snapshot.
func (s *Store) RetentionView(ctx context.Context, repo string) (policy.View, error) {
	v := policy.View{Repository: repo}
	err := s.read(ctx, func(q querier) error {
		v.Tags, v.Manifests = nil, nil
		var err error
		v.Tags, err = collect(func(r row) (policy.Tag, error) {
			var t policy.Tag
			var d string
			var at int64
			err := r.Scan(&t.Name, &d, &at)
			t.Digest, t.PushedAt = digest.Digest(d), fromNanos(at)
			return t, err
		})(q.Query(ctx, `SELECT t.name, t.digest, t.updated_at FROM tags t JOIN repositories r ON r.id = t.repo_id
			WHERE r.name = $1 ORDER BY t.name`, repo))
		if err != nil {
			return err
		}
		v.Manifests, err = collect(func(r row) (policy.Manifest, error) {
			var m policy.Manifest
			var d string
			var subject *string
			var pushed int64
			var pulled *int64
			err := r.Scan(&d, &pushed, &pulled, &subject)
			m.Digest, m.PushedAt, m.PulledAt = digest.Digest(d), fromNanos(pushed), fromNullNanos(pulled)
			if subject != nil {
				m.Subject = digest.Digest(*subject)
			}
			return m, err
		})(q.Query(ctx, `SELECT m.digest, m.created_at, p.pulled_at, m.subject FROM manifests m
			JOIN repositories r ON r.id = m.repo_id
			LEFT JOIN manifest_pulls p ON p.repo_id = m.repo_id AND p.digest = m.digest
			WHERE r.name = $1 ORDER BY m.digest`, repo))
		if err != nil {
			return err
		}
		held, err := collect(scanString)(q.Query(ctx, `SELECT m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id
			WHERE r.name = $1 AND `+heldWhere("$2"), repo, s.holdCutoff()))
		if err != nil {
			return err
		}
		type edge struct{ parent, child string }
		edges, err := collect(func(r row) (edge, error) {
			var e edge
			return e, r.Scan(&e.parent, &e.child)
		})(q.Query(ctx, `SELECT mr.manifest_digest, mr.ref_digest FROM manifest_refs mr JOIN repositories r ON r.id = mr.repo_id
			WHERE r.name = $1 AND mr.kind = 'manifest'`, repo))
		if err != nil {
			return err
		}
		idx := make(map[digest.Digest]int, len(v.Manifests))
		for i, m := range v.Manifests {
			idx[m.Digest] = i
		}
		for _, d := range held {
			if i, ok := idx[digest.Digest(d)]; ok {
				v.Manifests[i].Held = true
			}
		}
		for _, e := range edges {
			if i, ok := idx[digest.Digest(e.parent)]; ok {
				v.Manifests[i].Children = append(v.Manifests[i].Children, digest.Digest(e.child))
			}
		}
		return nil
	})
	if err != nil {
		return policy.View{}, fmt.Errorf("retention view of %s: %w", repo, err)
	}
	return v, nil
}

// TagsOf lists the tags of repo pointing at d.
func (s *Store) TagsOf(ctx context.Context, repo string, d digest.Digest) ([]string, error) {
	var out []string
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(scanString)(q.Query(ctx, `SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id
			WHERE r.name = $1 AND t.digest = $2 ORDER BY t.name`, repo, d.String()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tags of %s@%s: %w", repo, d, err)
	}
	return out, nil
}

// RepositoriesIn lists the repositories of namespace ns, by name.
func (s *Store) RepositoriesIn(ctx context.Context, ns string) ([]string, error) {
	var out []string
	err := s.do(ctx, func(q querier) error {
		var err error
		// "0" follows "/" in byte order: the range holds exactly "ns/…".
		out, err = collect(scanString)(q.Query(ctx, `SELECT name FROM repositories WHERE name >= $1 AND name < $2 ORDER BY name`,
			ns+"/", ns+"0"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("repositories of %s: %w", ns, err)
	}
	return out, nil
}
