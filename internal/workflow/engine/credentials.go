package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/workflow"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// TokenRequest is what a job run's $HUBCTL_TOKEN is asked for (docs/design/workflows.md,
// "$HUBCTL_TOKEN"). The minter grants the part of Access that Creator may do now.
type TokenRequest struct {
	// Creator is the account that applied the workflow: the token acts for it.
	Creator int64
	// Subject is the token's subject, "workflow-run:<run id>".
	Subject string
	// Access is pull on the triggering repository and the workflow's permissions
	// that name a repository.
	Access []scope.Access
	// Deploys are the services the job may deploy through the hub API,
	// NAMESPACE/SERVICE-PATTERN: the workflow's permissions.deploy in its namespace.
	Deploys []string
	RunID   int64
	JobID   int64
	// Purpose says which job, for the audit entry.
	Purpose string
	// TTL is the token's lifetime (Options.TokenTTL); 0 is the minter's default.
	TTL time.Duration
}

// JobToken is a minted job token.
type JobToken struct {
	// Token is the bearer token; it reaches the job's environment and nothing else.
	Token     string
	ExpiresAt time.Time
}

// tokenAccess is what a job run's token asks for: pull on the repository a push
// triggered on, then the permissions' repositories, by name or pattern (NAMESPACE/*:
// the minter grants it only when the applier's rights cover the whole namespace, and
// refuses `*`, which would cover every namespace).
func tokenAccess(run *Run, wf *workflow.Workflow) []scope.Access {
	actions := map[string][]string{}
	var order []string
	add := func(name, action string) {
		if name == "" {
			return
		}
		if _, ok := actions[name]; !ok {
			order = append(order, name)
		}
		if !slices.Contains(actions[name], action) {
			actions[name] = append(actions[name], action)
		}
	}
	if run.Trigger == workflow.TriggerPush {
		r, _ := run.Event["repository"].(string)
		add(r, scope.Pull)
	}
	for _, p := range wf.Permissions.Pull {
		add(p, scope.Pull)
	}
	for _, p := range wf.Permissions.Push {
		add(p, scope.Pull) // docker push needs both
		add(p, scope.Push)
	}
	var out []scope.Access
	for _, name := range order {
		acts := actions[name]
		slices.Sort(acts)
		out = append(out, scope.Access{Type: scope.TypeRepository, Name: name, Actions: acts})
	}
	return out
}

// credentials gives spec the job's secrets and token: the secrets its steps name,
// resolved from the run's namespace, and $HUBCTL_TOKEN with the registry auth to pull
// the job's images from the hub. It returns the values the job's log must never show,
// and the token minted (nil without one) for its renewal; an error fails the job with
// its message.
func (e *Engine) credentials(ctx context.Context, run *Run, wf *workflow.Workflow, j *workflow.Job, c *Claim, spec *executor.JobSpec) ([]string, *jobToken, error) {
	var names []string
	for _, st := range j.Steps {
		for _, n := range st.Secrets {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	var hidden []string
	if len(names) > 0 {
		if e.o.Secrets == nil {
			return nil, nil, fmt.Errorf("secrets %s: this engine has no secrets", strings.Join(names, ", "))
		}
		vals, err := e.o.Secrets(ctx, run.Namespace, names)
		if err != nil {
			return nil, nil, fmt.Errorf("secrets: %w", err)
		}
		var missing []string
		spec.Secrets = map[string]string{}
		for _, n := range names {
			v, ok := vals[n]
			if !ok {
				missing = append(missing, n)
				continue
			}
			spec.Secrets[n] = v
			hidden = append(hidden, v)
		}
		if len(missing) > 0 {
			return nil, nil, fmt.Errorf("secrets not set in namespace %s: %s", run.Namespace, strings.Join(missing, ", "))
		}
	}
	if e.o.Tokens == nil {
		return hidden, nil, nil
	}
	access := tokenAccess(run, wf)
	var deploys []string
	for _, p := range wf.Permissions.Deploy {
		deploys = append(deploys, run.Namespace+"/"+p)
	}
	// A job that moves files through the hub (artifacts, a cache, or the artifacts of
	// the jobs it needs: hubctl workflow-agent on Kubernetes) gets a token even when
	// its workflow asks for no registry access: one that reaches only its run's job
	// endpoints.
	movesFiles := len(j.Artifacts) > 0 || j.Cache != nil || len(j.Needs) > 0
	if len(access) == 0 && len(deploys) == 0 && !movesFiles {
		return hidden, nil, nil
	}
	req := TokenRequest{Creator: run.AppliedBy, Subject: "workflow-run:" + strconv.FormatInt(run.ID, 10),
		Access: access, Deploys: deploys, RunID: run.ID, JobID: c.Job.ID, TTL: e.o.TokenTTL,
		Purpose: fmt.Sprintf("job %d (%s) of run %d of %s/%s", c.Job.ID, c.Job.Display, run.ID, run.Namespace, run.Workflow)}
	t, err := e.o.Tokens(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("HUBCTL_TOKEN: %w", err)
	}
	spec.Env = append(spec.Env, executor.EnvVar{Name: "HUBCTL_TOKEN", Value: t.Token})
	if e.o.Registry != "" && len(access) > 0 {
		spec.Registry = &executor.RegistryAuth{Registry: e.o.Registry, Token: t.Token}
	}
	return append(hidden, t.Token), &jobToken{req: req, current: t.Token}, nil
}
