package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/server"
)

// newHubDatabase makes the database of a hub in data, as a first serve would, with the
// given users (password "old-password" unless robots).
func newHubDatabase(t *testing.T, data string, users ...accounts.User) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"data": data}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.DB.Path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := server.OpenDatabase(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, u := range users {
		if !u.Robot {
			if u.PasswordHash, err = password.Hash("old-password"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
}

// passwordOf checks which of the candidate passwords user has now.
func passwordIs(t *testing.T, data, user, pw string) bool {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"data": data}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := server.OpenDatabase(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.GetUser(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := password.Verify(pw, u.PasswordHash)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestAdminResetPassword(t *testing.T) {
	data := t.TempDir()
	newHubDatabase(t, data, accounts.User{Name: "admin", Admin: true}, accounts.User{Name: "alice"})

	code, out, errOut := runIO(t, t.TempDir(), "new-admin-password\n", false, "admin", "reset-password", "--data", data)
	if code != 0 || out != "" || !strings.Contains(errOut, "Password of admin reset") {
		t.Fatalf("reset-password: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !passwordIs(t, data, "admin", "new-admin-password") {
		t.Error("the admin password was not changed")
	}
	if !passwordIs(t, data, "alice", "old-password") {
		t.Error("alice's password changed too")
	}

	code, _, errOut = runIO(t, t.TempDir(), "alice-new-password", false, "admin", "reset-password", "alice", "--data", data)
	if code != 0 || !passwordIs(t, data, "alice", "alice-new-password") {
		t.Fatalf("reset-password alice: exit %d, stderr %q", code, errOut)
	}

	for _, c := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"unknown user", "long-enough-pw\n", []string{"bob", "--data", data}, "no user bob"},
		{"short password", "short\n", []string{"--data", data}, "at least 8 characters"},
		{"two lines", "a-password\nanother\n", []string{"--data", data}, "one line"},
		{"no hub", "long-enough-pw\n", []string{"--data", filepath.Join(data, "nothing")}, "no hub here"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runIO(t, t.TempDir(), c.stdin, false, append([]string{"admin", "reset-password"}, c.args...)...)
			if code == 0 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want one line with %q", code, errOut, c.want)
			}
		})
	}
	if !passwordIs(t, data, "admin", "new-admin-password") {
		t.Error("a failed reset changed the admin password")
	}
	// Each reset that happened is audited (in its own transaction), the failed ones not.
	cfg, err := config.Load(config.Sources{Flags: map[string]string{"data": data}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := server.OpenDatabase(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	es, err := db.ListAudit(context.Background(), accounts.AuditFilter{Action: "password.reset"})
	if err != nil || len(es) != 2 || es[0].Target != "alice" || es[1].Target != "admin" || es[0].Actor != "system" {
		t.Errorf("password.reset entries %+v (%v), want alice's and admin's by system", es, err)
	}
}
