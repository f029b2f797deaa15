package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/hubctl/hubctl/internal/charts/chartclient"
	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/server/servertest"
	"github.com/hubctl/hubctl/internal/transfer"
)

type staticCreds map[string]credentials.Credentials

func (s staticCreds) Resolve(host string) (credentials.Credentials, error) { return s[host], nil }

// TestLocalChart loads a chart directory and its archive; a version the chart is
// not, and a path that does not exist, are refused.
func TestLocalChart(t *testing.T) {
	h := New(Options{})
	ctx := context.Background()
	dir := writeTestChart(t, "0.1.0")
	tgz := packageTestChart(t, "0.2.0", t.TempDir())
	for _, c := range []struct{ chart, version, want string }{{dir, "", "0.1.0"}, {dir, "0.1.0", "0.1.0"}, {tgz, "", "0.2.0"}, {"file://" + tgz, "", "0.2.0"}} {
		ch, done, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: c.chart, Version: c.version})
		if err != nil {
			t.Fatalf("%s: %v", c.chart, err)
		}
		done()
		if ch.Metadata.Version != c.want {
			t.Errorf("%s: version %s, want %s", c.chart, ch.Metadata.Version, c.want)
		}
	}
	if _, _, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: dir, Version: "9.9.9"}); err == nil || !strings.Contains(err.Error(), "not 9.9.9") {
		t.Errorf("a wrong version: %v", err)
	}
	if _, _, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: filepath.Join(t.TempDir(), "nope")}); err == nil || !strings.Contains(err.Error(), "not a local chart") {
		t.Errorf("a missing path: %v", err)
	}
	if _, _, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "oci://127.0.0.1:1/acme/web"}); err == nil || !strings.Contains(err.Error(), "no registry client") {
		t.Errorf("oci without a client: %v", err)
	}
}

// TestOCIChart pulls a chart pushed to a real hub (token auth) with the deployer's
// credentials; wrong credentials get a clear refusal and leave nothing behind.
func TestOCIChart(t *testing.T) {
	const password = "kube-test-password"
	host := servertest.Start(t, "token", password)
	client := func(pass string) *chartclient.Client {
		e := &transfer.Engine{}
		e.Client = distclient.New(distclient.Options{Credentials: staticCreds{host: {Username: "admin", Password: pass}}})
		return &chartclient.Client{Engine: e}
	}
	ctx := context.Background()
	tgz := packageTestChart(t, "0.3.0", t.TempDir())
	if _, err := client(password).Push(ctx, tgz, "oci://"+host+"/acme/charts", transfer.Options{}); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	h := New(Options{Charts: client(password), TempDir: tmp})
	ch, done, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "oci://" + host + "/acme/charts/web", Version: "0.3.0"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.Name != "web" || ch.Metadata.Version != "0.3.0" {
		t.Errorf("pulled %s %s", ch.Metadata.Name, ch.Metadata.Version)
	}
	done()
	// newest when no version is named
	if ch, done, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "oci://" + host + "/acme/charts/web"}); err != nil || ch.Metadata.Version != "0.3.0" {
		t.Errorf("newest: %v", err)
	} else {
		done()
	}

	bad := New(Options{Charts: client("wrong"), TempDir: tmp})
	if _, _, err := bad.loadChart(ctx, &deploy.Kubernetes{Chart: "oci://" + host + "/acme/charts/web", Version: "0.3.0"}); err == nil {
		t.Error("wrong credentials pulled the chart")
	} else {
		t.Logf("wrong credentials: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in the temp dir: %v", left)
	}
}

// repoServer serves a classic chart repository (index.yaml and archives, as helm
// repo index writes them) that demands a login, and records the Authorization
// header of each request.
type repoServer struct {
	*httptest.Server
	dir  string
	mu   sync.Mutex
	auth map[string]string // path → Authorization
}

func newRepoServer(t *testing.T, user, pass string) *repoServer {
	rs := &repoServer{dir: t.TempDir(), auth: map[string]string{}}
	files := http.FileServer(http.Dir(rs.dir))
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.auth[r.URL.Path] = r.Header.Get("Authorization")
		rs.mu.Unlock()
		if user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *repoServer) authOf(path string) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.auth[path]
}

// index writes index.yaml for the archives in the directory, their URLs under base.
func (rs *repoServer) index(t *testing.T, base string) *repo.IndexFile {
	idx, err := repo.IndexDirectory(rs.dir, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(rs.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestRepoChart fetches charts from a classic repository: the newest stable, an
// exact version, a range; the login goes to the repository only (not to a host its
// index points at); an archive whose digest differs from the index is refused.
func TestRepoChart(t *testing.T) {
	ctx := context.Background()
	rs := newRepoServer(t, "alice", "s3cret")
	for _, v := range []string{"0.1.0", "0.2.0", "0.3.0-rc.1"} {
		packageTestChart(t, v, rs.dir)
	}
	rs.index(t, rs.URL)
	host := strings.TrimPrefix(rs.URL, "http://")
	h := New(Options{RepoCredentials: staticCreds{host: {Username: "alice", Password: "s3cret"}}})
	for version, want := range map[string]string{"": "0.2.0", "0.1.0": "0.1.0", "~0.1": "0.1.0", "0.3.0-rc.1": "0.3.0-rc.1"} {
		ch, done, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "web", Repo: rs.URL, Version: version})
		if err != nil {
			t.Fatalf("version %q: %v", version, err)
		}
		done()
		if ch.Metadata.Version != want {
			t.Errorf("version %q: got %s, want %s", version, ch.Metadata.Version, want)
		}
	}
	if _, _, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "web", Repo: rs.URL, Version: "9.0.0"}); err == nil {
		t.Error("a version the index lacks was found")
	}
	if _, _, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "nope", Repo: rs.URL}); err == nil {
		t.Error("a chart the index lacks was found")
	}
	anon := New(Options{})
	if _, _, err := anon.loadChart(ctx, &deploy.Kubernetes{Chart: "web", Repo: rs.URL}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without the login: %v", err)
	}
	if _, _, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "web", Repo: "http://alice:pw@" + host}); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("credentials in the URL: %v", err)
	}

	// an index that sends the archive to another host gets no login there
	other := newRepoServer(t, "", "")
	packageTestChart(t, "0.1.0", other.dir)
	evil := newRepoServer(t, "alice", "s3cret")
	idx := other.index(t, other.URL) // URLs point at the other server
	if err := idx.WriteFile(filepath.Join(evil.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	eh := New(Options{RepoCredentials: staticCreds{strings.TrimPrefix(evil.URL, "http://"): {Username: "alice", Password: "s3cret"}}})
	ch, done, err := eh.loadChart(ctx, &deploy.Kubernetes{Chart: "web", Repo: evil.URL})
	if err != nil {
		t.Fatal(err)
	}
	done()
	if ch.Metadata.Version != "0.1.0" {
		t.Errorf("got %s", ch.Metadata.Version)
	}
	if a := evil.authOf("/index.yaml"); a == "" {
		t.Error("the repository itself got no login")
	}
	if a := other.authOf("/web-0.1.0.tgz"); a != "" {
		t.Errorf("the other host got the login: %q", a)
	}

	// an archive that is not the one the index describes
	if err := os.WriteFile(filepath.Join(rs.dir, "web-0.2.0.tgz"), mustRead(t, filepath.Join(rs.dir, "web-0.1.0.tgz")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.loadChart(ctx, &deploy.Kubernetes{Chart: "web", Repo: rs.URL, Version: "0.2.0"}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("a swapped archive: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
