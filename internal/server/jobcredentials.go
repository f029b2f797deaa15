package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/tokenserver"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// jobTokens is the workflow engine's Options.Tokens on a hub with token auth: the
// hub's one minter of machine tokens (newMachineMinter); nil without auth, when jobs
// need no token and get none.
func jobTokens(m *machinetoken.Minter) func(ctx context.Context, r engine.TokenRequest) (engine.JobToken, error) {
	if m == nil {
		return nil
	}
	return func(ctx context.Context, r engine.TokenRequest) (engine.JobToken, error) {
		t, err := m.Mint(ctx, machinetoken.Request{Creator: r.Creator, Subject: r.Subject, Access: r.Access, Deploys: r.Deploys, Purpose: r.Purpose, TTL: r.TTL})
		if err != nil {
			return engine.JobToken{}, err
		}
		return engine.JobToken{Token: t.Raw, ExpiresAt: t.ExpiresAt}, nil
	}
}

// secretResolver is what jobSecrets needs of the store.
type secretResolver interface {
	ResolveWorkflowSecrets(ctx context.Context, ring *secrets.Keyring, namespace string, names []string) (map[string]string, error)
}

// errNoSecretsKeys fails a job that names a secret on a hub without secrets keys.
var errNoSecretsKeys = errors.New("this hub has no secrets keys (HUBCTL_SECRETS_KEY or secrets.keys_file), so no secret can be opened")

// jobSecrets is the workflow engine's Options.Secrets: the namespace's sealed secrets
// opened with the hub's keyring. Without a keyring a job naming a secret fails, saying
// which settings to make; one naming none runs.
func jobSecrets(store secretResolver, ring *secrets.Keyring) func(ctx context.Context, namespace string, names []string) (map[string]string, error) {
	return func(ctx context.Context, namespace string, names []string) (map[string]string, error) {
		if ring == nil {
			return nil, errNoSecretsKeys
		}
		return store.ResolveWorkflowSecrets(ctx, ring, namespace, names)
	}
}

// jobCredentials are what the workflow engine hands a job run: its $HUBCTL_TOKEN
// (and the registry auth its images are pulled with) and its secrets.
type jobCredentials struct {
	tokens  func(ctx context.Context, r engine.TokenRequest) (engine.JobToken, error)
	secrets func(ctx context.Context, namespace string, names []string) (map[string]string, error)
}

// runGetter is what jobTokenActive needs of the store.
type runGetter interface {
	GetWorkflowRun(ctx context.Context, id int64) (engine.Run, error)
}

// jobTokenActive is the token service's JobActive: a job token is taken as the
// password of hubctl-job (a Kubernetes imagePullSecret) only while the run it was
// minted for has not ended; a run that ended or is gone revokes it.
func jobTokenActive(runs runGetter) func(ctx context.Context, subject string) error {
	return func(ctx context.Context, subject string) error {
		id, err := strconv.ParseInt(strings.TrimPrefix(subject, tokenserver.JobSubjectPrefix), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: subject %q names no run", tokenserver.ErrJobRevoked, subject)
		}
		r, err := runs.GetWorkflowRun(ctx, id)
		if errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("%w: run %d is gone", tokenserver.ErrJobRevoked, id)
		}
		if err != nil {
			return err
		}
		if engine.Terminal(r.State) {
			return fmt.Errorf("%w: run %d has ended (%s)", tokenserver.ErrJobRevoked, id, r.State)
		}
		return nil
	}
}
