package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

// PutManifest stores m, checks refs, records its edges and moves tag, in one write
// transaction: a missing reference leaves nothing written, not even the repository.
func (s *Store) PutManifest(ctx context.Context, m metadata.Manifest, refs metadata.References, tag string) (metadata.PutManifestResult, error) {
	var res metadata.PutManifestResult
	annotations, err := encodeAnnotations(m.Annotations)
	if err != nil {
		return res, fmt.Errorf("put manifest %s@%s: %w", m.Repository, m.Digest, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		id, err := ensureRepo(ctx, tx, m.Repository)
		if err != nil {
			return err
		}
		if err := checkRefs(ctx, tx, id, refs); err != nil {
			return err
		}
		ins, err := tx.ExecContext(ctx, `INSERT INTO manifests
			(repo_id, digest, media_type, artifact_type, size, payload, subject, annotations, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (repo_id, digest) DO NOTHING`,
			id, m.Digest.String(), m.MediaType, m.ArtifactType, m.Size, payloadBytes(m.Payload),
			nullString(m.Subject.String()), annotations, nanos(m.CreatedAt))
		if err != nil {
			return err
		}
		n, err := ins.RowsAffected()
		if err != nil {
			return err
		}
		res.Created = n == 1

		// Replace rather than merge: the edges are a function of the manifest's bytes,
		// and rewriting them repairs a row written by an older, buggier version.
		if _, err := tx.ExecContext(ctx, "DELETE FROM manifest_refs WHERE repo_id = ? AND manifest_digest = ?",
			id, m.Digest.String()); err != nil {
			return err
		}
		for kind, ds := range map[string][]digest.Digest{"blob": refs.Blobs, "manifest": refs.Manifests} {
			for _, d := range ds {
				if _, err := tx.ExecContext(ctx, `INSERT INTO manifest_refs (repo_id, manifest_digest, ref_digest, kind)
					VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, m.Digest.String(), d.String(), kind); err != nil {
					return err
				}
			}
		}

		if tag == "" {
			return nil
		}
		var prev string
		switch err := tx.QueryRowContext(ctx, "SELECT digest FROM tags WHERE repo_id = ? AND name = ?", id, tag).Scan(&prev); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		}
		res.PreviousTagDigest = digest.Digest(prev)
		res.TagMoved = prev != m.Digest.String()
		if !res.TagMoved {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tags (repo_id, name, digest, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
			id, tag, m.Digest.String(), nanos(time.Time{}))
		return err
	})
	if err != nil {
		// Wrapped like every error; callers find *metadata.MissingReferenceError with errors.As.
		return metadata.PutManifestResult{}, fmt.Errorf("put manifest %s@%s: %w", m.Repository, m.Digest, err)
	}
	return res, nil
}

// checkRefs returns a *metadata.MissingReferenceError for the first reference (blobs
// first, then child manifests) that is not in the repository.
func checkRefs(ctx context.Context, tx *sql.Tx, repoID int64, refs metadata.References) error {
	var one int
	for _, d := range refs.Blobs {
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM repository_blobs WHERE repo_id = ? AND digest = ?",
			repoID, d.String()).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return &metadata.MissingReferenceError{Digest: d}
		} else if err != nil {
			return err
		}
	}
	for _, d := range refs.Manifests {
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?",
			repoID, d.String()).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return &metadata.MissingReferenceError{Digest: d, Manifest: true}
		} else if err != nil {
			return err
		}
	}
	return nil
}

// GetManifest returns the manifest with payload, or metadata.ErrManifestNotFound.
func (s *Store) GetManifest(ctx context.Context, repo string, d digest.Digest) (metadata.Manifest, error) {
	m := metadata.Manifest{Repository: repo, Digest: d}
	var (
		subject, annotations sql.NullString
		created              int64
	)
	err := s.getManifest.QueryRowContext(ctx, repo, d.String()).Scan(
		&m.MediaType, &m.ArtifactType, &m.Size, &m.Payload, &subject, &annotations, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return metadata.Manifest{}, fmt.Errorf("manifest %s@%s: %w", repo, d, metadata.ErrManifestNotFound)
	case err != nil:
		return metadata.Manifest{}, fmt.Errorf("manifest %s@%s: %w", repo, d, err)
	}
	return finishManifest(m, subject, annotations, created)
}

// GetManifestByTag returns the manifest tag points at, with payload, or
// metadata.ErrTagNotFound.
func (s *Store) GetManifestByTag(ctx context.Context, repo, tag string) (metadata.Manifest, error) {
	m := metadata.Manifest{Repository: repo}
	var (
		d                    string
		subject, annotations sql.NullString
		created              int64
	)
	err := s.getManifestByTag.QueryRowContext(ctx, repo, tag).Scan(
		&d, &m.MediaType, &m.ArtifactType, &m.Size, &m.Payload, &subject, &annotations, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return metadata.Manifest{}, fmt.Errorf("tag %s:%s: %w", repo, tag, metadata.ErrTagNotFound)
	case err != nil:
		return metadata.Manifest{}, fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	m.Digest = digest.Digest(d)
	return finishManifest(m, subject, annotations, created)
}

// finishManifest fills the nullable and encoded columns of a manifest row.
func finishManifest(m metadata.Manifest, subject, annotations sql.NullString, created int64) (metadata.Manifest, error) {
	m.Subject = digest.Digest(subject.String)
	m.CreatedAt = fromNanos(created)
	var err error
	if m.Annotations, err = decodeAnnotations(annotations); err != nil {
		return metadata.Manifest{}, fmt.Errorf("manifest %s@%s: %w", m.Repository, m.Digest, err)
	}
	return m, nil
}

// ResolveTag returns the digest tag points at, or metadata.ErrTagNotFound.
func (s *Store) ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	var d string
	switch err := s.resolveTag.QueryRowContext(ctx, repo, tag).Scan(&d); {
	case errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("tag %s:%s: %w", repo, tag, metadata.ErrTagNotFound)
	case err != nil:
		return "", fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	return digest.Digest(d), nil
}

// ListTags returns up to n tags of repo in byte order after last, or
// metadata.ErrRepositoryNotFound.
func (s *Store) ListTags(ctx context.Context, repo, last string, n int) ([]string, error) {
	// One read transaction, so the existence check and the listing see one snapshot.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	defer tx.Rollback()
	id, err := repoID(ctx, tx, repo)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("list tags of %s: %w", repo, metadata.ErrRepositoryNotFound)
	case err != nil:
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?",
		id, last, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	tags, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return tags, nil
}

// DeleteTag removes a tag and returns the digest it pointed at, or
// metadata.ErrTagNotFound.
func (s *Store) DeleteTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	var d string
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `DELETE FROM tags
			WHERE repo_id = (SELECT id FROM repositories WHERE name = ?) AND name = ?
			RETURNING digest`, repo, tag).Scan(&d)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("delete tag %s:%s: %w", repo, tag, metadata.ErrTagNotFound)
	case err != nil:
		return "", fmt.Errorf("delete tag %s:%s: %w", repo, tag, err)
	}
	return digest.Digest(d), nil
}

// DeleteManifest removes a manifest, its edges and the tags pointing at it, or returns
// metadata.ErrManifestNotFound. Its referrer entries go with it: they are its subject
// column.
func (s *Store) DeleteManifest(ctx context.Context, repo string, d digest.Digest) (metadata.DeleteManifestResult, error) {
	var res metadata.DeleteManifestResult
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := repoID(ctx, tx, repo)
		if err != nil {
			return err
		}
		res, err = deleteManifest(ctx, tx, id, repo, d)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return metadata.DeleteManifestResult{}, fmt.Errorf("delete manifest %s@%s: %w", repo, d, metadata.ErrManifestNotFound)
	case err != nil:
		return metadata.DeleteManifestResult{}, fmt.Errorf("delete manifest %s@%s: %w", repo, d, err)
	}
	return res, nil
}

// deleteManifest is DeleteManifest inside tx, for the repository with id; no such
// manifest is sql.ErrNoRows.
func deleteManifest(ctx context.Context, tx *sql.Tx, id int64, repo string, d digest.Digest) (metadata.DeleteManifestResult, error) {
	var res metadata.DeleteManifestResult
	m, err := scanManifest(tx.QueryRowContext(ctx, `SELECT digest, media_type, artifact_type, size, subject, annotations, created_at
		FROM manifests WHERE repo_id = ? AND digest = ?`, id, d.String()))
	if err != nil {
		return res, err
	}
	m.Repository = repo
	res.Manifest = m
	rows, err := tx.QueryContext(ctx, "DELETE FROM tags WHERE repo_id = ? AND digest = ? RETURNING name", id, d.String())
	if err != nil {
		return res, err
	}
	if res.Tags, err = scanStrings(rows); err != nil {
		return res, err
	}
	slices.Sort(res.Tags)
	if _, err := tx.ExecContext(ctx, "DELETE FROM manifest_refs WHERE repo_id = ? AND manifest_digest = ?", id, d.String()); err != nil {
		return res, err
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM manifests WHERE repo_id = ? AND digest = ?", id, d.String())
	return res, err
}

// Referrers lists the manifests of repo whose subject is d, without payload, ordered by
// digest; an unknown repository has none.
func (s *Store) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]metadata.Manifest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.digest, m.media_type, m.artifact_type, m.size, m.subject, m.annotations, m.created_at
		FROM manifests m JOIN repositories r ON r.id = m.repo_id
		WHERE r.name = ? AND m.subject = ? AND (? = '' OR m.artifact_type = ?)
		ORDER BY m.digest`, repo, d.String(), artifactType, artifactType)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
	}
	defer rows.Close()
	out := []metadata.Manifest{}
	for rows.Next() {
		m, err := scanManifest(rows)
		if err != nil {
			return nil, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
		}
		m.Repository = repo
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
	}
	return out, nil
}

// scanManifest reads the payload-less columns digest, media_type, artifact_type, size,
// subject, annotations, created_at.
func scanManifest(row interface{ Scan(...any) error }) (metadata.Manifest, error) {
	var (
		m                    metadata.Manifest
		dg                   string
		subject, annotations sql.NullString
		created              int64
	)
	if err := row.Scan(&dg, &m.MediaType, &m.ArtifactType, &m.Size, &subject, &annotations, &created); err != nil {
		return metadata.Manifest{}, err
	}
	m.Digest = digest.Digest(dg)
	m.Subject = digest.Digest(subject.String)
	m.CreatedAt = fromNanos(created)
	var err error
	m.Annotations, err = decodeAnnotations(annotations)
	return m, err
}

func encodeAnnotations(a map[string]string) (sql.NullString, error) {
	if len(a) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("encode annotations: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func decodeAnnotations(s sql.NullString) (map[string]string, error) {
	if !s.Valid || s.String == "" {
		return nil, nil
	}
	var a map[string]string
	if err := json.Unmarshal([]byte(s.String), &a); err != nil {
		return nil, fmt.Errorf("decode annotations: %w", err)
	}
	return a, nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// payloadBytes keeps an empty payload from being stored as NULL, which the NOT NULL
// column would refuse.
func payloadBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
