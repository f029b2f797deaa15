package engine_test

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

const secretValue = "s3cr3t-Value_42"

const secretsFlow = `name: secrets
on:
  push:
    repositories: [team/app]
permissions:
  pull: [team/base]
  push: [team/app, "team/*"]
  deploy: [web]
jobs:
  a:
    image: alpine
    outputs: [leak]
    steps:
      - secrets: [DEPLOY_KEY]
        run: |
          echo "plain $DEPLOY_KEY"
          printf 'split %s' "$(printf %s "$DEPLOY_KEY" | cut -c1-6)"
          sleep 0.3
          printf '%s end\n' "$(printf %s "$DEPLOY_KEY" | cut -c7-)"
          printf 'b64 %s\n' "$(printf %s "$DEPLOY_KEY" | base64)"
          echo "token $HUBCTL_TOKEN"
          echo "leak=$DEPLOY_KEY" >> "$HUBCTL_OUTPUT"
`

// credentialParts are a hub's parts behind the engine's Secrets and Tokens hooks: the
// store's sealed secrets and the machine-token minter, as serve wires them.
type credentialParts struct {
	ring   *secrets.Keyring
	minter *machinetoken.Minter
	keys   *token.KeySet
	mu     sync.Mutex
	tokens []string
	auths  []executor.RegistryAuth
}

// recording is the local executor (with its file moving), remembering the registry
// auth each job got.
type recording struct {
	*local.Executor
	p *credentialParts
}

func (r recording) SetupWorkflow(ctx context.Context, job *executor.JobSpec) error {
	if job.Registry != nil {
		r.p.mu.Lock()
		r.p.auths = append(r.p.auths, *job.Registry)
		r.p.mu.Unlock()
	}
	return r.Executor.SetupWorkflow(ctx, job)
}

func newCredentialParts(t *testing.T, s *sqlstore.Store) *credentialParts {
	t.Helper()
	k, err := secrets.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &credentialParts{ring: ring, keys: keys,
		minter: &machinetoken.Minter{Keys: keys, Issuer: "hubctl", Service: "hub", Store: s, Policy: &authz.Policy{Store: s}}}
}

func (p *credentialParts) start(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: s, Executor: recording{x, p}, MayPull: mayPull, Interval: 50 * time.Millisecond,
		Artifacts: engine.ArtifactOptions{Store: s, Blobs: blobs, TempDir: t.TempDir()},
		Lease:     3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second, Registry: "http://hub.test:5000",
		Secrets: func(ctx context.Context, ns string, names []string) (map[string]string, error) {
			return s.ResolveWorkflowSecrets(ctx, p.ring, ns, names)
		},
		Tokens: func(ctx context.Context, r engine.TokenRequest) (engine.JobToken, error) {
			tok, err := p.minter.Mint(ctx, machinetoken.Request{Creator: r.Creator, Subject: r.Subject, Access: r.Access, Deploys: r.Deploys, Purpose: r.Purpose})
			if err != nil {
				return engine.JobToken{}, err
			}
			p.mu.Lock()
			p.tokens = append(p.tokens, tok.Raw)
			p.mu.Unlock()
			return engine.JobToken{Token: tok.Raw, ExpiresAt: tok.ExpiresAt}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// owner creates the account "team" (owner of the team namespace) as account 1, the
// applier the tests' MayPull allows.
func owner(t *testing.T, s *sqlstore.Store) accounts.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), accounts.User{Name: "team", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != 1 {
		t.Fatalf("the first account is %d, not 1", u.ID)
	}
	return u
}

// TestWorkflowSecretsAndToken: a step gets the secret it names and $HUBCTL_TOKEN, a
// machine token for the applier (pull on the pushed repository, the permissions by
// name, the pattern team/* as a pattern grant, deploying team/web), verified by the registry's verifier and audited; the log
// and outputs hold neither, in any form, even a value printed in two pieces.
func TestWorkflowSecretsAndToken(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		owner(t, s)
		p := newCredentialParts(t, s)
		if err := s.SetWorkflowSecret(t.Context(), p.ring, "team", "DEPLOY_KEY", secretValue, 1); err != nil {
			t.Fatal(err)
		}
		w := trigger(t, s, "secrets", secretsFlow)
		p.start(t, s)
		r := waitRun(t, s, w, "finished", finished)
		if r.State != engine.StateSucceeded {
			t.Fatalf("run %s: %+v", r.State, r.Jobs)
		}
		j := r.Jobs[0]
		if j.Outputs["leak"] != "***" {
			t.Fatalf("outputs %v", j.Outputs)
		}
		chunks, err := s.ReadWorkflowLogs(t.Context(), j.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		for _, c := range chunks {
			log.Write(c.Data)
			// The value was printed in two pieces 0.3 s apart: the chunk stored
			// before the second never ends with the first.
			for k := engine.MinMasked; k < len(secretValue); k++ {
				if strings.HasSuffix(string(c.Data), secretValue[:k]) {
					t.Errorf("chunk %d ends with the secret's first %d bytes: %q", c.Seq, k, c.Data)
				}
			}
		}
		if len(chunks) < 2 {
			t.Errorf("the log came in %d chunk(s): the split case was not exercised", len(chunks))
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.tokens) != 1 {
			t.Fatalf("%d tokens minted", len(p.tokens))
		}
		tok := p.tokens[0]
		if len(p.auths) != 1 || p.auths[0] != (executor.RegistryAuth{Registry: "hub.test:5000", Token: tok}) {
			t.Errorf("registry auth given to the executor: %d, want the hub's host and the job token", len(p.auths))
		}
		got := log.String()
		for _, want := range []string{"plain ***\n", "split *** end\n", "b64 ***\n", "token ***\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("log lacks %q:\n%s", want, got)
			}
		}
		for _, leak := range []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue)), secretValue[6:], tok} {
			if strings.Contains(got, leak) {
				t.Errorf("log holds %q:\n%s", leak, got)
			}
		}
		if steps := j.Steps; len(steps) != 1 || steps[0].LogBytes <= int64(len(got)) {
			t.Errorf("the step's offset %d counts the step's output, not the %d bytes stored", steps[0].LogBytes, len(got))
		}

		c, err := (&token.Verifier{Keys: p.keys, Issuer: "hubctl", Audience: "hub"}).Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "workflow-run:"+itoa(r.ID) || !c.Allows(scope.TypeRepository, "team/app", scope.Push) ||
			!c.Allows(scope.TypeRepository, "team/base", scope.Pull) || c.Allows(scope.TypeRepository, "team/base", scope.Push) ||
			c.Allows(scope.TypeRepository, "team/other", scope.Pull) || c.Hub != (token.Hub{Creator: 1, Deploy: "team/web"}) {
			t.Fatalf("claims %+v", c)
		}
		audit, err := s.ListAudit(t.Context(), accounts.AuditFilter{Action: machinetoken.AuditAction})
		if err != nil || len(audit) != 1 || audit[0].Actor != c.Subject || !strings.Contains(audit[0].Detail, c.ID) ||
			!strings.Contains(audit[0].Detail, "team") || strings.Contains(audit[0].Detail+audit[0].Target, tok) {
			t.Fatalf("audit %+v %v", audit, err)
		}
	})
}

// TestWorkflowCredentialsRefused: a job naming a secret the namespace lacks fails
// with the name, and so does a job whose applier is disabled (no token), before any
// step runs.
func TestWorkflowCredentialsRefused(t *testing.T) {
	s := backends[0].open(t)()
	u := owner(t, s)
	p := newCredentialParts(t, s)
	w := trigger(t, s, "secrets", secretsFlow)
	p.start(t, s)
	r := waitRun(t, s, w, "finished", finished)
	if j := r.Jobs[0]; r.State != engine.StateFailed || !strings.Contains(j.Error, "DEPLOY_KEY") || j.Steps[0].Starts != 0 {
		t.Fatalf("missing secret: run %s, job %+v", r.State, j)
	}

	if err := s.SetWorkflowSecret(t.Context(), p.ring, "team", "DEPLOY_KEY", secretValue, 1); err != nil {
		t.Fatal(err)
	}
	u.Disabled = true
	if err := s.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := s.RerunWorkflowRun(t.Context(), r.ID, false); err != nil {
		t.Fatal(err)
	}
	r = waitRun(t, s, w, "failed again", func(r engine.Run) bool { return finished(r) && r.Attempt == 2 })
	if j := r.Jobs[0]; r.State != engine.StateFailed || !strings.Contains(j.Error, "HUBCTL_TOKEN") ||
		!strings.Contains(j.Error, "disabled") || j.Steps[0].Starts != 0 {
		t.Fatalf("disabled applier: run %s, job %+v", r.State, j)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// filesFlow has no permissions: its jobs ask for no registry access, but they move
// files through the hub (an artifact, the artifacts of a needed job).
const filesFlow = `name: files
on:
  manual: {}
jobs:
  build:
    image: alpine
    artifacts:
      - name: out
        path: out
    steps:
      - run: mkdir -p out && echo hi > out/f
  plain:
    image: alpine
    steps:
      - run: "true"
`

// TestWorkflowFilesToken: a job that moves files through the hub gets a job token even
// when its workflow asks for no registry access (on Kubernetes, hubctl workflow-agent
// moves them with it); the token grants nothing of the registry and gives no registry
// auth to the executor, and a job that moves nothing still gets none.
func TestWorkflowFilesToken(t *testing.T) {
	s := backends[0].open(t)()
	owner(t, s)
	p := newCredentialParts(t, s)
	w, err := s.ApplyWorkflow(t.Context(), "team", "files", []byte(filesFlow), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	p.start(t, s)
	manualRun(t, s, w)
	r := waitRun(t, s, w, "finished", finished)
	if r.State != engine.StateSucceeded {
		t.Fatalf("run %s: %+v", r.State, r.Jobs)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tokens) != 1 {
		t.Fatalf("%d tokens minted, want one (the job with an artifact)", len(p.tokens))
	}
	if len(p.auths) != 0 {
		t.Fatalf("registry auth given for a token without registry access: %+v", p.auths)
	}
	c, err := (&token.Verifier{Keys: p.keys, Issuer: "hubctl", Audience: "hub"}).Verify(p.tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Access) != 0 || c.Hub.Creator != 1 || c.Subject != "workflow-run:"+itoa(r.ID) {
		t.Fatalf("claims %+v", c)
	}
}
