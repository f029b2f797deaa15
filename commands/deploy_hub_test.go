package commands

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/hubhistory"
)

// TestDeployHubPullAuth: the hub's pull token is only ever handed to the engine for
// the spec's own repositories on that hub, and only once a deploy runs; any other
// image (another registry, another repository of the hub: the proxy image) gets the
// caller's credentials, as without a hub.
func TestDeployHubPullAuth(t *testing.T) {
	hub := &deployHub{host: "hub.example.com:5000", hist: hubhistory.New(nil, "acme")}
	s := &deploy.Spec{Service: deploy.Service{Name: "web", Image: "hub.example.com:5000/acme/web:1"},
		Accessories: []deploy.Accessory{{Name: "db", Image: "docker.io/library/postgres:17"}}}
	hist := &hubDeployHistory{History: hub.hist}
	var asked []string
	fallback := func(image string) (string, error) { asked = append(asked, image); return "caller", nil }
	auth := hub.pullAuth(t.Context(), hist, s, fallback)
	for _, im := range []string{
		"docker.io/library/postgres:17@sha256:" + strings.Repeat("a", 64),
		"hub.example.com:5000/other/hubctl-proxy:dev",
		"hub.example.com/acme/web:1", // another host: the port is part of it
		"evil.example.com/acme/web:1",
	} {
		if got, err := auth(im); err != nil || got != "caller" {
			t.Errorf("%s: %q %v, want the caller's credentials", im, got, err)
		}
	}
	if len(asked) != 4 {
		t.Errorf("fallback asked for %v", asked)
	}
	// The service's image before any deploy began: no token to mint, refused.
	if got, err := auth("hub.example.com:5000/acme/web@sha256:" + strings.Repeat("b", 64)); err == nil || got != "" || !strings.Contains(err.Error(), "no deploy is running") {
		t.Errorf("the hub's image before Begin: %q %v", got, err)
	}
}

// TestDeployHubJobToken: in a workflow step, `hubctl deploy --hub` signs in to the
// step's hub with the job token, read again from $HUBCTL_TOKEN_FILE for every request
// (the hub renews it there), and to no other host.
func TestDeployHubJobToken(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"deploys":[]}`))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("job-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HUBCTL_HUB": srv.URL, "HUBCTL_TOKEN_FILE": file, "HUBCTL_TOKEN": "job-token-0"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ho := &HubOptions{Registry: host, ConfigDir: t.TempDir(), LookupEnv: lookup}
	c, err := ho.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListDeploys(t.Context(), "acme", "web", 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("job-token-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListDeploys(t.Context(), "acme", "web", 0, 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(seen)
	mu.Unlock()
	if !slices.Equal(got, []string{"Bearer job-token-1", "Bearer job-token-2"}) {
		t.Fatalf("Authorization sent: %q", got)
	}
	// Another host is not the job's hub: the stored login (none here) applies.
	other := &HubOptions{Registry: "127.0.0.1:1", ConfigDir: t.TempDir(), LookupEnv: lookup}
	oc, err := other.client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.ListDeploys(t.Context(), "acme", "web", 0, 0); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("another host: %v", err)
	}
}
