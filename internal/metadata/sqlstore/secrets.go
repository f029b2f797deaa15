package sqlstore

import (
	"context"
	"fmt"

	"github.com/hubctl/hubctl/internal/secrets"
)

// sealedColumn is a column holding envelopes of internal/secrets, sealed with the
// associated data secrets.RowAD(table, id, column). Every table that stores a secret
// lists its columns here, so `hubctl admin secrets rotate` reseals all of them.
type sealedColumn struct {
	table, id, column string
}

// sealedColumns lists every column that holds sealed secrets.
var sealedColumns = []sealedColumn{}

// resealBatch is how many rows one transaction of ResealSecrets rewrites.
const resealBatch = 100

// ResealSecrets rewrites every stored secret not sealed by the keyring's newest key
// with that key, and returns how many it rewrote. Each row is replaced only if it
// still holds what was read, so a change made meanwhile wins over the rewrite.
func (s *Store) ResealSecrets(ctx context.Context, ring *secrets.Keyring) (int, error) {
	total := 0
	for _, c := range sealedColumns {
		after := ""
		for {
			type sealed struct{ id, env string }
			var page []sealed
			q := fmt.Sprintf(`SELECT %[2]s, %[3]s FROM %[1]s WHERE %[2]s > $1 AND %[3]s <> '' ORDER BY %[2]s LIMIT %[4]d`,
				c.table, c.id, c.column, resealBatch)
			err := s.read(ctx, func(qr querier) error {
				var err error
				page, err = collect(func(r row) (sealed, error) {
					var x sealed
					return x, r.Scan(&x.id, &x.env)
				})(qr.Query(ctx, q, after))
				return err
			})
			if err != nil {
				return total, fmt.Errorf("reseal %s.%s: %w", c.table, c.column, err)
			}
			if len(page) == 0 {
				break
			}
			after = page[len(page)-1].id
			n := 0
			err = s.write(ctx, func(qw querier) error {
				n = 0
				for _, x := range page {
					if !ring.NeedsRotation(x.env) {
						continue
					}
					fresh, err := ring.Reseal(x.env, secrets.RowAD(c.table, x.id, c.column))
					if err != nil {
						return fmt.Errorf("%s %s: %w", c.table, x.id, err)
					}
					k, err := qw.Exec(ctx, fmt.Sprintf(`UPDATE %[1]s SET %[3]s = $1 WHERE %[2]s = $2 AND %[3]s = $3`, c.table, c.id, c.column),
						fresh, x.id, x.env)
					if err != nil {
						return err
					}
					n += int(k)
				}
				return nil
			})
			if err != nil {
				return total, fmt.Errorf("reseal %s.%s: %w", c.table, c.column, err)
			}
			total += n
		}
	}
	return total, nil
}
