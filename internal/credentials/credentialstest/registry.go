package credentialstest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Challenge selects how a stub Registry asks for credentials.
type Challenge int

const (
	// Bearer answers /v2/ with a Docker token challenge whose realm is /token on the
	// same listener.
	Bearer Challenge = iota
	// Basic answers /v2/ with a Basic challenge and checks credentials there.
	Basic
	// NoAuth answers /v2/ with 200 to anyone.
	NoAuth
)

// Registry is a stub of a registry's login surface: /v2/ and a Docker token service.
// It is our own handler, so httptest serves it on 127.0.0.1.
type Registry struct {
	// Host is host:port of the listener.
	Host string
	// Service is the service named in the Bearer challenge.
	Service string
	// RefreshToken, when set, is returned for offline_token=true token requests.
	RefreshToken string

	mu        sync.Mutex
	users     map[string]string
	tokenReqs []TokenRequest
}

// TokenRequest records what a client sent to the token endpoint.
type TokenRequest struct {
	Service, ClientID, OfflineToken, Username string
	// Authorized is whether its Basic credentials were accepted.
	Authorized bool
}

// NewRegistry starts a stub registry accepting the given username → password pairs.
func NewRegistry(t testing.TB, ch Challenge, users map[string]string) *Registry {
	t.Helper()
	r := &Registry{Service: "hubtest-registry", users: users}
	mux := http.NewServeMux()
	var realm string
	mux.HandleFunc("GET /v2/", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v2/" {
			http.NotFound(w, req)
			return
		}
		switch ch {
		case NoAuth:
		case Basic:
			if !r.check(req) {
				w.Header().Set("WWW-Authenticate", `Basic realm="hubtest"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		case Bearer:
			// A stub never accepts its own tokens on /v2/: login only needs the challenge.
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="`+r.Service+`"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	})
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		user, _, _ := req.BasicAuth()
		ok := r.check(req)
		r.mu.Lock()
		r.tokenReqs = append(r.tokenReqs, TokenRequest{
			Service: q.Get("service"), ClientID: q.Get("client_id"),
			OfflineToken: q.Get("offline_token"), Username: user, Authorized: ok,
		})
		r.mu.Unlock()
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		resp := map[string]any{"token": "stub-jwt", "access_token": "stub-jwt", "expires_in": 300}
		if q.Get("offline_token") == "true" && r.RefreshToken != "" {
			resp["refresh_token"] = r.RefreshToken
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.Host = srv.Listener.Addr().String()
	realm = "http://" + r.Host + "/token"
	return r
}

func (r *Registry) check(req *http.Request) bool {
	user, pass, ok := req.BasicAuth()
	if !ok {
		return false
	}
	want, known := r.users[user]
	return known && want == pass
}

// TokenRequests returns the token requests received so far.
func (r *Registry) TokenRequests() []TokenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]TokenRequest(nil), r.tokenReqs...)
}
