package hubclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/auth/tokenserver"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// newHub serves /token (the real token service), /api/ (the real hub API accepting
// its JWTs) and a /v2/ that challenges like the registry, on a real SQLite store with
// the user alice. It returns host:port.
func newHub(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hash, err := password.Hash("alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateUser(ctx, accounts.User{Name: "alice", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const iss, service = "hubctl-test", "registry.test"
	access := &token.Verifier{Keys: keys, Issuer: iss, Audience: service}
	ts := &tokenserver.Server{
		Accounts: store,
		Policy:   &authz.Policy{Store: store},
		Access:   &token.Issuer{Keys: keys, Issuer: iss, Service: service},
		Keys:     keys,
	}
	mux := http.NewServeMux()
	mux.Handle("/token", ts)
	mux.Handle("/api/", hubapi.New(hubapi.Options{Accounts: store, VerifyJWT: func(raw string) (string, token.Hub, error) {
		c, err := access.Verify(raw)
		if err != nil {
			return "", token.Hub{}, err
		}
		return c.Subject, c.Hub, nil
	}}))
	var srv *httptest.Server
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="`+service+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// login runs the docker-style login of package credentials and stores the result in
// a fresh docker config directory, as `hubctl login` does.
func login(t *testing.T, host, user, pass string) *credentials.Store {
	t.Helper()
	res, err := credentials.Verify(context.Background(), host, credentials.Credentials{Username: user, Password: pass}, credentials.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := credentials.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(host, res.Credentials); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestRefreshTokenLogin(t *testing.T) {
	host := newHub(t)
	store := login(t, host, "alice", "alice-password")
	if c, _ := store.Get(host); c.IdentityToken == "" || c.Password != "" {
		t.Fatalf("login stored %+v, want a refresh token in place of the password", c)
	}
	c, err := hubclient.New(hubclient.Options{Host: host, Credentials: store})
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "http://"+host {
		t.Errorf("base %q", c.BaseURL())
	}
	me, err := c.Whoami(context.Background())
	if err != nil || me.Name != "alice" {
		t.Fatalf("whoami: %+v, %v", me, err)
	}
	// A JWT session may create tokens, and the token then works as a password.
	tok, err := c.CreateToken(context.Background(), hubtypes.CreateTokenRequest{Name: "ci", Scopes: []string{"repository:alice/*:pull"}})
	if err != nil || !strings.HasPrefix(tok.Token, "hub_") {
		t.Fatalf("create token: %+v, %v", tok, err)
	}
	withToken, err := credentials.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := withToken.Save(host, credentials.Credentials{Username: "alice", Password: tok.Token}); err != nil {
		t.Fatal(err)
	}
	c2, _ := hubclient.New(hubclient.Options{Host: host, Credentials: withToken})
	toks, err := c2.ListTokens(context.Background())
	if err != nil || len(toks) != 1 || toks[0].Name != "ci" {
		t.Fatalf("list tokens with the token: %+v, %v", toks, err)
	}
}

func TestRefusedRefreshToken(t *testing.T) {
	host := newHub(t)
	store, err := credentials.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(host, credentials.Credentials{Username: "alice", IdentityToken: "forged"}); err != nil {
		t.Fatal(err)
	}
	c, _ := hubclient.New(hubclient.Options{Host: host, Credentials: store})
	_, err = c.Whoami(context.Background())
	var e *hubclient.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "hubctl login "+host) {
		t.Fatalf("got %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	store, _ := credentials.Load(t.TempDir())
	for _, tt := range []struct {
		host     string
		insecure bool
		want     string
	}{
		{"localhost:5000", false, "http://localhost:5000"},
		{"127.0.0.2:5000", false, "http://127.0.0.2:5000"},
		{"[::1]:5000", false, "http://[::1]:5000"},
		{"hub.example.com", false, "https://hub.example.com"},
		{"https://hub.example.com/", false, "https://hub.example.com"},
		{"hub.example.com:5000", true, "http://hub.example.com:5000"},
		{"10.0.0.1:5000", false, "https://10.0.0.1:5000"},
	} {
		c, err := hubclient.New(hubclient.Options{Host: tt.host, Insecure: tt.insecure, Credentials: store})
		if err != nil {
			t.Errorf("%s: %v", tt.host, err)
		} else if c.BaseURL() != tt.want {
			t.Errorf("%s insecure=%v: %q, want %q", tt.host, tt.insecure, c.BaseURL(), tt.want)
		}
	}
}
