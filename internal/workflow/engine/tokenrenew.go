package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// DefaultTokenRenew is how often a running job's token is minted again: a third of
// the token's default lifetime (15 min), so a renewal that fails once is tried again
// before the token in the file expires.
const DefaultTokenRenew = 5 * time.Minute

// TokenFileName is the executor file (executor.FileWriter) holding the job's current
// token; steps find it at $HUBCTL_TOKEN_FILE.
const TokenFileName = "token"

// jobToken is a job run's token and what it was asked with, for its renewal.
type jobToken struct {
	req     TokenRequest
	mu      sync.Mutex
	current string
}

func (t *jobToken) get() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.current
}

func (t *jobToken) set(s string) {
	t.mu.Lock()
	t.current = s
	t.mu.Unlock()
}

// renewToken gives the job's steps $HUBCTL_TOKEN_FILE when the executor can write
// files (executor.FileWriter), writes the token there, and mints it again every
// TokenRenew while the job runs: each renewal asks the minter again, which checks the
// applier's rights anew, so an applier disabled (or who lost access) mid-run gets no
// new token and the step's next push fails once the last one expires. Each new token
// is masked in the log before any step can read it. It returns the function that
// stops the renewal; an executor without files gets $HUBCTL_TOKEN only.
func (e *Engine) renewToken(ctx context.Context, spec *executor.JobSpec, tok *jobToken, mask *masker) (func(), error) {
	fw, ok := e.o.Executor.(executor.FileWriter)
	if !ok {
		return func() {}, nil
	}
	if err := fw.WriteFile(ctx, spec, TokenFileName, []byte(tok.get())); err != nil {
		return nil, fmt.Errorf("HUBCTL_TOKEN_FILE: %v", err)
	}
	spec.Env = append(spec.Env, executor.EnvVar{Name: "HUBCTL_TOKEN_FILE", Value: fw.FilePath(spec, TokenFileName)})
	// The renewal reads its own copy: the step loop replaces spec.Registry meanwhile.
	job := *spec
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	log := e.o.Logger.With("run", tok.req.RunID, "job", tok.req.JobID)
	go func() {
		defer close(done)
		t := time.NewTicker(e.o.TokenRenew)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			nt, err := e.o.Tokens(rctx, tok.req)
			if err != nil {
				if rctx.Err() == nil {
					log.Warn("job token not renewed: the steps keep the last one until it expires", "err", err)
				}
				continue
			}
			if mask != nil {
				mask.Add(nt.Token)
			}
			tok.set(nt.Token)
			if err := fw.WriteFile(rctx, &job, TokenFileName, []byte(nt.Token)); err != nil && rctx.Err() == nil {
				log.Warn("job token renewed but not written to HUBCTL_TOKEN_FILE", "err", err)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}, nil
}
