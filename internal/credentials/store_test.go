package credentials_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker/cli/cli/config"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/credentials/credentialstest"
)

// configJSON is the part of config.json the tests look at, decoded independently of
// docker's package so the on-disk format itself is asserted.
type configJSON struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
		Username      string `json:"username"`
		Password      string `json:"password"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

func readConfig(t *testing.T, dir string) configJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c configJSON
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	return c
}

func writeConfig(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, dir string) *credentials.Store {
	t.Helper()
	s, err := credentials.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", credentials.DockerHubKey},
		{"docker.io", credentials.DockerHubKey},
		{"index.docker.io", credentials.DockerHubKey},
		{"registry-1.docker.io", credentials.DockerHubKey},
		{"https://index.docker.io/v1/", credentials.DockerHubKey},
		{"https://docker.io", credentials.DockerHubKey},
		{"registry.example.com", "registry.example.com"},
		{"registry.example.com/", "registry.example.com"},
		{"https://registry.example.com/", "registry.example.com"},
		{"http://127.0.0.1:5000/v2/", "127.0.0.1:5000"},
		{"localhost:5000", "localhost:5000"},
		{"[::1]:5000", "[::1]:5000"},
		{"https://[::1]:5000/", "[::1]:5000"},
	}
	for _, tt := range tests {
		if got := credentials.NormalizeHost(tt.in); got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := credentials.RegistryHost("docker.io"); got != "registry-1.docker.io" {
		t.Errorf("RegistryHost(docker.io) = %q", got)
	}
}

func TestFileStoreRoundTrip(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	dir := t.TempDir()
	s := load(t, dir)
	if c, err := s.Get("reg.example:5000"); err != nil || !c.IsAnonymous() {
		t.Fatalf("empty store: %+v, %v", c, err)
	}
	if err := s.Save("https://reg.example:5000/", credentials.Credentials{Username: "alice", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save("docker.io", credentials.Credentials{Username: "bob", IdentityToken: "refresh-1"}); err != nil {
		t.Fatal(err)
	}

	cfg := readConfig(t, dir)
	a := cfg.Auths["reg.example:5000"]
	if want := base64.StdEncoding.EncodeToString([]byte("alice:s3cret")); a.Auth != want {
		t.Errorf("auth = %q, want %q", a.Auth, want)
	}
	if a.Username != "" || a.Password != "" {
		t.Errorf("plain username/password written: %+v", a)
	}
	hub := cfg.Auths[credentials.DockerHubKey]
	if hub.IdentityToken != "refresh-1" {
		t.Errorf("identitytoken = %q", hub.IdentityToken)
	}

	// A fresh load reads back what was written, by any spelling of the host.
	s = load(t, dir)
	c, err := s.Get("reg.example:5000/")
	if err != nil || c != (credentials.Credentials{Username: "alice", Password: "s3cret"}) {
		t.Errorf("Get = %+v, %v", c, err)
	}
	c, err = s.Resolve("index.docker.io")
	if err != nil || c.Username != "bob" || c.IdentityToken != "refresh-1" {
		t.Errorf("Resolve(index.docker.io) = %+v, %v", c, err)
	}
	if c, _ := s.Resolve("other.example"); !c.IsAnonymous() {
		t.Errorf("unknown host resolved to %+v", c)
	}

	if err := s.Erase("reg.example:5000"); err != nil {
		t.Fatal(err)
	}
	if _, ok := readConfig(t, dir).Auths["reg.example:5000"]; ok {
		t.Error("erase left the entry in config.json")
	}
	if _, ok := readConfig(t, dir).Auths[credentials.DockerHubKey]; !ok {
		t.Error("erase removed another host's entry")
	}
}

// TestDockerReadsWhatWeWrite loads the file with docker's own loader, the way the
// docker CLI does, and checks it finds the credentials.
func TestDockerReadsWhatWeWrite(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	dir := t.TempDir()
	writeConfig(t, dir, `{"auths":{},"psFormat":"table {{.ID}}"}`)
	if err := load(t, dir).Save("127.0.0.1:5000", credentials.Credentials{Username: "alice", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	cf, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := cf.GetAuthConfig("127.0.0.1:5000")
	if err != nil || ac.Username != "alice" || ac.Password != "pw" {
		t.Errorf("docker sees %+v, %v", ac, err)
	}
	if cf.PsFormat != "table {{.ID}}" {
		t.Errorf("unrelated setting lost: psFormat %q", cf.PsFormat)
	}
}

func TestEraseLegacyURLKeys(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("old:pw"))
	writeConfig(t, dir, `{"auths":{"https://reg.example":{"auth":"`+auth+`"}}}`)
	s := load(t, dir)
	if c, _ := s.Get("reg.example"); c.Username != "old" {
		t.Fatalf("legacy entry not found: %+v", c)
	}
	if err := s.Erase("reg.example"); err != nil {
		t.Fatal(err)
	}
	if c, _ := load(t, dir).Get("reg.example"); !c.IsAnonymous() {
		t.Errorf("after erase: %+v", c)
	}
}

func TestMalformedConfigIsAnError(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{"auths":`)
	if _, err := credentials.Load(dir); err == nil {
		t.Fatal("malformed config.json loaded without error")
	}
}

func TestCredentialHelpers(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	h := credentialstest.BuildHelper(t)
	tests := []struct {
		name   string
		config string
	}{
		{"credsStore", `{"credsStore":"` + credentialstest.HelperName + `"}`},
		{"credHelpers", `{"credHelpers":{"reg.example":"` + credentialstest.HelperName + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, tt.config)
			s := load(t, dir)
			if c, err := s.Get("reg.example"); err != nil || !c.IsAnonymous() {
				t.Fatalf("before save: %+v, %v", c, err)
			}
			if err := s.Save("reg.example", credentials.Credentials{Username: "alice", Password: "pw"}); err != nil {
				t.Fatal(err)
			}
			e, ok := h.Entries(t)["reg.example"]
			if !ok || e.Username != "alice" || e.Secret != "pw" {
				t.Errorf("helper holds %+v", h.Entries(t))
			}
			if a := readConfig(t, dir).Auths["reg.example"]; a.Auth != "" || a.IdentityToken != "" {
				t.Errorf("secret leaked into config.json: %+v", a)
			}
			if c, err := load(t, dir).Get("reg.example"); err != nil || c.Username != "alice" || c.Password != "pw" {
				t.Errorf("Get = %+v, %v", c, err)
			}

			// A refresh token goes to the helper as docker's "<token>" user.
			if err := s.Save("reg.example", credentials.Credentials{Username: "alice", IdentityToken: "rt"}); err != nil {
				t.Fatal(err)
			}
			if e := h.Entries(t)["reg.example"]; e.Username != "<token>" || e.Secret != "rt" {
				t.Errorf("helper holds %+v", e)
			}
			if c, _ := load(t, dir).Get("reg.example"); c.IdentityToken != "rt" {
				t.Errorf("Get = %+v", c)
			}

			if err := s.Erase("reg.example"); err != nil {
				t.Fatal(err)
			}
			if _, ok := h.Entries(t)["reg.example"]; ok {
				t.Error("erase left the entry in the helper")
			}
		})
	}

	// credHelpers is per host: another host still goes to config.json.
	dir := t.TempDir()
	writeConfig(t, dir, `{"credHelpers":{"reg.example":"`+credentialstest.HelperName+`"}}`)
	if err := load(t, dir).Save("other.example", credentials.Credentials{Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	if readConfig(t, dir).Auths["other.example"].Auth == "" {
		t.Error("other.example not stored in config.json")
	}
	if _, ok := h.Entries(t)["other.example"]; ok {
		t.Error("other.example went to the helper")
	}
}

func TestMissingHelperIsAnError(t *testing.T) {
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	writeConfig(t, dir, `{"credsStore":"hubtest-missing"}`)
	if err := load(t, dir).Save("reg.example", credentials.Credentials{Username: "u", Password: "p"}); err == nil {
		t.Fatal("save through a missing helper succeeded")
	}
}

func TestAnonymousResolver(t *testing.T) {
	var r credentials.Resolver = credentials.AnonymousResolver{}
	if c, err := r.Resolve("reg.example"); err != nil || !c.IsAnonymous() {
		t.Errorf("got %+v, %v", c, err)
	}
}
