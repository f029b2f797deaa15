package hubapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/secrets"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// A namespace's workflow secrets (the values its workflows' steps name in secrets:)
// are set, listed and deleted by the namespace's administrators only, never robots;
// their values go in and never come out: no answer, audit entry or log line holds one.

// MaxSecretBody bounds the body of PUT …/secrets/{name}: a 48 KiB value, JSON-escaped.
const MaxSecretBody = 6*wfengine.MaxSecretValue + 1024

// WorkflowSecretStore is what the secrets endpoints need of the store (sqlstore
// implements it); without it they answer 404.
type WorkflowSecretStore interface {
	SetWorkflowSecret(ctx context.Context, ring *secrets.Keyring, namespace, name, value string, by int64) error
	ListWorkflowSecrets(ctx context.Context, namespace string) ([]wfengine.SecretInfo, error)
	DeleteWorkflowSecret(ctx context.Context, namespace, name string) error
}

func (a *api) workflowSecretRoutes() {
	a.route("/api/v1/namespaces/{ns}/secrets", map[string]handlerFunc{"GET": reads(scope.HubWorkflows, a.listSecrets)})
	a.route("/api/v1/namespaces/{ns}/secrets/{name}", map[string]handlerFunc{
		"PUT":    writes(scope.HubWorkflows, a.setSecret),
		"DELETE": writes(scope.HubWorkflows, a.deleteSecret),
	})
}

// secretStore returns the store and checks that p administers the namespace ns,
// which exists; outsiders get the answer of a namespace that does not exist.
func (a *api) secretStore(r *http.Request, p *authz.Principal, what string) (WorkflowSecretStore, string, error) {
	ss, ok := a.workflows.(WorkflowSecretStore)
	if a.workflows == nil || !ok {
		return nil, "", notFound("no API endpoint %s", r.URL.Path)
	}
	ns := r.PathValue("ns")
	if err := a.workflowAccess(r.Context(), p, ns, accounts.RoleAdmin, what); err != nil {
		return nil, "", err
	}
	if _, err := a.store.GetNamespace(r.Context(), ns); errors.Is(err, accounts.ErrNotFound) {
		return nil, "", errNoWorkflows(ns)
	} else if err != nil {
		return nil, "", err
	}
	return ss, ns, nil
}

// secretAudit is ctx carrying the audit entry of a change of secret ns/name, which the
// store writes in the change's transaction.
func (a *api) secretAudit(r *http.Request, p *authz.Principal, action, target string) context.Context {
	e := accounts.AuditEntry{Time: a.now(), Actor: p.Name(), Action: action, Target: target, Remote: remoteAddr(r)}
	if p.Token != nil {
		e.Detail = "token " + p.Token.Name
	}
	return accounts.WithAudit(r.Context(), e)
}

// setSecret answers PUT /api/v1/namespaces/{ns}/secrets/{name} {"value": "…"}.
func (a *api) setSecret(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ss, ns, err := a.secretStore(r, p, "manage secrets of")
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if a.keyring == nil {
		return invalid("this hub has no secrets keys to seal a secret with: set HUBCTL_SECRETS_KEY or secrets.keys_file")
	}
	var req hubtypes.SetWorkflowSecretRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxSecretBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return errcode.New(InvalidRequest, "request body exceeds %d bytes", MaxSecretBody).WithStatus(http.StatusRequestEntityTooLarge)
		case errors.Is(err, io.EOF):
			return invalid(`request body is empty, want {"value": "…"}`)
		}
		// The decoder's message may quote the body, that is the value: never echo it.
		return invalid(`request body is not {"value": "…"}`)
	}
	if err := wfengine.CheckSecret(name, req.Value); err != nil {
		return invalid("%v", err)
	}
	if err := ss.SetWorkflowSecret(a.secretAudit(r, p, "workflow.secret.set", ns+"/"+name), a.keyring, ns, name, req.Value, p.User.ID); err != nil {
		return workflowStoreError(err, "secret "+ns+"/"+name)
	}
	return noContent(w)
}

// listSecrets answers GET /api/v1/namespaces/{ns}/secrets: names and dates.
func (a *api) listSecrets(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ss, ns, err := a.secretStore(r, p, "list secrets of")
	if err != nil {
		return err
	}
	list, err := ss.ListWorkflowSecrets(r.Context(), ns)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	who := func(id int64) string {
		if n, ok := names[id]; ok {
			return n
		}
		if u, err := a.workflows.UserByID(r.Context(), id); err == nil {
			names[id] = u.Name
		} else {
			names[id] = ""
		}
		return names[id]
	}
	out := make([]hubtypes.WorkflowSecret, 0, len(list))
	for _, s := range list {
		out = append(out, hubtypes.WorkflowSecret{Namespace: s.Namespace, Name: s.Name, CreatedBy: who(s.CreatedBy),
			CreatedAt: formatTime(s.CreatedAt), UpdatedBy: who(s.UpdatedBy), UpdatedAt: formatTime(s.UpdatedAt)})
	}
	return reply(w, http.StatusOK, out)
}

// deleteSecret answers DELETE /api/v1/namespaces/{ns}/secrets/{name}.
func (a *api) deleteSecret(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	ss, ns, err := a.secretStore(r, p, "manage secrets of")
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := ss.DeleteWorkflowSecret(a.secretAudit(r, p, "workflow.secret.delete", ns+"/"+name), ns, name); err != nil {
		return workflowStoreError(err, "secret "+ns+"/"+name)
	}
	return noContent(w)
}
