package server

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/config"
)

// apiCall sends a hub API request with basic credentials and returns the status.
func apiCall(t *testing.T, base, method, path, user, pass, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDeletedBootstrapAdminStaysDeleted is issue 12 items 1 and 5: the bootstrap admin
// is made once per database. Deleted, it does not come back at the next start with the
// password from HUBCTL_ADMIN_PASSWORD; and a user who then takes the name "admin"
// cannot stop the server from starting.
func TestDeletedBootstrapAdminStaysDeleted(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token"})
	base := "http://" + r.addr
	for _, step := range []struct {
		method, path, user, pass, body string
		want                           int
	}{
		{"POST", "/api/v1/users", "admin", testAdminPassword, `{"name":"root2","password":"root2-password","admin":true}`, 201},
		{"POST", "/api/v1/users", "admin", testAdminPassword, `{"name":"mallory","password":"mallory-password"}`, 201},
		{"DELETE", "/api/v1/users/admin", "root2", "root2-password", "", 204},
		{"POST", "/api/v1/orgs", "mallory", "mallory-password", `{"name":"admin"}`, 201},
	} {
		if got := apiCall(t, base, step.method, step.path, step.user, step.pass, step.body); got != step.want {
			t.Fatalf("%s %s as %s: %d, want %d", step.method, step.path, step.user, got, step.want)
		}
	}
	r.stop(t)

	// The same data directory, HUBCTL_ADMIN_PASSWORD still set (start sets it).
	again := start(t, map[string]string{"auth.mode": "token", "data": r.data})
	base = "http://" + again.addr
	if got := apiCall(t, base, "GET", "/api/v1/user", "admin", testAdminPassword, ""); got != 401 {
		t.Fatalf("the deleted admin signs in after a restart: %d", got)
	}
	if got := apiCall(t, base, "GET", "/api/v1/orgs/admin", "mallory", "mallory-password", ""); got != 200 {
		t.Fatalf("mallory's organisation admin after the restart: %d", got)
	}
	if got := apiCall(t, base, "GET", "/api/v1/user", "root2", "root2-password", ""); got != 200 {
		t.Fatalf("the remaining admin after the restart: %d", got)
	}
	if strings.Contains(again.log.String(), "create the admin account") {
		t.Fatalf("the start tried to make the admin again: %s", again.log.String())
	}
}

// TestPostgresURLIsNotADirectory is issue 16 item 4: serve made a directory of the
// database URL's "parent", leaving the password in a directory name in the working
// directory.
func TestPostgresURLIsNotADirectory(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	cfg, err := config.Load(config.Sources{Flags: map[string]string{
		"addr": "127.0.0.1:0", "data": t.TempDir(), "auth.mode": "none",
		"db.path": "postgres://hubctl:s3cret-pw@127.0.0.1:1/hub?connect_timeout=2",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), cfg, slog.New(slog.DiscardHandler), io.Discard, nil); err == nil {
		t.Fatal("serve started on a database nothing listens for")
	}
	entries, err := os.ReadDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("serve left %q in the working directory", e.Name())
	}
}
