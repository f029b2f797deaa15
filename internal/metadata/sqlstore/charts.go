package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/charts/chartstore"
)

// This file holds the records of helm charts (migration 0011): one row per chart
// manifest, removed with the manifest by its foreign key.

var _ chartstore.Store = (*Store)(nil)

// RecordChart records the chart version of manifest v.Digest, replacing an earlier
// record of the same manifest.
func (s *Store) RecordChart(ctx context.Context, v chartstore.Version) error {
	keywords, err := jsonList(v.Keywords)
	if err != nil {
		return err
	}
	maintainers, err := jsonList(v.Maintainers)
	if err != nil {
		return err
	}
	deps, err := jsonList(v.Dependencies)
	if err != nil {
		return err
	}
	var provSize *int64
	if v.ProvDigest != "" {
		provSize = &v.ProvSize
	}
	err = s.write(ctx, func(q querier) error {
		id, err := repoID(ctx, q, v.Repository)
		if isNoRows(err) {
			return chartstore.ErrManifestNotFound
		} else if err != nil {
			return err
		}
		// The manifest row is locked (KEY SHARE, by the foreign key check on
		// PostgreSQL) until commit, so a concurrent delete waits or wins before.
		var one int
		switch err := q.QueryRow(ctx, "SELECT 1 FROM manifests WHERE repo_id = $1 AND digest = $2"+s.d.forKeyShare,
			id, v.Digest.String()).Scan(&one); {
		case isNoRows(err):
			return chartstore.ErrManifestNotFound
		case err != nil:
			return err
		}
		_, err = q.Exec(ctx, `INSERT INTO chart_versions
			(repo_id, digest, namespace, name, version, tag, app_version, description, icon, keywords,
			 maintainers, dependencies, deprecated, metadata, chart_digest, chart_size, prov_digest, prov_size, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
			ON CONFLICT (repo_id, digest) DO UPDATE SET
				namespace = excluded.namespace, name = excluded.name, version = excluded.version, tag = excluded.tag,
				app_version = excluded.app_version, description = excluded.description, icon = excluded.icon,
				keywords = excluded.keywords, maintainers = excluded.maintainers, dependencies = excluded.dependencies,
				deprecated = excluded.deprecated, metadata = excluded.metadata, chart_digest = excluded.chart_digest,
				chart_size = excluded.chart_size, prov_digest = excluded.prov_digest, prov_size = excluded.prov_size`,
			id, v.Digest.String(), namespaceOf(v.Repository), v.Name, v.Version, v.Tag(), v.AppVersion, v.Description,
			v.Icon, keywords, maintainers, deps, v.Deprecated, string(v.Metadata), v.ChartDigest.String(), v.ChartSize,
			nullString(v.ProvDigest.String()), provSize, nanos(v.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("record chart %s@%s: %w", v.Repository, v.Digest, err)
	}
	return nil
}

// jsonList encodes a slice as a JSON array, [] for nil.
func jsonList[T any](v []T) (string, error) {
	if v == nil {
		v = []T{}
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// chartKeyColumns are what Query.Keys asks for (the index's every request reads them
// for 10,000 versions: as few as will do); chartColumns add the rest.
const (
	chartKeyColumns = `r.name, c.digest, c.name, c.version, c.created_at, r.visibility = 'public'`
	chartColumns    = chartKeyColumns + `, c.app_version, c.description, c.icon, c.deprecated,
		c.chart_digest, c.chart_size, COALESCE(c.prov_digest, ''), COALESCE(c.prov_size, 0),
		CAST(c.keywords AS TEXT), CAST(c.maintainers AS TEXT), CAST(c.dependencies AS TEXT), CAST(c.metadata AS TEXT)`
)

// Charts lists the chart versions q selects whose tags point at them.
func (s *Store) Charts(ctx context.Context, cq chartstore.Query) ([]chartstore.Version, error) {
	var b strings.Builder
	cols := chartColumns
	if cq.Keys {
		cols = chartKeyColumns
	}
	b.WriteString("SELECT " + cols + ` FROM chart_versions c
		JOIN repositories r ON r.id = c.repo_id
		JOIN tags t ON t.repo_id = c.repo_id AND t.name = c.tag AND t.digest = c.digest
		WHERE true`)
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if cq.Namespace != "" {
		ns := arg(cq.Namespace)
		b.WriteString(" AND c.namespace = " + ns + " AND r.name = " + ns + " || '/' || c.name")
	}
	if cq.Name != "" {
		b.WriteString(" AND c.name = " + arg(cq.Name))
	}
	if cq.Version != "" {
		b.WriteString(" AND c.version = " + arg(cq.Version))
	}
	if cq.Term != "" {
		// LIKE with '\' escaping the term's own wildcards; lower() on both sides, as
		// SQLite's LIKE ignores ASCII case and PostgreSQL's does not.
		p := arg("%" + likeEscaper.Replace(strings.ToLower(cq.Term)) + "%")
		b.WriteString(" AND (lower(c.name) LIKE " + p + ` ESCAPE '\' OR lower(c.description) LIKE ` + p +
			` ESCAPE '\' OR lower(CAST(c.keywords AS TEXT)) LIKE ` + p + ` ESCAPE '\')`)
	}
	b.WriteString(" ORDER BY r.name, c.name, c.version")
	if cq.Limit > 0 {
		b.WriteString(" LIMIT " + arg(cq.Limit))
	}
	var out []chartstore.Version
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (chartstore.Version, error) { return scanChart(r, cq.Keys) })(q.Query(ctx, b.String(), args...))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list charts: %w", err)
	}
	return out, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

func scanChart(r row, keys bool) (chartstore.Version, error) {
	var v chartstore.Version
	var d, chartDigest, provDigest string
	var created int64
	dest := []any{&v.Repository, &d, &v.Name, &v.Version, &created, &v.Public}
	var keywords, maintainers, deps, meta string
	if !keys {
		dest = append(dest, &v.AppVersion, &v.Description, &v.Icon, &v.Deprecated,
			&chartDigest, &v.ChartSize, &provDigest, &v.ProvSize, &keywords, &maintainers, &deps, &meta)
	}
	if err := r.Scan(dest...); err != nil {
		return v, err
	}
	v.Digest, v.ChartDigest, v.ProvDigest = digest.Digest(d), digest.Digest(chartDigest), digest.Digest(provDigest)
	v.CreatedAt = fromNanos(created)
	if keys {
		return v, nil
	}
	v.Metadata = []byte(meta)
	for _, f := range []struct {
		raw string
		dst any
	}{{keywords, &v.Keywords}, {maintainers, &v.Maintainers}, {deps, &v.Dependencies}} {
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			return v, fmt.Errorf("chart %s@%s: %w", v.Repository, v.Digest, err)
		}
	}
	return v, nil
}

// UnrecordedCharts lists chart manifests without a record.
func (s *Store) UnrecordedCharts(ctx context.Context, configMediaType string, limit int) ([]chartstore.Unrecorded, error) {
	var out []chartstore.Unrecorded
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (chartstore.Unrecorded, error) {
			var u chartstore.Unrecorded
			var d string
			var created int64
			err := r.Scan(&u.Repository, &d, &u.Payload, &created)
			u.Digest, u.CreatedAt = digest.Digest(d), fromNanos(created)
			return u, err
		})(q.Query(ctx, `SELECT r.name, m.digest, m.payload, m.created_at FROM manifests m
			JOIN repositories r ON r.id = m.repo_id
			WHERE m.artifact_type = $1
			AND NOT EXISTS (SELECT 1 FROM chart_versions c WHERE c.repo_id = m.repo_id AND c.digest = m.digest)
			ORDER BY m.repo_id, m.digest LIMIT $2`, configMediaType, s.d.limit(limit)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("unrecorded charts: %w", err)
	}
	return out, nil
}

// ChartSettings returns a namespace's chart settings.
func (s *Store) ChartSettings(ctx context.Context, namespace string) (chartstore.Settings, error) {
	var st chartstore.Settings
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT allow_overwrite FROM chart_settings WHERE namespace = $1", namespace).Scan(&st.AllowOverwrite)
	})
	if err != nil && !isNoRows(err) {
		return st, fmt.Errorf("chart settings of %s: %w", namespace, err)
	}
	return st, nil
}

// SetChartSettings stores a namespace's chart settings.
func (s *Store) SetChartSettings(ctx context.Context, namespace string, st chartstore.Settings) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO chart_settings (namespace, allow_overwrite, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (namespace) DO UPDATE SET allow_overwrite = excluded.allow_overwrite, updated_at = excluded.updated_at`,
			namespace, st.AllowOverwrite, nanos(time.Time{}))
		return err
	})
	if err != nil {
		return fmt.Errorf("set chart settings of %s: %w", namespace, err)
	}
	return nil
}
