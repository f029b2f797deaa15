package hubhistory_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/hubhistory"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/server"
)

const adminPassword = "admin-password-for-tests"

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startHub runs a real hub (`hubctl serve` with token auth on SQLite, registry, token
// service and API) on 127.0.0.1 until the test ends, and answers its host:port and
// its log.
func startHub(t *testing.T) (string, *syncBuf) {
	t.Helper()
	env := func(k string) (string, bool) {
		if k == config.EnvAdminPassword {
			return adminPassword, true
		}
		return "", false
	}
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"addr": "127.0.0.1:0", "data": t.TempDir(), "auth.mode": "token"}, LookupEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := server.Run(ctx, cfg, log, pw)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-done })
	br := bufio.NewReader(pr)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the hub did not say where it listens: %v", err)
		}
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, br) }()
			return addr, logs
		}
	}
}

// login is a credential source holding one user's password.
type login struct{ user, pass string }

func (l login) Get(string) (credentials.Credentials, error) {
	return credentials.Credentials{Username: l.user, Password: l.pass}, nil
}

func client(t *testing.T, host, user, pass string) *hubclient.Client {
	t.Helper()
	c, err := hubclient.New(hubclient.Options{Host: host, Credentials: login{user, pass}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHubHistory: deploy.History kept by a real hub. Carol (who made the
// organisation acme) begins a deploy of acme/web; a second deploy, by dave who may
// write there too, is refused with carol as the holder; carol renews, gets a pull
// token with which the registry serves acme/web (and nothing else, and no push) and
// the secrets her spec names, finishes; history, Get, ErrNoRecord; dave breaks a lock
// and the deploy holding it can neither renew nor finish. Nothing secret reaches the
// hub's log.
func TestHubHistory(t *testing.T) {
	ctx := t.Context()
	host, logs := startHub(t)
	for _, u := range []string{"carol", "dave", "erin"} {
		if err := apiPost(t, host, "admin", adminPassword, "/api/v1/users", `{"name":"`+u+`","password":"`+u+`-password"}`); err != nil {
			t.Fatal(err)
		}
	}
	must(t, apiPost(t, host, "carol", "carol-password", "/api/v1/orgs", `{"name":"acme"}`))
	must(t, apiPost(t, host, "carol", "carol-password", "/api/v1/orgs/acme/teams", `{"name":"ops"}`))
	must(t, apiDo(t, host, "carol", "carol-password", http.MethodPut, "/api/v1/orgs/acme/teams/ops/members/dave", ""))
	must(t, apiDo(t, host, "carol", "carol-password", http.MethodPut, "/api/v1/orgs/acme/teams/ops/grants", `{"repository":"","role":"write"}`))

	// What is deployed: an image pushed to the hub.
	img, err := random.Image(512, 1)
	must(t, err)
	ref, err := name.ParseReference(host+"/acme/web:v1", name.Insecure)
	must(t, err)
	carolAuth := remote.WithAuth(&authn.Basic{Username: "carol", Password: "carol-password"})
	must(t, remote.Write(ref, img, carolAuth))
	other, err := name.ParseReference(host+"/acme/other:v1", name.Insecure)
	must(t, err)
	must(t, remote.Write(other, img, carolAuth))
	dgst, err := img.Digest()
	must(t, err)

	carolC := client(t, host, "carol", "carol-password")
	const secretValue = "very-secret-db-password-42"
	must(t, carolC.SetWorkflowSecret(ctx, "acme", "DB_PASSWORD", secretValue))

	carol := hubhistory.New(carolC, "acme")
	dave := hubhistory.New(client(t, host, "dave", "dave-password"), "acme")
	rec := deploy.Record{Service: "web", SpecYAML: "service:\n  name: web\n  image: " + host + "/acme/web:v1\n  secrets: [DB_PASSWORD]\n",
		Digests: map[string]string{"service": host + "/acme/web@" + dgst.String()}, Target: "docker", Hosts: []string{"local"}}
	r1, err := carol.Begin(ctx, rec, deploy.LockHolder{})
	must(t, err)
	if r1.Number != 1 || r1.Outcome != deploy.OutcomeRunning || r1.By != "carol" || r1.Namespace != "acme" || r1.SpecYAML != rec.SpecYAML {
		t.Fatalf("begin %+v", r1)
	}
	_, err = dave.Begin(ctx, rec, deploy.LockHolder{Host: "ci-runner", PID: 99})
	var le *deploy.LockedError
	if !errors.As(err, &le) || le.Holder.By != "carol" || le.Holder.PID == 0 || le.Holder.Number != 1 || le.Holder.Expires.IsZero() ||
		!strings.Contains(err.Error(), "lock break") {
		t.Fatalf("second begin: %v", err)
	}
	must(t, carol.Renew(ctx, "web", 1))
	if h, ok, err := dave.Lock(ctx, "web"); err != nil || !ok || h.By != "carol" {
		t.Fatalf("lock %+v %v %v", h, ok, err)
	}

	// The engines' pull token: it pulls acme/web by digest, nothing else.
	pt, err := carol.PullToken(ctx, "web", 1, []string{"acme/web"})
	must(t, err)
	if pt.Token == "" || time.Until(pt.ExpiresAt) > 10*time.Minute || len(pt.Repositories) != 1 || strings.Contains(pt.String(), pt.Token) {
		t.Fatalf("pull token %v", pt)
	}
	raw, err := base64.URLEncoding.DecodeString(pt.RegistryAuth(host))
	must(t, err)
	var engineAuth authn.AuthConfig
	must(t, json.Unmarshal(raw, &engineAuth))
	if engineAuth.RegistryToken != pt.Token {
		t.Fatalf("RegistryAuth %s", raw)
	}
	bearer := remote.WithAuth(authn.FromConfig(engineAuth))
	pinned, err := name.ParseReference(rec.Digests["service"], name.Insecure)
	must(t, err)
	if _, err := remote.Get(pinned, bearer); err != nil {
		t.Fatalf("pull with the deploy's token: %v", err)
	}
	if _, err := remote.Get(other, bearer); err == nil {
		t.Fatal("the deploy's token pulls another repository")
	}
	evil, err := name.ParseReference(host+"/acme/web:evil", name.Insecure)
	must(t, err)
	if err := remote.Write(evil, img, bearer); err == nil {
		t.Fatal("the deploy's token pushes")
	}
	if _, err := carol.PullToken(ctx, "web", 1, []string{"admin/private"}); err == nil {
		t.Fatal("a pull token for a repository carol may not pull")
	}
	erin := hubhistory.New(client(t, host, "erin", "erin-password"), "acme")
	if _, err := erin.PullToken(ctx, "web", 1, []string{"acme/web"}); err == nil {
		t.Fatal("an outsider got a pull token")
	}
	if _, err := erin.List(ctx, "web"); err == nil {
		t.Fatal("an outsider read the history")
	}

	vals, err := carol.Secrets(ctx, "web", []string{"DB_PASSWORD"})
	if err != nil || vals["DB_PASSWORD"] != secretValue {
		t.Fatalf("secrets %v %v", len(vals), err)
	}
	if _, err := erin.Secrets(ctx, "web", []string{"DB_PASSWORD"}); err == nil {
		t.Fatal("an outsider read the secrets")
	}

	long := strings.Repeat("é", hubhistory.MaxError)
	must(t, carol.Finish(ctx, "web", 1, deploy.OutcomeFailed, long))
	got, err := dave.Get(ctx, "web", 1)
	must(t, err)
	if got.Outcome != deploy.OutcomeFailed || got.SpecYAML != rec.SpecYAML || got.Finished.IsZero() || len(got.Error) > hubhistory.MaxError ||
		!strings.HasSuffix(got.Error, "…") || got.Digests["service"] != rec.Digests["service"] {
		t.Fatalf("get %+v", got)
	}
	if _, err := dave.Get(ctx, "web", 7); !errors.Is(err, deploy.ErrNoRecord) {
		t.Fatalf("get a missing deploy: %v", err)
	}
	if _, ok, err := dave.Lock(ctx, "web"); ok || err != nil {
		t.Fatalf("lock after finish: %v %v", ok, err)
	}

	// Dave deploys 2; carol breaks its lock; dave's deploy learns it lost.
	rb := rec
	rb.RollbackOf = 1
	r2, err := dave.Begin(ctx, rb, deploy.LockHolder{})
	must(t, err)
	if r2.Number != 2 || r2.RollbackOf != 1 || r2.By != "dave" {
		t.Fatalf("second deploy %+v", r2)
	}
	must(t, carol.BreakLock(ctx, "web"))
	if err := dave.Renew(ctx, "web", 2); !errors.Is(err, hubhistory.ErrLockLost) {
		t.Fatalf("renew after break: %v", err)
	}
	if err := dave.Finish(ctx, "web", 2, deploy.OutcomeSucceeded, ""); err == nil {
		t.Fatal("finish after the lock was broken")
	}
	if err := carol.BreakLock(ctx, "web"); !errors.Is(err, hubhistory.ErrNotLocked) {
		t.Fatalf("break with no lock: %v", err)
	}
	list, err := carol.List(ctx, "web")
	must(t, err)
	if len(list) != 2 || list[0].Number != 2 || list[0].Outcome != deploy.OutcomeFailed || !strings.Contains(list[0].Error, "broken by carol") ||
		list[1].Number != 1 || list[0].SpecYAML != "" {
		t.Fatalf("history %+v", list)
	}

	if l := logs.String(); strings.Contains(l, secretValue) || strings.Contains(l, pt.Token) {
		t.Fatal("a secret or the pull token reached the hub's log")
	}
}

func apiPost(t *testing.T, host, user, pass, path, body string) error {
	return apiDo(t, host, user, pass, http.MethodPost, path, body)
}

// apiDo sends one request to the hub API and fails on an error status.
func apiDo(t *testing.T, host, user, pass, method, path, body string) error {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, pass)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return errors.New(method + " " + path + ": " + resp.Status + ": " + string(b))
	}
	return nil
}
