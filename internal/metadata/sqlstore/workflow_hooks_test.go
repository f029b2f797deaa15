package sqlstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

const hookWorkflow = `name: hooked
on:
  webhook:
jobs:
  a:
    image: alpine
    steps:
      - run: "true"
`

// TestWorkflowHookSecrets: a workflow's webhook secret is made once (shown then
// only), sealed for its row, replaced by a rotation, resealed by `admin secrets
// rotate`, and gone with the workflow.
func TestWorkflowHookSecrets(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		ring := testRing(t, "k1")
		w, err := s.ApplyWorkflow(ctx, "acme", "hooked", []byte(hookWorkflow), 1, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WorkflowHookSecret(ctx, ring, w.ID); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("before any: %v", err)
		}
		first, err := s.EnsureWorkflowHookSecret(ctx, ring, w.ID, false)
		if err != nil || !strings.HasPrefix(first, webhook.SecretPrefix) {
			t.Fatalf("made %q, %v", first, err)
		}
		if _, err := webhook.SecretKey(first); err != nil {
			t.Fatal(err)
		}
		if again, err := s.EnsureWorkflowHookSecret(ctx, ring, w.ID, false); err != nil || again != "" {
			t.Fatalf("made again: %q %v", again, err)
		}
		if got, err := s.WorkflowHookSecret(ctx, ring, w.ID); err != nil || got != first {
			t.Fatalf("open: %q %v", got, err)
		}
		var env string
		if err := s.read(ctx, func(q querier) error {
			return q.QueryRow(ctx, `SELECT secret FROM workflow_hooks WHERE workflow_id = $1`, w.ID).Scan(&env)
		}); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(env, "v1:k1:") || strings.Contains(env, first[len(webhook.SecretPrefix):]) {
			t.Fatalf("stored %q", env)
		}
		rotated, err := s.EnsureWorkflowHookSecret(ctx, ring, w.ID, true)
		if err != nil || rotated == "" || rotated == first {
			t.Fatalf("rotated %q %v", rotated, err)
		}
		if _, err := s.EnsureWorkflowHookSecret(ctx, nil, w.ID, true); err == nil {
			t.Fatal("made without a keyring")
		}
		if _, err := s.EnsureWorkflowHookSecret(ctx, ring, w.ID+100, false); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("an unknown workflow: %v", err)
		}

		ring2 := testRing(t, "k2")
		both, _ := secrets.NewKeyring(mustKeys(t, ring, ring2)...)
		if n, err := s.ResealSecrets(ctx, both); err != nil || n != 1 {
			t.Fatalf("resealed %d: %v", n, err)
		}
		if got, err := s.WorkflowHookSecret(ctx, ring2, w.ID); err != nil || got != rotated {
			t.Fatalf("after rotation, with the new key alone: %q %v", got, err)
		}
		if err := s.DeleteWorkflow(ctx, "acme", "hooked", "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WorkflowHookSecret(ctx, ring2, w.ID); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}
