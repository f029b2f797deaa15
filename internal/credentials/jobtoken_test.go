package credentials

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fixed Credentials

func (f fixed) Resolve(string) (Credentials, error) { return Credentials(f), nil }

// TestJobTokenResolver: in a workflow step the hub gets the job's token, read from
// $HUBCTL_TOKEN_FILE every time (so a renewal is seen) before $HUBCTL_TOKEN; every
// other registry gets the stored login, never the job token; outside a job nothing
// changes.
func TestJobTokenResolver(t *testing.T) {
	stored := fixed{Username: "u", Password: "p"}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvHub: "http://hub.test:5000", EnvTokenFile: file, EnvToken: "from-env"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	r := JobTokenFromEnv(stored, lookup)
	get := func(host string) Credentials {
		t.Helper()
		c, err := r.Resolve(host)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := get("hub.test:5000"); c.RegistryToken != "from-file-1" || c.Username != "" {
		t.Fatalf("hub: %+v", c)
	}
	if err := os.WriteFile(file, []byte("from-file-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c := get("hub.test:5000"); c.RegistryToken != "from-file-2" {
		t.Fatalf("after renewal: %+v", c)
	}
	for _, other := range []string{"hub.test:5001", "hub.test", "docker.io", "evil.test:5000"} {
		if c := get(other); c.RegistryToken != "" || c.Username != "u" {
			t.Fatalf("%s got %+v", other, c)
		}
	}
	// An empty file falls back to $HUBCTL_TOKEN; a missing one is an error that says which.
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if c := get("hub.test:5000"); c.RegistryToken != "from-env" {
		t.Fatalf("empty file: %+v", c)
	}
	os.Remove(file)
	if _, err := r.Resolve("hub.test:5000"); err == nil || !strings.Contains(err.Error(), EnvTokenFile) {
		t.Fatalf("missing file: %v", err)
	}
	// Only $HUBCTL_TOKEN.
	delete(env, EnvTokenFile)
	if c, err := JobTokenFromEnv(stored, lookup).Resolve("hub.test:5000"); err != nil || c.RegistryToken != "from-env" {
		t.Fatalf("env only: %+v %v", c, err)
	}
	// Outside a job (no hub), the stored logins as they are.
	delete(env, EnvHub)
	if _, ok := JobTokenFromEnv(stored, lookup).(fixed); !ok {
		t.Fatal("wrapped outside a job")
	}
	if (Credentials{RegistryToken: "x"}).IsAnonymous() {
		t.Fatal("a registry token is anonymous")
	}
}
