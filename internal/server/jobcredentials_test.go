package server

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/auth/tokenserver"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestWorkflowJobCredentials: the engine's hooks as serve builds them mint machine
// tokens with the hub's keys and open the namespace's secrets with its keyring; without
// auth there is no token hook, without keys a secret cannot be opened.
func TestWorkflowJobCredentials(t *testing.T) {
	ctx := context.Background()
	store, keys, alice := minterFixture(t)
	cfg := config.Config{Auth: config.Auth{Issuer: "hubctl", Service: "hubctl"}}
	if jobTokens(newMachineMinter(cfg, nil, store)) != nil {
		t.Fatal("a token hook without auth")
	}
	tokens := jobTokens(newMachineMinter(cfg, &authParts{keys: keys, policy: &authz.Policy{Store: store}}, store))
	tok, err := tokens(ctx, engine.TokenRequest{Creator: alice.ID, Subject: "workflow-run:1",
		Access: []scope.Access{{Type: scope.TypeRepository, Name: "alice/app", Actions: []string{scope.Pull, scope.Push}}}})
	if err != nil || tok.Token == "" || tok.ExpiresAt.IsZero() {
		t.Fatalf("token %v %v", tok.ExpiresAt, err)
	}
	c, err := (&token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hubctl"}).Verify(tok.Token)
	if err != nil || !c.Allows(scope.TypeRepository, "alice/app", scope.Push) {
		t.Fatalf("claims %+v %v", c, err)
	}

	k, _ := secrets.GenerateKey("k1")
	ring, _ := secrets.NewKeyring(k)
	if err := store.SetWorkflowSecret(ctx, ring, "alice", "KEY", "value-1", alice.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := jobSecrets(store, ring)(ctx, "alice", []string{"KEY"}); err != nil || got["KEY"] != "value-1" {
		t.Fatalf("secrets %v %v", got, err)
	}
	if _, err := jobSecrets(store, nil)(ctx, "alice", []string{"KEY"}); !errors.Is(err, errNoSecretsKeys) {
		t.Fatalf("without keys: %v", err)
	}
}

// TestJobTokenActive: the token service takes a job token as hubctl-job's password
// while its run has not ended; a cancelled run, a run that is gone and a subject that
// names no run revoke it (real store, a run made as the API makes manual ones).
func TestJobTokenActive(t *testing.T) {
	ctx := context.Background()
	store, _, alice := minterFixture(t)
	w, err := store.ApplyWorkflow(ctx, "alice", "ci", []byte("name: ci\non: manual\njobs:\n  a:\n    image: x\n    steps:\n      - run: \"true\"\n"), alice.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	pr, err := engine.PlanManual(w, "manual-1", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.CreateWorkflowRun(ctx, w.ID, pr)
	if err != nil {
		t.Fatal(err)
	}
	active := jobTokenActive(store)
	sub := tokenserver.JobSubjectPrefix + strconv.FormatInt(id, 10)
	if err := active(ctx, sub); err != nil {
		t.Fatalf("queued run: %v", err)
	}
	if err := store.CancelWorkflowRun(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := active(ctx, sub); !errors.Is(err, tokenserver.ErrJobRevoked) {
		t.Fatalf("cancelled run: %v", err)
	}
	for _, s := range []string{"workflow-run:999999", "workflow-run:x", "workflow-run:"} {
		if err := active(ctx, s); !errors.Is(err, tokenserver.ErrJobRevoked) {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
