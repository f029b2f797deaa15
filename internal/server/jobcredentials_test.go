package server

import (
	"context"
	"errors"
	"testing"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
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
