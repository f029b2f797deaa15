package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/secrets"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// errNoKeyring: the hub holds no secrets keys (PostgreSQL without keys configured).
var errNoKeyring = errors.New("the hub has no secrets keys: set HUBCTL_SECRETS_KEY or secrets.keys_file")

func init() {
	sealedColumns = append(sealedColumns, sealedColumn{table: wfengine.SecretTable, id: "id", column: "value"})
}

// SetWorkflowSecret sets namespace's secret name to value, sealed with ring, for
// account by (a new one, or a new value of an existing one). It writes the audit entry
// ctx carries (accounts.WithAudit) in its transaction.
func (s *Store) SetWorkflowSecret(ctx context.Context, ring *secrets.Keyring, namespace, name, value string, by int64) error {
	if ring == nil {
		return fmt.Errorf("set secret %s/%s: %w", namespace, name, errNoKeyring)
	}
	if err := wfengine.CheckSecret(name, value); err != nil {
		return err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	fresh := hex.EncodeToString(b)
	return s.write(ctx, func(q querier) error {
		// The row exists first, so the value is sealed for its id, whoever made it.
		if _, err := q.Exec(ctx, `INSERT INTO workflow_secrets (id, namespace, name, value, created_by, created_at, updated_by, updated_at)
			VALUES ($1, $2, $3, '', $4, `+s.d.now+`, $4, `+s.d.now+`) ON CONFLICT (namespace, name) DO NOTHING`,
			fresh, namespace, name, by); err != nil {
			return err
		}
		var id string
		if err := q.QueryRow(ctx, `SELECT id FROM workflow_secrets WHERE namespace = $1 AND name = $2`+s.d.forUpdate,
			namespace, name).Scan(&id); err != nil {
			return err
		}
		env, err := ring.Seal([]byte(value), secrets.RowAD(wfengine.SecretTable, id, "value"))
		if err != nil {
			return fmt.Errorf("set secret %s/%s: %w", namespace, name, err)
		}
		if _, err = q.Exec(ctx, `UPDATE workflow_secrets SET value = $2, updated_by = $3, updated_at = `+s.d.now+` WHERE id = $1`,
			id, env, by); err != nil {
			return err
		}
		return s.recordChange(ctx, q, events.Event{})
	})
}

// ListWorkflowSecrets lists namespace's secrets by name: names and dates, never values.
func (s *Store) ListWorkflowSecrets(ctx context.Context, namespace string) ([]wfengine.SecretInfo, error) {
	var out []wfengine.SecretInfo
	err := s.read(ctx, func(q querier) error {
		var err error
		out, err = collect(func(r row) (wfengine.SecretInfo, error) {
			var x wfengine.SecretInfo
			var created, updated int64
			err := r.Scan(&x.Namespace, &x.Name, &x.CreatedBy, &created, &x.UpdatedBy, &updated)
			x.CreatedAt, x.UpdatedAt = fromNanos(created), fromNanos(updated)
			return x, err
		})(q.Query(ctx, `SELECT namespace, name, created_by, created_at, updated_by, updated_at FROM workflow_secrets
			WHERE namespace = $1 ORDER BY name`, namespace))
		return err
	})
	return out, err
}

// DeleteWorkflowSecret deletes namespace's secret name (engine.ErrNotFound when there
// is none), writing the audit entry ctx carries in its transaction.
func (s *Store) DeleteWorkflowSecret(ctx context.Context, namespace, name string) error {
	return s.write(ctx, func(q querier) error {
		n, err := q.Exec(ctx, `DELETE FROM workflow_secrets WHERE namespace = $1 AND name = $2`, namespace, name)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("secret %s/%s: %w", namespace, name, wfengine.ErrNotFound)
		}
		return s.recordChange(ctx, q, events.Event{})
	})
}

// ResolveWorkflowSecrets opens namespace's secrets of names with ring: the values of
// those set, by name (a name not set is absent; the engine says which). It is the
// engine's Options.Secrets on a hub.
func (s *Store) ResolveWorkflowSecrets(ctx context.Context, ring *secrets.Keyring, namespace string, names []string) (map[string]string, error) {
	if len(names) == 0 {
		return map[string]string{}, nil
	}
	type sealed struct{ id, name, env string }
	var rows []sealed
	err := s.read(ctx, func(q querier) error {
		var err error
		rows, err = collect(func(r row) (sealed, error) {
			var x sealed
			return x, r.Scan(&x.id, &x.name, &x.env)
		})(q.Query(ctx, `SELECT id, name, value FROM workflow_secrets WHERE namespace = $1 ORDER BY name`, namespace))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, x := range rows {
		if !slices.Contains(names, x.name) || x.env == "" {
			continue
		}
		if ring == nil {
			return nil, fmt.Errorf("secret %s/%s: %w", namespace, x.name, errNoKeyring)
		}
		v, err := ring.Open(x.env, secrets.RowAD(wfengine.SecretTable, x.id, "value"))
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", namespace, x.name, err)
		}
		out[x.name] = string(v)
	}
	return out, nil
}
