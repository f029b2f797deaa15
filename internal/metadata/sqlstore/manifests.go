package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// PutManifest stores m, checks refs, records its edges and moves tag, in one
// transaction: a missing reference leaves nothing written, not even the repository.
//
// The transaction locks the repository row first (see the package comment), so two
// replicas putting to one tag apply one after the other, and the second reports the
// first's digest as PreviousTagDigest.
func (s *Store) PutManifest(ctx context.Context, m metadata.Manifest, refs metadata.References, tag string) (metadata.PutManifestResult, error) {
	var res metadata.PutManifestResult
	annotations, err := encodeAnnotations(m.Annotations)
	if err != nil {
		return res, fmt.Errorf("put manifest %s@%s: %w", m.Repository, m.Digest, err)
	}
	payload := m.Payload
	if payload == nil {
		payload = []byte{} // NULL would break the NOT NULL column
	}
	err = s.write(ctx, func(q querier) error {
		res = metadata.PutManifestResult{}
		if err := s.lockRepo(ctx, q, m.Repository); err != nil {
			return err
		}
		id, err := s.ensureRepo(ctx, q, m.Repository, true)
		if err != nil {
			return err
		}
		if err := s.checkRefs(ctx, q, id, refs); err != nil {
			return err
		}
		n, err := q.Exec(ctx, `INSERT INTO manifests
			(repo_id, digest, media_type, artifact_type, size, payload, subject, annotations, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (repo_id, digest) DO NOTHING`,
			id, m.Digest.String(), m.MediaType, m.ArtifactType, m.Size, payload,
			nullString(m.Subject.String()), annotations, nanos(m.CreatedAt))
		if err != nil {
			return err
		}
		res.Created = n == 1

		// Replace rather than merge: the edges are a function of the manifest's bytes,
		// and rewriting them repairs a row written by an older, buggier version.
		if _, err := q.Exec(ctx, "DELETE FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2",
			id, m.Digest.String()); err != nil {
			return err
		}
		if len(refs.Blobs)+len(refs.Manifests) > 0 {
			// The CASTs type the parameters for PostgreSQL, which cannot infer them through
			// a UNION; "WHERE true" keeps SQLite from reading ON CONFLICT as a join's ON.
			if _, err := q.Exec(ctx, `INSERT INTO manifest_refs (repo_id, manifest_digest, ref_digest, kind)
				SELECT CAST($1 AS BIGINT), CAST($2 AS TEXT), value, 'blob' FROM `+s.d.list("$3", "text")+`
				UNION ALL
				SELECT CAST($1 AS BIGINT), CAST($2 AS TEXT), value, 'manifest' FROM `+s.d.list("$4", "text")+`
				WHERE true
				ON CONFLICT DO NOTHING`,
				id, m.Digest.String(), s.d.listArg(digestStrings(refs.Blobs)), s.d.listArg(digestStrings(refs.Manifests))); err != nil {
				return err
			}
		}

		if tag == "" {
			if err := s.checkGrowth(ctx, q, m.Repository, id, res.Created, false, m.Size); err != nil {
				return err
			}
			return s.pushEvents(ctx, q, id, m, tag, res)
		}
		// FOR UPDATE also orders this put with a concurrent DeleteTag, which does not
		// take the repository lock: whichever locks the tag row first goes first.
		var prev string
		switch err := q.QueryRow(ctx, "SELECT digest FROM tags WHERE repo_id = $1 AND name = $2"+s.d.forUpdate,
			id, tag).Scan(&prev); {
		case isNoRows(err):
		case err != nil:
			return err
		}
		res.PreviousTagDigest = digest.Digest(prev)
		res.TagMoved = prev != m.Digest.String()
		if !res.TagMoved {
			if err := s.checkGrowth(ctx, q, m.Repository, id, res.Created, false, m.Size); err != nil {
				return err
			}
			return s.pushEvents(ctx, q, id, m, tag, res)
		}
		_, err = q.Exec(ctx, `INSERT INTO tags (repo_id, name, digest, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
			id, tag, m.Digest.String(), nanos(time.Time{}))
		if err != nil {
			return err
		}
		if err := s.checkGrowth(ctx, q, m.Repository, id, res.Created, prev == "", m.Size); err != nil {
			return err
		}
		if err := s.recordTagMove(ctx, q, id, tag, prev, m.Digest.String()); err != nil {
			return err
		}
		return s.pushEvents(ctx, q, id, m, tag, res)
	})
	if err != nil {
		// Wrapped like every error; callers find *metadata.MissingReferenceError with errors.As.
		return metadata.PutManifestResult{}, fmt.Errorf("put manifest %s@%s: %w", m.Repository, m.Digest, err)
	}
	return res, nil
}

// pushEvents writes the events of a put in its transaction: manifest.pushed on every
// put (re-pushes too, as webhook consumers expect), tag.moved when the tag now points
// here.
func (s *Store) pushEvents(ctx context.Context, q querier, repoID int64, m metadata.Manifest, tag string, res metadata.PutManifestResult) error {
	kind, platforms := events.Describe(m.MediaType, m.ArtifactType, m.Payload)
	if err := s.appendEvent(ctx, q, events.Event{Type: events.ManifestPushed, RepositoryID: repoID, Repository: m.Repository,
		Digest: m.Digest.String(), Tag: tag, MediaType: m.MediaType, ArtifactType: m.ArtifactType, Kind: kind,
		Platforms: platforms, Size: m.Size}); err != nil {
		return err
	}
	if !res.TagMoved {
		return nil
	}
	return s.appendEvent(ctx, q, events.Event{Type: events.TagMoved, RepositoryID: repoID, Repository: m.Repository,
		Digest: m.Digest.String(), PreviousDigest: res.PreviousTagDigest.String(), Tag: tag, MediaType: m.MediaType})
}

// SetRepositoryLimits sets the bounds PutManifest enforces; see metadata.Store.
func (s *Store) SetRepositoryLimits(l metadata.RepositoryLimits) { s.limits.Store(&l) }

// checkRefs returns a *metadata.MissingReferenceError for the first reference (blobs
// first, then child manifests, each in the order given) that is not in the repository,
// one query per kind.
//
// The referenced rows are not locked: a link removed or a child deleted after this
// check commits after the put, which is the same as the removal happening after it;
// the repository lock already orders this put against DeleteManifest of a child.
func (s *Store) checkRefs(ctx context.Context, q querier, repoID int64, refs metadata.References) error {
	for _, kind := range []struct {
		ds       []digest.Digest
		table    string
		manifest bool
	}{
		{refs.Blobs, "repository_blobs", false},
		{refs.Manifests, "manifests", true},
	} {
		if len(kind.ds) == 0 {
			continue
		}
		missing, err := collect(scanString)(q.Query(ctx, `SELECT value FROM `+s.d.list("$2", "text")+`
			WHERE NOT EXISTS (SELECT 1 FROM `+kind.table+` WHERE repo_id = $1 AND digest = value)`,
			repoID, s.d.listArg(digestStrings(kind.ds))))
		if err != nil {
			return err
		}
		for _, d := range kind.ds {
			if slices.Contains(missing, d.String()) {
				return &metadata.MissingReferenceError{Digest: d, Manifest: kind.manifest}
			}
		}
	}
	return nil
}

// manifestColumns are the payload-less columns scanManifest reads; mManifestColumns
// the same of the table aliased m. Constants, so the statements built from them are too:
// no string is built per call on the pull path.
const (
	manifestColumns  = "digest, media_type, artifact_type, size, subject, annotations, created_at"
	mManifestColumns = "m.digest, m.media_type, m.artifact_type, m.size, m.subject, m.annotations, m.created_at"
)

// GetManifest returns the manifest with payload, or metadata.ErrManifestNotFound.
func (s *Store) GetManifest(ctx context.Context, repo string, d digest.Digest) (metadata.Manifest, error) {
	var m metadata.Manifest
	err := s.do(ctx, func(q querier) error {
		var err error
		m, err = scanManifest(q.QueryRow(ctx, `SELECT `+mManifestColumns+`, m.payload
			FROM manifests m JOIN repositories r ON r.id = m.repo_id
			WHERE r.name = $1 AND m.digest = $2`, repo, d.String()), true)
		return err
	})
	switch {
	case isNoRows(err):
		return metadata.Manifest{}, fmt.Errorf("manifest %s@%s: %w", repo, d, metadata.ErrManifestNotFound)
	case err != nil:
		return metadata.Manifest{}, fmt.Errorf("manifest %s@%s: %w", repo, d, err)
	}
	m.Repository = repo
	return m, nil
}

// GetManifestByTag returns the manifest tag points at, with payload, in one query, or
// metadata.ErrTagNotFound.
func (s *Store) GetManifestByTag(ctx context.Context, repo, tag string) (metadata.Manifest, error) {
	var m metadata.Manifest
	err := s.do(ctx, func(q querier) error {
		var err error
		// The tag is resolved first, in a subquery, then the manifest read by its key.
		// As a three-way join, PostgreSQL's estimate of one manifest per repository
		// (true of most) made it walk every manifest of a repository of 10,000 and probe
		// its tags: 41 ms instead of 0.2 ms (bench/webbench, the tag page).
		m, err = scanManifest(q.QueryRow(ctx, `SELECT `+mManifestColumns+`, m.payload
			FROM manifests m
			WHERE m.repo_id = (SELECT id FROM repositories WHERE name = $1)
			AND m.digest = (SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id
				WHERE r.name = $1 AND t.name = $2)`, repo, tag), true)
		return err
	})
	switch {
	case isNoRows(err):
		return metadata.Manifest{}, fmt.Errorf("tag %s:%s: %w", repo, tag, metadata.ErrTagNotFound)
	case err != nil:
		return metadata.Manifest{}, fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	m.Repository = repo
	return m, nil
}

// ResolveTag returns the digest tag points at, or metadata.ErrTagNotFound.
func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	var d string
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id
			WHERE r.name = $1 AND t.name = $2`, repo, tag).Scan(&d)
	})
	switch {
	case isNoRows(err):
		return "", fmt.Errorf("tag %s:%s: %w", repo, tag, metadata.ErrTagNotFound)
	case err != nil:
		return "", fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	return digest.Digest(d), nil
}

// ListTags returns up to n tags of repo in byte order after last, or
// metadata.ErrRepositoryNotFound. One statement, so the existence check and the
// listing see one snapshot: no row means no repository, one NULL row means no tags.
func (s *Store) ListTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	var (
		tags  []string
		found bool
	)
	err := s.do(ctx, func(q querier) error {
		names, err := collect(func(r row) (*string, error) {
			var name *string
			err := r.Scan(&name)
			return name, err
		})(q.Query(ctx, `SELECT t.name FROM repositories r
			LEFT JOIN tags t ON t.repo_id = r.id AND t.name > $2
			WHERE r.name = $1
			ORDER BY t.name LIMIT $3`, repo, last, s.d.limit(n)))
		if err != nil {
			return err
		}
		found, tags = len(names) > 0, []string{}
		for _, n := range names {
			if n != nil {
				tags = append(tags, *n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	if !found {
		return nil, fmt.Errorf("list tags of %s: %w", repo, metadata.ErrRepositoryNotFound)
	}
	return tags, nil
}

// DeleteTag removes a tag and returns the digest it pointed at, or
// metadata.ErrTagNotFound.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	var d string
	err := s.write(ctx, func(q querier) error {
		if err := s.lockRepo(ctx, q, repo); err != nil {
			return err
		}
		var id int64
		if err := q.QueryRow(ctx, `DELETE FROM tags
			WHERE repo_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2
			RETURNING digest, repo_id`, repo, tag).Scan(&d, &id); err != nil {
			return err
		}
		if err := s.recordTagMove(ctx, q, id, tag, d, ""); err != nil {
			return err
		}
		return s.appendEvent(ctx, q, events.Event{Type: events.TagDeleted, RepositoryID: id, Repository: repo, Digest: d, Tag: tag})
	})
	switch {
	case isNoRows(err):
		return "", fmt.Errorf("delete tag %s:%s: %w", repo, tag, metadata.ErrTagNotFound)
	case err != nil:
		return "", fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
	}
	return digest.Digest(d), nil
}

// maxNamedIndexes bounds the indexes a *metadata.ReferencedManifestError lists.
const maxNamedIndexes = 3

// DeleteManifest removes a manifest, its edges and the tags pointing at it, or returns
// metadata.ErrManifestNotFound, or *metadata.ReferencedManifestError when an index of
// the repository lists it. Its referrer entries go with it: they are its subject
// column. It takes the repository lock, as PutManifest does, so a concurrent put of the
// same manifest or a tag move onto it is ordered before or after, never in between.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) (metadata.DeleteManifestResult, error) {
	var res metadata.DeleteManifestResult
	err := s.write(ctx, func(q querier) error {
		res = metadata.DeleteManifestResult{}
		if err := s.lockRepo(ctx, q, repo); err != nil {
			return err
		}
		var id int64
		if err := q.QueryRow(ctx, "SELECT id FROM repositories WHERE name = $1"+s.d.forNoKeyUpdate, repo).Scan(&id); err != nil {
			return err
		}
		// Under the repository lock no index can be put (or deleted) meanwhile, so the
		// check holds until commit.
		indexes, err := collect(scanString)(q.Query(ctx, `SELECT manifest_digest FROM manifest_refs
			WHERE repo_id = $1 AND ref_digest = $2 AND kind = 'manifest' AND manifest_digest <> $2
			ORDER BY manifest_digest`, id, d.String()))
		if err != nil {
			return err
		}
		if len(indexes) > 0 {
			e := &metadata.ReferencedManifestError{Digest: d}
			for i, x := range indexes {
				if i == maxNamedIndexes {
					e.More = len(indexes) - i
					break
				}
				e.Indexes = append(e.Indexes, digest.Digest(x))
			}
			return e
		}
		res.Tags, err = collect(scanString)(q.Query(ctx, "DELETE FROM tags WHERE repo_id = $1 AND digest = $2 RETURNING name",
			id, d.String()))
		if err != nil {
			return err
		}
		slices.Sort(res.Tags)
		// manifest_refs go by cascade; no row here rolls the tag deletion back.
		res.Manifest, err = scanManifest(q.QueryRow(ctx, `DELETE FROM manifests WHERE repo_id = $1 AND digest = $2
			RETURNING `+manifestColumns, id, d.String()), false)
		res.Manifest.Repository = repo
		if err != nil {
			return err
		}
		for _, t := range res.Tags {
			if err := s.recordTagMove(ctx, q, id, t, d.String(), ""); err != nil {
				return err
			}
			if err := s.appendEvent(ctx, q, events.Event{Type: events.TagDeleted, RepositoryID: id, Repository: repo,
				Digest: d.String(), Tag: t}); err != nil {
				return err
			}
		}
		return s.appendEvent(ctx, q, events.Event{Type: events.ManifestDeleted, RepositoryID: id, Repository: repo,
			Digest: d.String(), MediaType: res.Manifest.MediaType, ArtifactType: res.Manifest.ArtifactType, Size: res.Manifest.Size})
	})
	switch {
	case isNoRows(err):
		return metadata.DeleteManifestResult{}, fmt.Errorf("delete manifest %s@%s: %w", repo, d, metadata.ErrManifestNotFound)
	case err != nil:
		return metadata.DeleteManifestResult{}, fmt.Errorf("delete manifest %s@%s: %w", repo, d, err)
	}
	return res, nil
}

// Referrers lists the manifests of repo whose subject is d, without payload, ordered by
// digest; an unknown repository has none.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]metadata.Manifest, error) {
	var out []metadata.Manifest
	err := s.do(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (metadata.Manifest, error) {
			m, err := scanManifest(r, false)
			m.Repository = repo
			return m, err
		})(q.Query(ctx, `SELECT `+mManifestColumns+`
			FROM manifests m JOIN repositories r ON r.id = m.repo_id
			WHERE r.name = $1 AND m.subject = $2 AND ($3 = '' OR m.artifact_type = $3)
			ORDER BY m.digest`, repo, d.String(), artifactType))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
	}
	return out, nil
}

// scanManifest reads manifestColumns, followed by the payload when withPayload.
func scanManifest(r row, withPayload bool) (metadata.Manifest, error) {
	var (
		m           metadata.Manifest
		dg          string
		subject     *string
		annotations []byte
		created     int64
	)
	dest := []any{&dg, &m.MediaType, &m.ArtifactType, &m.Size, &subject, &annotations, &created}
	if withPayload {
		dest = append(dest, &m.Payload)
	}
	if err := r.Scan(dest...); err != nil {
		return metadata.Manifest{}, err
	}
	m.Digest = digest.Digest(dg)
	if subject != nil {
		m.Subject = digest.Digest(*subject)
	}
	m.CreatedAt = fromNanos(created)
	if len(annotations) > 0 {
		if err := json.Unmarshal(annotations, &m.Annotations); err != nil {
			return metadata.Manifest{}, fmt.Errorf("manifest %s: decode annotations: %w", m.Digest, err)
		}
	}
	return m, nil
}

// encodeAnnotations returns the JSON of a as text (SQLite's TEXT, PostgreSQL's JSONB
// both take it), or nil (SQL NULL) when there are none.
func encodeAnnotations(a map[string]string) (*string, error) {
	if len(a) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode annotations: %w", err)
	}
	return nullString(string(b)), nil
}

// nullString stores "" as NULL (a manifest without a subject).
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func digestStrings(ds []digest.Digest) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
