package engine_test

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

// renewFlow's step outlives its token: it reads $HUBCTL_TOKEN_FILE every 0.2 s for
// 3 s, printing a checksum of what it holds, then prints the file itself.
const renewFlow = `name: renew
on:
  push:
    repositories: [team/app]
permissions:
  push: ["team/*"]
jobs:
  a:
    image: alpine
    steps:
      - run: |
          i=0
          while [ $i -lt 15 ]; do
            echo "sum $(cksum < "$HUBCTL_TOKEN_FILE" | cut -d' ' -f1)"
            sleep 0.2
            i=$((i+1))
          done
          echo "file $(cat "$HUBCTL_TOKEN_FILE")"
          echo "env $HUBCTL_TOKEN"
`

// startRenewing runs an engine whose job tokens live ttl and are renewed every renew,
// minted by p's minter; minted counts the tokens.
func startRenewing(t *testing.T, s *sqlstore.Store, p *credentialParts, ttl, renew time.Duration, minted *atomic.Int64) {
	t.Helper()
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, Interval: 50 * time.Millisecond,
		Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second, TokenTTL: ttl, TokenRenew: renew,
		Tokens: func(ctx context.Context, r engine.TokenRequest) (engine.JobToken, error) {
			tok, err := p.minter.Mint(ctx, machinetoken.Request{Creator: r.Creator, Subject: r.Subject, Access: r.Access,
				Purpose: r.Purpose, TTL: r.TTL})
			if err != nil {
				return engine.JobToken{}, err
			}
			p.mu.Lock()
			p.tokens = append(p.tokens, tok.Raw)
			p.mu.Unlock()
			minted.Add(1)
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

var sumRe = regexp.MustCompile(`(?m)^sum (\d+)$`)

// TestWorkflowTokenRenewal: a step longer than its token's lifetime reads a fresh
// token from $HUBCTL_TOKEN_FILE: the engine mints it again (with the pattern grant of
// permissions) before the last one expires and rewrites the file; each token is valid
// when written, and every one of them is masked in the log, the renewed ones too.
func TestWorkflowTokenRenewal(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		owner(t, s)
		p := newCredentialParts(t, s)
		var minted atomic.Int64
		w := trigger(t, s, "renew", renewFlow)
		startRenewing(t, s, p, 2*time.Second, 500*time.Millisecond, &minted)
		r := waitRun(t, s, w, "finished", finished)
		if r.State != engine.StateSucceeded {
			t.Fatalf("run %s: %+v", r.State, r.Jobs)
		}
		log := jobLog(t, s, r.Jobs[0].ID)
		sums := map[string]bool{}
		for _, m := range sumRe.FindAllStringSubmatch(log, -1) {
			sums[m[1]] = true
		}
		p.mu.Lock()
		tokens := append([]string(nil), p.tokens...)
		p.mu.Unlock()
		if len(tokens) < 4 || len(sums) < 3 {
			t.Fatalf("%d tokens minted, the step saw %d different ones in 3 s (renewal every 0.5 s):\n%s", len(tokens), len(sums), log)
		}
		for _, want := range []string{"file ***\n", "env ***\n"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		ver := &token.Verifier{Keys: p.keys, Issuer: "hubctl", Audience: "hub", Leeway: -1}
		for i, tok := range tokens {
			if strings.Contains(log, tok) || strings.Contains(log, tok[len(tok)-20:]) {
				t.Errorf("token %d is in the log", i)
			}
			c, err := ver.Verify(tok)
			if err != nil && i == len(tokens)-1 {
				t.Errorf("the last token is not valid at the run's end: %v", err)
			}
			if err == nil && !hasPattern(c, "team/*") {
				t.Errorf("token %d lacks the pattern grant team/*: %+v", i, c.Access)
			}
		}
	})
}

func hasPattern(c *token.Claims, name string) bool {
	for _, a := range c.Access {
		if a.Type == scope.TypeRepository && a.Name == name && len(a.Actions) == 2 {
			return true
		}
	}
	return false
}

// TestWorkflowTokenRenewalStops: an applier disabled while the job runs gets no new
// token: the renewal asks the minter, which checks the applier's rights every time, so
// the file keeps the last token until it expires (and the step's next push fails).
func TestWorkflowTokenRenewalStops(t *testing.T) {
	s := backends[0].open(t)()
	u := owner(t, s)
	p := newCredentialParts(t, s)
	var minted atomic.Int64
	w := trigger(t, s, "renew", renewFlow)
	startRenewing(t, s, p, 2*time.Second, 300*time.Millisecond, &minted)
	deadline := time.Now().Add(30 * time.Second)
	for minted.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	u.Disabled = true
	if err := s.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	atDisable := minted.Load()
	r := waitRun(t, s, w, "finished", finished)
	if r.State != engine.StateSucceeded {
		t.Fatalf("run %s: %+v", r.State, r.Jobs)
	}
	// One mint may have been in flight when the account was disabled.
	if got := minted.Load(); got > atDisable+1 || atDisable < 2 {
		t.Fatalf("%d tokens when the applier was disabled, %d at the end: renewal went on", atDisable, got)
	}
	log := jobLog(t, s, r.Jobs[0].ID)
	sums := map[string]bool{}
	for _, m := range sumRe.FindAllStringSubmatch(log, -1) {
		sums[m[1]] = true
	}
	if len(sums) > int(atDisable)+1 {
		t.Fatalf("the step saw %d tokens, more than were minted before the applier was disabled:\n%s", len(sums), log)
	}
	// The last token dies with its lifetime: the registry's verifier refuses it then.
	p.mu.Lock()
	last := p.tokens[len(p.tokens)-1]
	p.mu.Unlock()
	later := &token.Verifier{Keys: p.keys, Issuer: "hubctl", Audience: "hub", Leeway: -1,
		Now: func() time.Time { return time.Now().Add(3 * time.Second) }}
	if _, err := later.Verify(last); err == nil {
		t.Fatal("the last token is valid beyond its lifetime")
	}
}
