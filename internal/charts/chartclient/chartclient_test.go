package chartclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/charts/chartclient"
	"github.com/hubctl/hubctl/internal/charts/chartrepo"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/registry"
	"github.com/hubctl/hubctl/internal/transfer"
)

const (
	secretKeyring   = "testdata/helm-test-key.secret"
	publicKeyring   = "testdata/helm-test-key.pub"
	passwordKeyring = "testdata/helm-password-key.secret"
	testKey         = "helm-testing@helm.sh"
)

// newRegistry serves the hub's registry (with its chart checks) on loopback, over a
// SQLite store in a temporary directory, and returns its host:port.
func newRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	blobs, err := blobstore.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{Blobs: blobs, Meta: s, Artifacts: &chartrepo.Hook{Store: s, Blobs: blobs}})
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func newClient() *chartclient.Client {
	e := &transfer.Engine{}
	e.Client = distclient.New(distclient.Options{})
	return &chartclient.Client{Engine: e}
}

// writeChart writes a chart directory name with version and returns it.
func writeChart(t *testing.T, name, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	for f, c := range map[string]string{
		"Chart.yaml":               "apiVersion: v2\nname: " + name + "\nversion: " + version + "\nappVersion: v" + version + "\n",
		"values.yaml":              "replicas: 1\n",
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSignAndVerify: package --sign writes a provenance file helm's way; it verifies
// with the public key, not with another key nor for another archive; an encrypted key
// needs its passphrase.
func TestSignAndVerify(t *testing.T) {
	out := t.TempDir()
	p, err := chartclient.Package(writeChart(t, "app", "1.2.3"), chartclient.PackageOptions{Destination: out,
		Sign: &chartclient.SignOptions{Key: testKey, Keyring: secretKeyring}})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := os.ReadFile(p + ".prov")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-----BEGIN PGP SIGNED MESSAGE-----", "name: app", "app-1.2.3.tgz: sha256:"} {
		if !strings.Contains(string(prov), want) {
			t.Errorf("provenance lacks %q:\n%s", want, prov)
		}
	}
	v, err := chartclient.Verify(p, p+".prov", publicKeyring)
	if err != nil || !strings.Contains(v.SignedBy, testKey) || !strings.HasPrefix(v.Hash, "sha256:") {
		t.Errorf("verify: %+v, %v", v, err)
	}
	if _, err := chartclient.Verify(p, p+".prov", passwordKeyring); err == nil {
		t.Error("verified with a keyring without the signer's key")
	}
	other, err := chartclient.Package(writeChart(t, "app", "1.2.3"), chartclient.PackageOptions{Destination: t.TempDir(), AppVersion: "changed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chartclient.Verify(other, p+".prov", publicKeyring); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("another archive under the same name verified: %v", err)
	}

	// An encrypted key: refused without a passphrase, wrong passphrase refused.
	dir := writeChart(t, "db", "0.1.0")
	for _, c := range []struct {
		pass func(string) ([]byte, error)
		ok   bool
	}{
		{nil, false},
		{func(string) ([]byte, error) { return []byte("wrong"), nil }, false},
		{func(string) ([]byte, error) { return []byte("secret"), nil }, true},
	} {
		dest := t.TempDir()
		p, err := chartclient.Package(dir, chartclient.PackageOptions{Destination: dest,
			Sign: &chartclient.SignOptions{Key: "fake@helm.sh", Keyring: passwordKeyring, Passphrase: c.pass}})
		if c.ok != (err == nil) {
			t.Errorf("passphrase %v: %v", c.pass != nil, err)
		}
		if c.pass == nil && !errors.Is(err, chartclient.ErrPassphraseNeeded) {
			t.Errorf("no passphrase: %v, want ErrPassphraseNeeded", err)
		}
		if err != nil {
			if entries, _ := os.ReadDir(dest); len(entries) != 0 {
				t.Errorf("a failed signing left %v", entries)
			}
			continue
		}
		if _, err := chartclient.Verify(p, p+".prov", passwordKeyring); err != nil {
			t.Errorf("verify the password key's signature: %v", err)
		}
	}
	if _, err := chartclient.Package(dir, chartclient.PackageOptions{Destination: t.TempDir(),
		Sign: &chartclient.SignOptions{Key: "nobody@example.com", Keyring: secretKeyring}}); err == nil {
		t.Error("signed with a key that is not in the keyring")
	}
}

// TestVersions: versions are listed, resolved and pulled in semver order, '+' stored
// as '_' and shown as '+', ranges pick the highest match.
func TestVersions(t *testing.T) {
	host := newRegistry(t)
	c := newClient()
	ctx := t.Context()
	dest := "oci://" + host + "/team"
	for _, v := range []string{"1.2.0", "1.2.10", "1.9.0", "1.10.0", "2.0.0-rc.1", "1.2.3+build.4"} {
		p, err := chartclient.Package(writeChart(t, "app", v), chartclient.PackageOptions{Destination: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Push(ctx, p, dest, transfer.Options{})
		if err != nil {
			t.Fatalf("push %s: %v", v, err)
		}
		if want := ":" + strings.ReplaceAll(v, "+", "_") + "@"; r.Version != v || !strings.Contains(r.Reference, want) {
			t.Errorf("push %s: %+v, want a reference with %s", v, r, want)
		}
	}
	repo, inRef, err := chartclient.ParseChartRef(dest + "/app:1.2.3_build.4")
	if err != nil || inRef != "1.2.3+build.4" || repo.Path != "team/app" {
		t.Errorf("ParseChartRef: %v %q %v", repo, inRef, err)
	}
	vs, err := c.Versions(ctx, repo)
	if want := []string{"2.0.0-rc.1", "1.10.0", "1.9.0", "1.2.10", "1.2.3+build.4", "1.2.0"}; err != nil || !slices.Equal(vs, want) {
		t.Errorf("Versions: %v %v, want %v", vs, err, want)
	}
	for want, got := range map[string]string{
		"":              "1.10.0", // the highest stable
		"~1.2":          "1.2.10",
		"^1":            "1.10.0",
		">=1.2.1 <1.3":  "1.2.10",
		"1.2.3+build.4": "1.2.3+build.4",
		"1.2.3_build.4": "1.2.3+build.4", // the tag's form is accepted too
		">=2.0.0-0":     "2.0.0-rc.1",
		"1.9.0":         "1.9.0",
	} {
		if v, err := c.Resolve(ctx, repo, want); err != nil || v != got {
			t.Errorf("Resolve(%q) = %q, %v; want %q", want, v, err, got)
		}
	}
	if _, err := c.Resolve(ctx, repo, "~3"); err == nil || !strings.Contains(err.Error(), "1.10.0") {
		t.Errorf("Resolve(~3): %v, want an error listing the versions", err)
	}

	dir := t.TempDir()
	r, err := c.Pull(ctx, dest+"/app", "~1.2", dir, chartclient.PullOptions{}, transfer.Options{})
	if err != nil || r.Version != "1.2.10" || r.Path != filepath.Join(dir, "app-1.2.10.tgz") {
		t.Errorf("pull ~1.2: %+v %v", r, err)
	}
	r, err = c.Pull(ctx, dest+"/app:1.2.3_build.4", "", dir, chartclient.PullOptions{}, transfer.Options{})
	if err != nil || r.Path != filepath.Join(dir, "app-1.2.3+build.4.tgz") {
		t.Errorf("pull by the tag: %+v %v", r, err)
	}
	if _, err := os.Stat(r.Path); err != nil {
		t.Error(err)
	}
}

// TestPullVerify: the provenance travels with the chart; --verify accepts it with the
// signer's key and refuses, leaving nothing behind, a chart without one or signed by
// a key the keyring does not hold.
func TestPullVerify(t *testing.T) {
	host := newRegistry(t)
	c := newClient()
	ctx := t.Context()
	dest := "oci://" + host + "/team"
	signed, err := chartclient.Package(writeChart(t, "signed", "1.0.0"), chartclient.PackageOptions{Destination: t.TempDir(),
		Sign: &chartclient.SignOptions{Key: testKey, Keyring: secretKeyring}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := chartclient.Package(writeChart(t, "plain", "1.0.0"), chartclient.PackageOptions{Destination: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{signed, plain} {
		if _, err := c.Push(ctx, p, dest, transfer.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	r, err := c.Pull(ctx, dest+"/signed", "", dir, chartclient.PullOptions{VerifyKeyring: publicKeyring}, transfer.Options{})
	if err != nil || !strings.Contains(r.SignedBy, testKey) || r.ProvPath == "" {
		t.Fatalf("verified pull: %+v %v", r, err)
	}
	for _, c2 := range []struct{ chart, keyring, want string }{
		{"signed", passwordKeyring, "verify"},
		{"plain", publicKeyring, "no provenance"},
	} {
		dir := t.TempDir()
		_, err := c.Pull(ctx, dest+"/"+c2.chart, "", dir, chartclient.PullOptions{VerifyKeyring: c2.keyring}, transfer.Options{})
		if err == nil || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("%s with %s: %v, want an error about %q", c2.chart, c2.keyring, err, c2.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: a refused pull left %v", c2.chart, entries)
		}
	}
}
