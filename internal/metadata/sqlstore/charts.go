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
	"github.com/hubctl/hubctl/internal/events"
)

// This file holds the records of helm charts (migration 0011): one row per chart
// manifest, removed with the manifest by its foreign key; the namespaces' index
// generations and the claims of versions being pushed (migration 0016).

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
		if err := s.lockRepo(ctx, q, v.Repository); err != nil {
			return err
		}
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
		var known bool
		if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM chart_versions WHERE repo_id = $1 AND digest = $2)",
			id, v.Digest.String()).Scan(&known); err != nil {
			return err
		}
		_, err = q.Exec(ctx, `INSERT INTO chart_versions
			(repo_id, digest, namespace, name, version, tag, app_version, description, icon, keywords,
			 maintainers, dependencies, deprecated, metadata, chart_digest, chart_size, prov_digest, prov_size, created_at,
			 entry_format, entry_yaml, entry_json)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
			ON CONFLICT (repo_id, digest) DO UPDATE SET
				namespace = excluded.namespace, name = excluded.name, version = excluded.version, tag = excluded.tag,
				app_version = excluded.app_version, description = excluded.description, icon = excluded.icon,
				keywords = excluded.keywords, maintainers = excluded.maintainers, dependencies = excluded.dependencies,
				deprecated = excluded.deprecated, metadata = excluded.metadata, chart_digest = excluded.chart_digest,
				chart_size = excluded.chart_size, prov_digest = excluded.prov_digest, prov_size = excluded.prov_size,
				created_at = excluded.created_at, entry_format = excluded.entry_format, entry_yaml = excluded.entry_yaml,
				entry_json = excluded.entry_json`,
			id, v.Digest.String(), namespaceOf(v.Repository), v.Name, v.Version, v.Tag(), v.AppVersion, v.Description,
			v.Icon, keywords, maintainers, deps, v.Deprecated, string(v.Metadata), v.ChartDigest.String(), v.ChartSize,
			nullString(v.ProvDigest.String()), provSize, nanos(v.CreatedAt),
			v.EntryFormat, nullString(string(v.EntryYAML)), nullString(string(v.EntryJSON)))
		if err != nil {
			return err
		}
		// The record holds the version from now on (its tag points here).
		_, err = q.Exec(ctx, "DELETE FROM chart_claims WHERE repository = $1 AND tag = $2 AND chart_digest = $3",
			v.Repository, v.Tag(), v.ChartDigest.String())
		if err != nil || known {
			return err
		}
		return s.appendEvent(ctx, q, events.Event{Type: events.ChartPushed, RepositoryID: id, Repository: v.Repository,
			Digest: v.Digest.String(), Tag: v.Tag(), Chart: v.Name, Version: v.Version, Kind: events.KindChart,
			Size: v.ChartSize})
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

// chartKeyColumns are what Query.Keys asks for (an index reloaded after a change reads
// them for 10,000 versions: as few as will do); chartEntryColumns add what an index
// entry is rendered from (a cold index reads them for every version), chartColumns
// the rest.
const (
	chartKeyColumns   = `r.name, c.digest, c.name, c.version, c.created_at, r.visibility = 'public'`
	chartEntryColumns = chartKeyColumns + `, c.chart_digest, CAST(c.metadata AS TEXT), c.entry_format,
		COALESCE(c.entry_yaml, ''), COALESCE(c.entry_json, '')`
	chartColumns = chartEntryColumns + `, c.app_version, c.description, c.icon, c.deprecated,
		c.chart_size, COALESCE(c.prov_digest, ''), COALESCE(c.prov_size, 0),
		CAST(c.keywords AS TEXT), CAST(c.maintainers AS TEXT), CAST(c.dependencies AS TEXT)`
)

// Column sets of charts.
const (
	colsAll = iota
	colsKeys
	colsEntry
)

// Charts lists the chart versions q selects whose tags point at them.
func (s *Store) Charts(ctx context.Context, cq chartstore.Query) ([]chartstore.Version, error) {
	var out []chartstore.Version
	err := s.read(ctx, func(q querier) error {
		var err error
		cols := colsAll
		switch {
		case cq.Keys:
			cols = colsKeys
		case cq.Entries:
			cols = colsEntry
		}
		out, err = s.charts(ctx, q, cq, cols, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list charts: %w", err)
	}
	return out, nil
}

// charts runs the query cq describes on q for the columns cols (colsAll, …), ordered by
// repository, name and version when ordered (the index sorts by semver itself and
// spares the database the sort).
func (s *Store) charts(ctx context.Context, q querier, cq chartstore.Query, cols int, ordered bool) ([]chartstore.Version, error) {
	var b strings.Builder
	b.WriteString("SELECT " + [...]string{colsAll: chartColumns, colsKeys: chartKeyColumns, colsEntry: chartEntryColumns}[cols] + ` FROM chart_versions c
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
	if cq.Manifests != nil {
		ds := make([]string, len(cq.Manifests))
		for i, d := range cq.Manifests {
			ds[i] = d.String()
		}
		b.WriteString(" AND c.digest IN (SELECT value FROM " + s.d.list(arg(s.d.listArg(ds)), "text") + ")")
	}
	if cq.Term != "" {
		// LIKE with '\' escaping the term's own wildcards; lower() on both sides, as
		// SQLite's LIKE ignores ASCII case and PostgreSQL's does not.
		p := arg("%" + likeEscaper.Replace(strings.ToLower(cq.Term)) + "%")
		b.WriteString(" AND (lower(c.name) LIKE " + p + ` ESCAPE '\' OR lower(c.description) LIKE ` + p +
			` ESCAPE '\' OR lower(CAST(c.keywords AS TEXT)) LIKE ` + p + ` ESCAPE '\')`)
	}
	if ordered {
		b.WriteString(" ORDER BY r.name, c.name, c.version")
	}
	if cq.Limit > 0 {
		b.WriteString(" LIMIT " + arg(cq.Limit))
	}
	return collect(func(r row) (chartstore.Version, error) { return scanChart(r, cols) })(q.Query(ctx, b.String(), args...))
}

// ChartIndex reads a namespace's generation (kept by the triggers of migration 0016)
// and, when it is not the known one, the versions of its index in the same snapshot.
func (s *Store) ChartIndex(ctx context.Context, namespace string, known int64, keys bool) (chartstore.Index, error) {
	var ix chartstore.Index
	err := s.read(ctx, func(q querier) error {
		ix = chartstore.Index{}
		err := q.QueryRow(ctx, "SELECT generation FROM chart_generations WHERE namespace = $1", namespace).Scan(&ix.Generation)
		if err != nil && !isNoRows(err) {
			return err
		}
		if ix.Generation == known {
			return nil
		}
		cols := colsEntry
		if keys {
			cols = colsKeys
		}
		ix.Versions, err = s.charts(ctx, q, chartstore.Query{Namespace: namespace}, cols, false)
		if err == nil && ix.Versions == nil {
			ix.Versions = []chartstore.Version{}
		}
		return err
	})
	if err != nil {
		return chartstore.Index{}, fmt.Errorf("chart index of %s: %w", namespace, err)
	}
	return ix, nil
}

// ClaimChartVersion claims a chart version for a push, unless another chart archive
// holds it. On PostgreSQL the name lock orders two claims of one version; SQLite runs
// one writer at a time.
func (s *Store) ClaimChartVersion(ctx context.Context, c chartstore.Claim) (chartstore.Claimed, error) {
	var res chartstore.Claimed
	ttl := c.TTL
	if ttl <= 0 {
		ttl = chartstore.ClaimTTL
	}
	err := s.write(ctx, func(q querier) error {
		res = chartstore.Claimed{}
		if err := s.lockName(ctx, q, "chart "+c.Repository+":"+c.Tag); err != nil {
			return err
		}
		// The claim of a push in flight is read before the tag and its record: a push
		// stores its tag, then records it and drops its claim, each committed in that
		// order, and on PostgreSQL each statement here sees what is committed when it
		// starts. Read the other way round, a push that stored and recorded between our
		// reads of the tag (not yet moved) and of the claims (already dropped) would be
		// missed, and two first pushes of one version could both pass (seen under load in
		// TestConcurrentFirstPushes). In this order a dropped claim means its tag and
		// record are there to be read.
		var claimed string
		err := q.QueryRow(ctx, "SELECT chart_digest FROM chart_claims WHERE repository = $1 AND tag = $2 AND expires_at > "+s.d.now,
			c.Repository, c.Tag).Scan(&claimed)
		if err != nil && !isNoRows(err) {
			return err
		}
		var cur string
		err = q.QueryRow(ctx, `SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id
			WHERE r.name = $1 AND t.name = $2`, c.Repository, c.Tag).Scan(&cur)
		if err != nil && !isNoRows(err) {
			return err
		}
		res.Current = digest.Digest(cur)
		if res.Current == c.Manifest {
			// The same manifest again: nothing to claim.
			return nil
		}
		var held string
		if cur != "" {
			err := q.QueryRow(ctx, `SELECT c.chart_digest FROM chart_versions c JOIN repositories r ON r.id = c.repo_id
				WHERE r.name = $1 AND c.digest = $2`, c.Repository, cur).Scan(&held)
			if err != nil && !isNoRows(err) {
				return err
			}
		}
		if held == "" {
			// Stored but not yet recorded, or not yet stored: the claim of its push.
			held = claimed
		}
		res.Holder = digest.Digest(held)
		if held != "" && held != c.Chart.String() {
			return nil
		}
		if _, err := q.Exec(ctx, "DELETE FROM chart_claims WHERE expires_at <= "+s.d.now); err != nil {
			return err
		}
		_, err = q.Exec(ctx, `INSERT INTO chart_claims (repository, tag, chart_digest, expires_at) VALUES ($1, $2, $3, `+s.d.now+` + $4)
			ON CONFLICT (repository, tag) DO UPDATE SET chart_digest = excluded.chart_digest, expires_at = excluded.expires_at`,
			c.Repository, c.Tag, c.Chart.String(), int64(ttl))
		return err
	})
	if err != nil {
		return chartstore.Claimed{}, fmt.Errorf("claim chart %s:%s: %w", c.Repository, c.Tag, err)
	}
	return res, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

func scanChart(r row, cols int) (chartstore.Version, error) {
	var v chartstore.Version
	var d, chartDigest, provDigest string
	var created int64
	dest := []any{&v.Repository, &d, &v.Name, &v.Version, &created, &v.Public}
	var keywords, maintainers, deps, meta, entryYAML, entryJSON string
	if cols != colsKeys {
		dest = append(dest, &chartDigest, &meta, &v.EntryFormat, &entryYAML, &entryJSON)
	}
	if cols == colsAll {
		dest = append(dest, &v.AppVersion, &v.Description, &v.Icon, &v.Deprecated,
			&v.ChartSize, &provDigest, &v.ProvSize, &keywords, &maintainers, &deps)
	}
	if err := r.Scan(dest...); err != nil {
		return v, err
	}
	v.Digest, v.ChartDigest, v.ProvDigest = digest.Digest(d), digest.Digest(chartDigest), digest.Digest(provDigest)
	v.CreatedAt = fromNanos(created)
	if cols != colsKeys {
		v.Metadata = []byte(meta)
		if entryYAML != "" {
			v.EntryYAML = []byte(entryYAML)
		}
		if entryJSON != "" {
			v.EntryJSON = []byte(entryJSON)
		}
	}
	if cols != colsAll {
		return v, nil
	}
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
