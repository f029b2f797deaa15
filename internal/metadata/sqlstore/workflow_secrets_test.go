package sqlstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/secrets"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestWorkflowSecrets: set (new and replaced), list (names only), resolve per
// namespace, delete; values sealed for their row (an envelope copied into another row
// opens nothing); `admin secrets rotate` reseals them; a deleted namespace's secrets go
// with it.
func TestWorkflowSecrets(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		ring := testRing(t, "k1")
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		alice, err := s.CreateUser(ctx, accounts.User{Name: "alice", PasswordHash: "x"})
		must(err)
		_, err = s.CreateOrg(ctx, "acme", "alice")
		must(err)
		must(s.SetWorkflowSecret(ctx, ring, "acme", "DEPLOY_KEY", "first value", alice.ID))
		must(s.SetWorkflowSecret(ctx, ring, "acme", "DEPLOY_KEY", "s3cr3t-value", 7))
		must(s.SetWorkflowSecret(ctx, ring, "acme", "API_TOKEN", "tok-123456", alice.ID))
		must(s.SetWorkflowSecret(ctx, ring, "other", "DEPLOY_KEY", "other's", alice.ID))
		for _, bad := range [][2]string{{"1ABC", "v"}, {"A-B", "v"}, {"HUBCTL_TOKEN", "v"}, {"OK", ""}, {"OK", "a\x00b"},
			{"OK", strings.Repeat("x", wfengine.MaxSecretValue+1)}} {
			if err := s.SetWorkflowSecret(ctx, ring, "acme", bad[0], bad[1], 1); !errors.Is(err, wfengine.ErrInvalid) {
				t.Errorf("set %q: %v", bad[0], err)
			}
		}
		if err := s.SetWorkflowSecret(ctx, nil, "acme", "X", "value", 1); err == nil {
			t.Error("set without a keyring")
		}

		list, err := s.ListWorkflowSecrets(ctx, "acme")
		must(err)
		if len(list) != 2 || list[0].Name != "API_TOKEN" || list[1].Name != "DEPLOY_KEY" || list[1].CreatedBy != alice.ID ||
			list[1].UpdatedBy != 7 || list[1].UpdatedAt.Before(list[1].CreatedAt) || list[0].CreatedAt.IsZero() {
			t.Fatalf("list %+v", list)
		}
		got, err := s.ResolveWorkflowSecrets(ctx, ring, "acme", []string{"DEPLOY_KEY", "MISSING"})
		must(err)
		if len(got) != 1 || got["DEPLOY_KEY"] != "s3cr3t-value" {
			t.Fatalf("resolve %v", got)
		}

		// At rest: sealed, and bound to its row.
		var id, env string
		must(s.read(ctx, func(q querier) error {
			return q.QueryRow(ctx, `SELECT id, value FROM workflow_secrets WHERE namespace = 'acme' AND name = 'DEPLOY_KEY'`).Scan(&id, &env)
		}))
		if !strings.HasPrefix(env, "v1:k1:") || strings.Contains(env, "s3cr3t") {
			t.Fatalf("stored %q", env)
		}
		must(s.write(ctx, func(q querier) error {
			_, err := q.Exec(ctx, `UPDATE workflow_secrets SET value = $1 WHERE namespace = 'acme' AND name = 'API_TOKEN'`, env)
			return err
		}))
		if _, err := s.ResolveWorkflowSecrets(ctx, ring, "acme", []string{"API_TOKEN"}); !errors.Is(err, secrets.ErrOpen) {
			t.Fatalf("an envelope copied to another row: %v", err)
		}
		must(s.SetWorkflowSecret(ctx, ring, "acme", "API_TOKEN", "tok-123456", alice.ID))

		// Rotation reseals every secret (three rows) with the newest key.
		ring2 := testRing(t, "k2")
		both, _ := secrets.NewKeyring(mustKeys(t, ring, ring2)...)
		if n, err := s.ResealSecrets(ctx, both); err != nil || n != 3 {
			t.Fatalf("resealed %d: %v", n, err)
		}
		got, err = s.ResolveWorkflowSecrets(ctx, ring2, "acme", []string{"DEPLOY_KEY", "API_TOKEN"})
		if err != nil || got["DEPLOY_KEY"] != "s3cr3t-value" || got["API_TOKEN"] != "tok-123456" {
			t.Fatalf("after rotation, with the new key alone: %v %v", got, err)
		}

		must(s.DeleteWorkflowSecret(ctx, "acme", "API_TOKEN"))
		if err := s.DeleteWorkflowSecret(ctx, "acme", "API_TOKEN"); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("deleted twice: %v", err)
		}
		_, err = s.DeleteOrg(ctx, "acme", false)
		must(err)
		if list, err := s.ListWorkflowSecrets(ctx, "acme"); err != nil || len(list) != 0 {
			t.Fatalf("secrets of a deleted organisation: %+v %v", list, err)
		}
		if got, err := s.ResolveWorkflowSecrets(ctx, ring2, "other", []string{"DEPLOY_KEY"}); err != nil || got["DEPLOY_KEY"] != "other's" {
			t.Fatalf("another namespace's secret: %v %v", got, err)
		}
	})
}
