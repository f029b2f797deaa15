package hubapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/secrets"
	"github.com/hubctl/hubctl/internal/webhook"
	"github.com/hubctl/hubctl/internal/workflow"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

// A workflow with on.webhook has an incoming URL, POST /api/v1/hooks/workflows/{ns}/{name}.
// Callers hold no account: a call is accepted when it carries a Standard Webhooks
// signature (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256
// of "id.timestamp.body">) made with the workflow's own secret — the hub secret its
// YAML names, or the one the hub made at its first apply — compared in constant time,
// with a timestamp within 5 minutes of the hub's clock. The run's event id is
// "webhook:" and the webhook-id, so a replayed call starts nothing. An unknown
// workflow, one without the trigger and a disabled one get the same 404.

// WorkflowHookPrefix is the path of workflows' incoming URLs (.../{ns}/{name}).
const WorkflowHookPrefix = "/api/v1/hooks/workflows/"

// Bounds of an incoming call.
const (
	MaxWorkflowHookBody = 1 << 20
	hookTolerance       = 5 * time.Minute
	// hookRate calls per hookWindow per workflow, over all replicas (Options.Rates).
	hookRate   = 60
	hookWindow = time.Minute
)

// WorkflowHookStore is what the webhook trigger and the workflow secrets need of the
// store beyond WorkflowStore (sqlstore implements it). Without it those endpoints
// answer 404.
type WorkflowHookStore interface {
	// EnsureWorkflowHookSecret makes the workflow's signing secret when it has none
	// (or rotate is set) and returns it; "" when it had one.
	EnsureWorkflowHookSecret(ctx context.Context, ring *secrets.Keyring, workflowID int64, rotate bool) (string, error)
	WorkflowHookSecret(ctx context.Context, ring *secrets.Keyring, workflowID int64) (string, error)
	ResolveWorkflowSecrets(ctx context.Context, ring *secrets.Keyring, namespace string, names []string) (map[string]string, error)
}

// WorkflowHookReply is the answer to an accepted call of a workflow's incoming URL.
type WorkflowHookReply struct {
	// Run is the id of the run started; 0 for a replay, which starts none.
	Run       int64 `json:"run,omitempty"`
	Number    int64 `json:"number,omitempty"`
	Duplicate bool  `json:"duplicate,omitempty"`
}

func (a *api) hookStore() WorkflowHookStore {
	hs, _ := a.workflows.(WorkflowHookStore)
	return hs
}

// serveWorkflowHook answers a call of a workflow's incoming URL, without the bearer
// authentication of the rest of the API.
func (a *api) serveWorkflowHook(w http.ResponseWriter, r *http.Request) {
	if err := a.workflowHook(w, r); err != nil {
		var e *errcode.Error
		if !errors.As(err, &e) {
			a.log.ErrorContext(r.Context(), "workflow webhook", "path", r.URL.Path, "error", err)
		}
		var tooMany *hookTooMany
		if errors.As(err, &tooMany) {
			w.Header().Set("Retry-After", strconv.Itoa(tooMany.seconds))
			err = errcode.New(errcode.TooManyRequests, "too many calls of this webhook; retry in %d s", tooMany.seconds)
		}
		errcode.Write(w, err)
	}
}

type hookTooMany struct{ seconds int }

func (e *hookTooMany) Error() string { return "too many calls" }

func (a *api) workflowHook(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return errcode.New(errcode.Unsupported, "%s is not allowed on %s (allowed: POST)", r.Method, r.URL.Path)
	}
	ns, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, WorkflowHookPrefix), "/")
	hs := a.hookStore()
	if !ok || ns == "" || strings.Contains(name, "/") || !workflow.ValidName(name) || a.workflows == nil || hs == nil {
		return notFound("no workflow webhook %s", r.URL.Path)
	}
	gone := notFound("no workflow webhook %s/%s", ns, name)
	wf, err := a.workflows.GetWorkflow(r.Context(), ns, name)
	if errors.Is(err, wfengine.ErrNotFound) {
		return gone
	} else if err != nil {
		return err
	}
	parsed, err := workflow.Parse(wf.Source)
	if err != nil || parsed.On.Webhook == nil || !wf.Enabled {
		return gone
	}
	ok, wait, err := a.hookLimits.Take(r.Context(), strconv.FormatInt(wf.ID, 10), a.now())
	if err != nil {
		return err
	}
	if !ok {
		return &hookTooMany{seconds: max(1, int((wait+time.Second-1)/time.Second))}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWorkflowHookBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errcode.New(InvalidRequest, "webhook body exceeds %d bytes", MaxWorkflowHookBody).WithStatus(http.StatusRequestEntityTooLarge)
	} else if err != nil {
		return invalid("read webhook body: %v", err)
	}
	id, ts, sigs := r.Header.Get("Webhook-Id"), r.Header.Get("Webhook-Timestamp"), r.Header.Get("Webhook-Signature")
	if id == "" || ts == "" || sigs == "" {
		return hookUnauthorized("the call is not signed: webhook-id, webhook-timestamp and webhook-signature are required")
	}
	if len(id) > wfengine.MaxWebhookIDLength {
		return invalid("webhook-id exceeds %d bytes", wfengine.MaxWebhookIDLength)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return hookUnauthorized("webhook-timestamp %q is not unix seconds", clip(ts))
	}
	if d := a.now().Sub(time.Unix(sec, 0)); d > hookTolerance || d < -hookTolerance {
		return hookUnauthorized("webhook-timestamp is more than %v away from the hub's clock", hookTolerance)
	}
	key, err := a.workflowHookKey(r.Context(), hs, wf, parsed.On.Webhook)
	if err != nil {
		return err
	}
	if !validHookSignature(key, id, ts, body, sigs) {
		return hookUnauthorized("the signature does not match")
	}
	var payload any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &payload); err != nil {
			return invalid("webhook body is not JSON: %v", err)
		}
	}
	pr, err := wfengine.PlanWebhook(wf, id, payload)
	if err != nil {
		return invalid("%v", err)
	}
	runID, err := a.workflows.CreateWorkflowRun(r.Context(), wf.ID, pr)
	if errors.Is(err, wfengine.ErrInvalid) {
		// The same webhook-id again (a sender's retry, or a replay): nothing new.
		return reply(w, http.StatusOK, WorkflowHookReply{Duplicate: true})
	} else if err != nil {
		return err
	}
	run, err := a.workflows.GetWorkflowRun(r.Context(), runID)
	if err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "workflow run started by its webhook", "workflow", ns+"/"+name, "run", runID,
		"remote", remoteAddr(r))
	return reply(w, http.StatusAccepted, WorkflowHookReply{Run: run.ID, Number: run.Number})
}

// workflowHookKey is the HMAC key of wf's calls: the hub secret its YAML names, or
// the secret the hub made for it. A "whsec_" secret signs with its decoded bytes, as
// Standard Webhooks says; any other hub secret with its bytes as they are.
func (a *api) workflowHookKey(ctx context.Context, hs WorkflowHookStore, wf wfengine.Workflow, t *workflow.WebhookTrigger) ([]byte, error) {
	var secret string
	if t.Secret != "" {
		vals, err := hs.ResolveWorkflowSecrets(ctx, a.keyring, wf.Namespace, []string{t.Secret})
		if err != nil {
			return nil, err
		}
		v, ok := vals[t.Secret]
		if !ok {
			return nil, hookUnauthorized("the workflow's signing secret %s is not set in namespace %s", t.Secret, wf.Namespace)
		}
		secret = v
	} else {
		v, err := hs.WorkflowHookSecret(ctx, a.keyring, wf.ID)
		if errors.Is(err, wfengine.ErrNotFound) {
			return nil, hookUnauthorized("the workflow has no signing secret: apply it again or run 'hubctl workflow hook-secret --rotate'")
		} else if err != nil {
			return nil, err
		}
		secret = v
	}
	if strings.HasPrefix(secret, webhook.SecretPrefix) {
		if k, err := webhook.SecretKey(secret); err == nil {
			return k, nil
		}
	}
	return []byte(secret), nil
}

// validHookSignature reports whether one of the space-separated "v1,<base64>" of sigs
// is the HMAC-SHA256 of "id.ts.body" under key, comparing in constant time.
func validHookSignature(key []byte, id, ts string, body []byte, sigs string) bool {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.", id, ts)
	m.Write(body)
	want := m.Sum(nil)
	found := false
	for i, s := range strings.Fields(sigs) {
		if i >= 10 {
			break
		}
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			found = true
		}
	}
	return found
}

func hookUnauthorized(format string, args ...any) error {
	return errcode.New(errcode.Unauthorized, format, args...)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// rotateHookSecret answers POST /api/v1/workflows/{ns}/{name}/hook-secret: a new
// signing secret for the workflow's incoming URL, shown in this answer only
// (namespace administrators).
func (a *api) rotateHookSecret(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	hs := a.hookStore()
	if a.workflows == nil || hs == nil {
		return notFound("no API endpoint %s", r.URL.Path)
	}
	wf, err := a.readableWorkflow(r, p, accounts.RoleAdmin, "rotating the webhook secret of")
	if err != nil {
		return err
	}
	parsed, err := workflow.Parse(wf.Source)
	if err != nil {
		return invalid("workflow %s/%s no longer parses: apply it again", wf.Namespace, wf.Name)
	}
	if parsed.On.Webhook == nil {
		return invalid("workflow %s/%s has no webhook trigger (on: webhook)", wf.Namespace, wf.Name)
	}
	if parsed.On.Webhook.Secret != "" {
		return invalid("workflow %s/%s is signed with the namespace secret %s: set a new value with 'hubctl workflow secret set %s/%s'",
			wf.Namespace, wf.Name, parsed.On.Webhook.Secret, wf.Namespace, parsed.On.Webhook.Secret)
	}
	secret, err := hs.EnsureWorkflowHookSecret(r.Context(), a.keyring, wf.ID, true)
	if err != nil {
		return workflowStoreError(err, "workflow "+wf.Namespace+"/"+wf.Name)
	}
	a.auditWorkflow(r, p, "workflow.hook_secret.rotate", wf.Namespace+"/"+wf.Name, "")
	v := a.workflowView(r.Context(), wf, false)
	v.HookURL, v.HookSecret = WorkflowHookPrefix+wf.Namespace+"/"+wf.Name, secret
	return reply(w, http.StatusOK, v)
}

// withHookSecret makes the signing secret of a workflow just applied with on.webhook
// and no secret of its own, the first time, and puts it and the URL in v.
func (a *api) withHookSecret(ctx context.Context, wf wfengine.Workflow, v *hubtypes.Workflow) error {
	parsed, err := workflow.Parse(wf.Source)
	if err != nil || parsed.On.Webhook == nil {
		return err
	}
	v.HookURL = WorkflowHookPrefix + wf.Namespace + "/" + wf.Name
	hs := a.hookStore()
	if parsed.On.Webhook.Secret != "" || hs == nil {
		return nil
	}
	v.HookSecret, err = hs.EnsureWorkflowHookSecret(ctx, a.keyring, wf.ID, false)
	return err
}
