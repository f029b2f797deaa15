package hubapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/webhook"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

const hookedWorkflow = `name: hooked
on:
  webhook:
jobs:
  echo:
    image: alpine
    outputs: [ref]
    env:
      REF: "${{ event.body.ref }}"
    steps:
      - run: echo "ref=$REF" >> "$HUBCTL_OUTPUT"
`

// signed is the credentials of a webhook call: Standard Webhooks headers made with
// secret for id at t over body.
func signed(t *testing.T, secret, id string, at time.Time, body string) auth {
	t.Helper()
	h := http.Header{}
	if err := webhook.Sign(h, []string{secret}, id, at, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return func(r *http.Request) {
		for k, v := range h {
			r.Header[k] = v
		}
	}
}

// waitRunState polls run id until it ends.
func waitRunState(t *testing.T, f *fixture, id int64) hubtypes.WorkflowRun {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		run := decodeAs[hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "GET", "/api/v1/runs/"+itoa(id), nil), 200, ""))
		if engine.Terminal(run.State) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d never ended: %+v", id, run)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWorkflowHook: the incoming URL of a workflow starts a run for a call signed with
// the workflow's own secret (shown once, at the first apply), its JSON body read as
// event.body, and refuses what an attacker would try.
func TestWorkflowHook(t *testing.T) {
	f := newFixture(t)
	startLocalEngine(t, f)
	const url = "/api/v1/hooks/workflows/alice/hooked"

	applied := decodeAs[hubtypes.Workflow](t, f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/hooked", hookedWorkflow), 200, ""))
	secret := applied.HookSecret
	if !strings.HasPrefix(secret, webhook.SecretPrefix) || applied.HookURL != url {
		t.Fatalf("first apply: %+v", applied)
	}
	again := decodeAs[hubtypes.Workflow](t, f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/hooked", hookedWorkflow), 200, ""))
	if again.HookSecret != "" || again.HookURL != url {
		t.Fatalf("second apply shows the secret again: %+v", again)
	}
	other := decodeAs[hubtypes.Workflow](t, f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/other",
		strings.Replace(hookedWorkflow, "name: hooked", "name: other", 1)), 200, ""))
	if other.HookSecret == "" || other.HookSecret == secret {
		t.Fatalf("other workflow's secret %q", other.HookSecret)
	}
	if bytes.Contains(mustRead(t, f), []byte(secret)) {
		t.Fatal("the secret is stored in clear")
	}

	body := `{"ref":"refs/heads/main"}`
	now := f.clock.now()
	res := decodeAs[hubapi.WorkflowHookReply](t, f.want(f.do(signed(t, secret, "msg_1", now, body), "POST", url, body), 202, ""))
	if res.Run == 0 || res.Number != 1 {
		t.Fatalf("reply %+v", res)
	}
	run := waitRunState(t, f, res.Run)
	if run.State != engine.StateSucceeded || run.Trigger != "webhook" || run.Jobs[0].Outputs["ref"] != "refs/heads/main" {
		t.Fatalf("run %+v", run)
	}

	// A replay of the same webhook-id (even signed anew) starts nothing.
	dup := decodeAs[hubapi.WorkflowHookReply](t, f.want(f.do(signed(t, secret, "msg_1", now, body), "POST", url, body), 200, ""))
	if !dup.Duplicate || dup.Run != 0 {
		t.Fatalf("replay: %+v", dup)
	}
	runs := func() int {
		return len(decodeAs[[]hubtypes.WorkflowRun](t, f.want(f.do(asAlice, "GET", "/api/v1/workflows/alice/hooked/runs", nil), 200, "")))
	}
	if n := runs(); n != 1 {
		t.Fatalf("%d runs after a replay", n)
	}

	// What an attacker tries.
	f.want(f.do(signed(t, secret, "msg_2", now, body), "POST", url, `{"ref":"refs/heads/evil"}`), 401, "UNAUTHORIZED") // body changed
	f.want(f.do(signed(t, other.HookSecret, "msg_3", now, body), "POST", url, body), 401, "UNAUTHORIZED")              // another workflow's secret
	f.want(f.do(signed(t, secret, "msg_4", now.Add(-6*time.Minute), body), "POST", url, body), 401, "UNAUTHORIZED")    // too old
	f.want(f.do(signed(t, secret, "msg_5", now.Add(6*time.Minute), body), "POST", url, body), 401, "UNAUTHORIZED")     // from the future
	f.want(f.do(anon, "POST", url, body), 401, "UNAUTHORIZED")                                                         // unsigned
	f.want(f.do(func(r *http.Request) {
		signed(t, secret, "msg_6", now, body)(r)
		r.Header.Set("Webhook-Signature", "v1,"+strings.Repeat("A", 44))
	}, "POST", url, body), 401, "UNAUTHORIZED")
	big := `{"pad":"` + strings.Repeat("x", hubapi.MaxWorkflowHookBody) + `"}`
	if r := f.do(signed(t, secret, "msg_7", now, big), "POST", url, big); r.status != 413 {
		t.Fatalf("oversized body: %d %s", r.status, r.body)
	}
	f.want(f.do(signed(t, secret, "msg_8", now, "not json"), "POST", url, "not json"), 400, "INVALID_REQUEST")
	f.want(f.do(signed(t, secret, "msg_9", now, body), "GET", url, nil), 405, "UNSUPPORTED")
	// An unknown workflow and one without the trigger answer alike.
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 200, "")
	unknown := f.want(f.do(signed(t, secret, "msg_10", now, body), "POST", "/api/v1/hooks/workflows/alice/ghost", body), 404, "NAME_UNKNOWN")
	private := f.want(f.do(signed(t, secret, "msg_11", now, body), "POST", "/api/v1/hooks/workflows/alice/greet", body), 404, "NAME_UNKNOWN")
	if strings.ReplaceAll(string(unknown.body), "ghost", "greet") != string(private.body) {
		t.Fatalf("unknown %s, private %s", unknown.body, private.body)
	}
	f.want(f.do(signed(t, secret, "msg_12", now, body), "POST", "/api/v1/hooks/workflows/alice/hooked/x", body), 404, "NAME_UNKNOWN")
	if n := runs(); n != 1 {
		t.Fatalf("%d runs after the attacks", n)
	}

	// Rotation: only the namespace's admins; the old secret stops at once.
	f.want(f.do(asBob, "POST", "/api/v1/workflows/alice/hooked/hook-secret", nil), 404, "NAME_UNKNOWN")
	rot := decodeAs[hubtypes.Workflow](t, f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/hooked/hook-secret", nil), 200, ""))
	if rot.HookSecret == "" || rot.HookSecret == secret {
		t.Fatalf("rotated %+v", rot)
	}
	f.wantAudit("workflow.hook_secret.rotate", "alice", "alice/hooked")
	f.want(f.do(signed(t, secret, "msg_13", now, body), "POST", url, body), 401, "UNAUTHORIZED")
	f.want(f.do(signed(t, rot.HookSecret, "msg_14", now, body), "POST", url, body), 202, "")
	f.want(f.do(asAlice, "POST", "/api/v1/workflows/alice/greet/hook-secret", nil), 400, "INVALID_REQUEST")

	// The rate limit per workflow: a flood is refused with Retry-After.
	limited := false
	for i := range 70 {
		r := f.do(signed(t, rot.HookSecret, "flood_"+strconv.Itoa(i), now, "{}"), "POST", url, "{}")
		if r.status == 429 {
			if r.code() != "TOOMANYREQUESTS" || r.header.Get("Retry-After") == "" {
				t.Fatalf("429 %s %v", r.body, r.header)
			}
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("70 calls in a minute were all accepted")
	}
	// Another workflow has its own budget.
	f.want(f.do(signed(t, other.HookSecret, "msg_15", now, "{}"), "POST", "/api/v1/hooks/workflows/alice/other", "{}"), 202, "")
}

// TestWorkflowHookNamedSecret: on.webhook.secret names a namespace secret, whose value
// signs; none is made at apply, and an unset one refuses every call.
func TestWorkflowHookNamedSecret(t *testing.T) {
	f := newFixture(t)
	src := strings.Replace(hookedWorkflow, "  webhook:\n", "  webhook:\n    secret: HOOK_KEY\n", 1)
	got := decodeAs[hubtypes.Workflow](t, f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/hooked", src), 200, ""))
	if got.HookSecret != "" {
		t.Fatalf("apply made a secret: %+v", got)
	}
	const url = "/api/v1/hooks/workflows/alice/hooked"
	key, _ := webhook.NewSecret()
	now := f.clock.now()
	f.want(f.do(signed(t, key, "m1", now, "{}"), "POST", url, "{}"), 401, "UNAUTHORIZED")
	f.want(f.do(asAlice, "PUT", "/api/v1/namespaces/alice/secrets/HOOK_KEY", map[string]string{"value": key}), 204, "")
	f.want(f.do(signed(t, key, "m2", now, "{}"), "POST", url, "{}"), 202, "")
}

// mustRead returns the bytes of the fixture's SQLite database.
func mustRead(t *testing.T, f *fixture) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{f.dbPath, f.dbPath + "-wal"} {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	return all
}

// logBuffer collects the API's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestWorkflowSecretsAPI: namespace administrators set, list and delete workflow
// secrets; the value never comes back, nor reaches the audit log or a log line.
func TestWorkflowSecretsAPI(t *testing.T) {
	logs := &logBuffer{}
	f := newFixture(t, func(o *hubapi.Options) {
		o.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const value = "hunter2-very-secret-value"
	const path = "/api/v1/namespaces/alice/secrets/DEPLOY_KEY"
	f.want(f.do(asAlice, "PUT", path, map[string]string{"value": value}), 204, "")
	f.wantAudit("workflow.secret.set", "alice", "alice/DEPLOY_KEY")
	f.want(f.do(asAlice, "PUT", path, map[string]string{"value": value + "2"}), 204, "")
	list := f.want(f.do(asAlice, "GET", "/api/v1/namespaces/alice/secrets", nil), 200, "")
	got := decodeAs[[]hubtypes.WorkflowSecret](t, list)
	if len(got) != 1 || got[0].Name != "DEPLOY_KEY" || got[0].UpdatedBy != "alice" || got[0].CreatedAt == "" {
		t.Fatalf("list %+v", got)
	}

	// Others: bob (no rights), an unknown namespace, a token without the scope.
	f.want(f.do(asBob, "GET", "/api/v1/namespaces/alice/secrets", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "PUT", path, map[string]string{"value": "x"}), 404, "NAME_UNKNOWN")
	f.want(f.do(asBob, "DELETE", path, nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAdmin, "PUT", "/api/v1/namespaces/ghost/secrets/A", map[string]string{"value": "x"}), 404, "NAME_UNKNOWN")
	tok := f.token(asAlice, "ci", "repository:alice/*:pull")
	f.want(f.do(bearer(tok), "PUT", path, map[string]string{"value": "x"}), 403, "DENIED")
	f.want(f.do(bearer(tok), "GET", "/api/v1/namespaces/alice/secrets", nil), 403, "DENIED")

	// Bad input: names, values, bodies; no error quotes the value.
	f.want(f.do(asAlice, "PUT", "/api/v1/namespaces/alice/secrets/HUBCTL_X", map[string]string{"value": "x"}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PUT", "/api/v1/namespaces/alice/secrets/1bad", map[string]string{"value": "x"}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PUT", path, map[string]string{"value": ""}), 400, "INVALID_REQUEST")
	f.want(f.do(asAlice, "PUT", path, map[string]string{"value": strings.Repeat("v", engine.MaxSecretValue+1)}), 400, "INVALID_REQUEST")
	if r := f.do(asAlice, "PUT", path, `{"value":"`+strings.Repeat("v", hubapi.MaxSecretBody)+`"}`); r.status != 413 {
		t.Fatalf("oversized body: %d", r.status)
	}
	bad := f.want(f.do(asAlice, "PUT", path, `{"value":"`+value+`","extra":1}`), 400, "INVALID_REQUEST")
	typed := f.want(f.do(asAlice, "PUT", path, `{"value":["`+value+`"]}`), 400, "INVALID_REQUEST")
	for _, r := range []response{bad, typed, list} {
		if bytes.Contains(r.body, []byte("hunter2")) {
			t.Fatalf("an answer holds the value: %s", r.body)
		}
	}

	f.want(f.do(asAlice, "DELETE", path, nil), 204, "")
	f.wantAudit("workflow.secret.delete", "alice", "alice/DEPLOY_KEY")
	f.want(f.do(asAlice, "DELETE", path, nil), 404, "NAME_UNKNOWN")

	entries, err := f.store.ListAudit(context.Background(), accounts.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Detail+e.Target, "hunter2") {
			t.Fatalf("audit entry holds the value: %+v", e)
		}
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Fatalf("a log line holds the value:\n%s", logs.String())
	}
	if bytes.Contains(mustRead(t, f), []byte("hunter2")) {
		t.Fatal("the value is stored in clear")
	}
}
