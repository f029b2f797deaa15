package chartrepo_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartrepo"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/registry"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// eachDB runs fn per database with a function opening stores on one new, empty
// database of that kind (two opens are two hubs sharing it).
func eachDB(t *testing.T, fn func(t *testing.T, open func(t *testing.T) *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hub.db")
		fn(t, func(t *testing.T) *sqlstore.Store {
			s, err := sqlstore.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		fn(t, func(t *testing.T) *sqlstore.Store {
			s, err := sqlstore.OpenPostgres(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// hub is one hub's registry and chart repository on a store, served over loopback.
type hub struct {
	url   string
	store *sqlstore.Store
}

// users of the tests, by the X-Test-User header; anonymous without it.
var testUsers = map[string]accounts.User{}

func newHub(t *testing.T, s *sqlstore.Store, blobsDir string, withAuth bool) *hub {
	t.Helper()
	blobs, err := blobstore.NewFS(blobsDir)
	if err != nil {
		t.Fatal(err)
	}
	hook := &chartrepo.Hook{Store: s, Blobs: blobs}
	reg := registry.New(registry.Options{Blobs: blobs, Meta: s, Artifacts: hook})
	o := chartrepo.Options{Store: s, Blobs: blobs, Registry: reg}
	if withAuth {
		o.Auth = &chartrepo.Auth{
			Principal: func(_ http.ResponseWriter, r *http.Request) (*authz.Principal, error) {
				name := r.Header.Get("X-Test-User")
				if name == "" {
					return nil, nil
				}
				u, err := s.GetUser(r.Context(), name)
				if err != nil {
					return nil, err
				}
				return &authz.Principal{User: &u}, nil
			},
			Policy: &authz.Policy{Store: s},
		}
	}
	ch := chartrepo.New(o)
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/charts/", ch)
	mux.Handle("/api/", ch)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &hub{url: srv.URL, store: s}
}

// chartArchive makes a chart archive of name and version; note varies its content.
func chartArchive(t testing.TB, name, version, note string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for f, c := range map[string]string{
		"Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: %q\n", name, version, note),
		"values.yaml": "replicas: 1\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + f, Mode: 0o644, Size: int64(len(c)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pushBlobs uploads an artifact's blobs into repo.
func (h *hub) pushBlobs(t testing.TB, repo string, a *charts.Artifact) {
	t.Helper()
	for _, b := range a.Blobs() {
		resp, err := http.Post(h.url+"/v2/"+repo+"/blobs/uploads/?digest="+b.Desc.Digest.String(), "application/octet-stream", bytes.NewReader(b.Data))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("blob upload: %s", resp.Status)
		}
	}
}

// putManifest puts an artifact's manifest under its version's tag and returns the
// status and body.
func (h *hub) putManifest(t testing.TB, repo string, a *charts.Artifact) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, h.url+"/v2/"+repo+"/manifests/"+charts.TagOf(a.Meta.Version), bytes.NewReader(a.Manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// push pushes chart name version (content note) to NS/name.
func (h *hub) push(t testing.TB, ns, name, version, note string) {
	t.Helper()
	a, err := charts.NewArtifact(chartArchive(t, name, version, note), nil, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	repo := ns + "/" + name
	h.pushBlobs(t, repo, a)
	if code, body := h.putManifest(t, repo, a); code != http.StatusCreated {
		t.Fatalf("push %s %s: %d %s", repo, version, code, body)
	}
}

// get fetches path as user ("" anonymous) with If-None-Match etag ("" none).
func (h *hub) get(t testing.TB, path, user, etag string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), string(b)
}

// TestConcurrentFirstPushes: pushes of one chart version with different archives at
// once: exactly one is stored, the others get the 409 a later push gets, on both
// databases, through two hubs sharing the database (replicas).
func TestConcurrentFirstPushes(t *testing.T) {
	eachDB(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		blobs := t.TempDir()
		hubs := []*hub{newHub(t, open(t), blobs, false), newHub(t, open(t), blobs, false)}
		const pushers = 4
		for round := range 4 {
			version := fmt.Sprintf("1.0.%d", round)
			as := make([]*charts.Artifact, pushers)
			for i := range as {
				a, err := charts.NewArtifact(chartArchive(t, "app", version, fmt.Sprint("content ", i)), nil, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				as[i] = a
				hubs[i%2].pushBlobs(t, "team/app", a)
			}
			codes := make([]int, pushers)
			bodies := make([]string, pushers)
			var wg sync.WaitGroup
			for i := range as {
				wg.Go(func() { codes[i], bodies[i] = hubs[i%2].putManifest(t, "team/app", as[i]) })
			}
			wg.Wait()
			won := -1
			for i, c := range codes {
				switch {
				case c == http.StatusCreated && won < 0:
					won = i
				case c == http.StatusCreated:
					t.Errorf("round %d: pushes %d and %d of version %s with different archives both succeeded", round, won, i, version)
				case c != http.StatusConflict || !strings.Contains(bodies[i], "already exists"):
					t.Errorf("round %d: push %d: %d %s, want 201 or 409", round, i, c, bodies[i])
				}
			}
			if won < 0 {
				t.Fatalf("round %d: no push succeeded: %v %v", round, codes, bodies)
			}
			// What the winner pushed is what the index serves, and a later push of the
			// winner's archive is still no overwrite.
			_, _, body := hubs[1].get(t, "/charts/team/index.yaml", "", "")
			if want := as[won].ArchiveDesc.Digest.Encoded(); !strings.Contains(body, want) {
				t.Errorf("round %d: index does not list the stored archive (%s):\n%s", round, want, body)
			}
			again, err := charts.NewArtifact(as[won].Archive, nil, time.Now().Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			hubs[0].pushBlobs(t, "team/app", again)
			if code, body := hubs[0].putManifest(t, "team/app", again); code != http.StatusCreated {
				t.Errorf("round %d: the stored archive pushed again: %d %s", round, code, body)
			}
		}
	})
}

// TestIndexFollowsChanges: two hubs on one database (replicas) keep their indexes in
// memory; a change made through either, or by the store directly, is in the next
// answer of both, and an unchanged index answers If-None-Match with 304.
func TestIndexFollowsChanges(t *testing.T) {
	eachDB(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		blobs := t.TempDir()
		a, b := newHub(t, open(t), blobs, false), newHub(t, open(t), blobs, false)
		a.push(t, "team", "app", "1.0.0", "one")
		for _, h := range []*hub{a, b} {
			if code, _, body := h.get(t, "/charts/team/index.yaml", "", ""); code != http.StatusOK || !strings.Contains(body, "version: 1.0.0") {
				t.Fatalf("first index: %d\n%s", code, body)
			}
		}
		_, etag, _ := b.get(t, "/charts/team/index.yaml", "", "")
		if code, _, _ := b.get(t, "/charts/team/index.yaml", "", etag); code != http.StatusNotModified {
			t.Errorf("unchanged index with its ETag: %d, want 304", code)
		}

		a.push(t, "team", "app", "1.1.0", "two")
		code, etag2, body := b.get(t, "/charts/team/index.yaml", "", etag)
		if code != http.StatusOK || etag2 == etag || !strings.Contains(body, "version: 1.1.0") {
			t.Errorf("after a push through the other hub: %d etag %s (was %s)\n%s", code, etag2, etag, body)
		}
		_, _, js := b.get(t, "/charts/team/index.json", "", "")
		if !strings.Contains(js, `"version":"1.1.0"`) || !strings.Contains(js, `"version":"1.0.0"`) {
			t.Errorf("index.json after the push:\n%s", js)
		}

		req, _ := http.NewRequest(http.MethodDelete, a.url+"/api/team/charts/app/1.1.0", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delete: %s", resp.Status)
		}
		code, etag3, body := b.get(t, "/charts/team/index.yaml", "", etag2)
		if code != http.StatusOK || strings.Contains(body, "version: 1.1.0") || etag3 != etag {
			t.Errorf("after the delete: %d etag %s (want the first one back, %s)\n%s", code, etag3, etag, body)
		}
	})
}

// TestIndexVisibility: the index lists what the caller may pull, per repository, and
// callers who see the same get the same ETag; a visibility change is in the next
// answer.
func TestIndexVisibility(t *testing.T) {
	eachDB(t, func(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
		s := open(t)
		ctx := t.Context()
		for _, u := range []string{"owner", "member", "single", "outsider"} {
			if _, err := s.CreateUser(ctx, accounts.User{Name: u, PasswordHash: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.CreateOrg(ctx, "team", "owner")
		must(err)
		must(s.CreateTeam(ctx, accounts.Team{Org: "team", Name: "all"}))
		must(s.AddTeamMember(ctx, "team", "all", "member"))
		must(s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "team", Team: "all", Role: accounts.RoleRead}))
		must(s.CreateTeam(ctx, accounts.Team{Org: "team", Name: "db"}))
		must(s.AddTeamMember(ctx, "team", "db", "single"))
		must(s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "team", Team: "db", Repository: "team/db", Role: accounts.RoleWrite}))

		h := newHub(t, s, t.TempDir(), false)
		h.push(t, "team", "app", "1.0.0", "app")
		h.push(t, "team", "db", "2.0.0", "db")
		h.push(t, "team", "web", "3.0.0", "web")
		must(s.SetRepositoryVisibility(ctx, "team/app", accounts.Public))
		authed := newHub(t, s, t.TempDir(), true)

		lists := func(body string) string {
			var got []string
			for _, c := range []string{"app", "db", "web"} {
				if strings.Contains(body, "\n  "+c+":\n") {
					got = append(got, c)
				}
			}
			return strings.Join(got, " ")
		}
		etags := map[string]string{}
		for _, c := range []struct{ user, want string }{
			{"", "app"}, {"outsider", "app"}, {"single", "app db"}, {"member", "app db web"}, {"owner", "app db web"},
		} {
			code, etag, body := authed.get(t, "/charts/team/index.yaml", c.user, "")
			if code != http.StatusOK || lists(body) != c.want {
				t.Errorf("%q: %d lists %q, want %q", c.user, code, lists(body), c.want)
			}
			etags[c.user] = etag
		}
		if etags[""] != etags["outsider"] || etags["member"] != etags["owner"] || etags[""] == etags["single"] || etags["single"] == etags["member"] {
			t.Errorf("ETags do not follow the listings: %v", etags)
		}

		must(s.SetRepositoryVisibility(ctx, "team/web", accounts.Public))
		if _, _, body := authed.get(t, "/charts/team/index.yaml", "", ""); lists(body) != "app web" {
			t.Errorf("anonymous after team/web was made public: %q", lists(body))
		}
		must(s.SetRepositoryVisibility(ctx, "team/app", accounts.Private))
		must(s.SetRepositoryVisibility(ctx, "team/web", accounts.Private))
		// Nothing public left: anonymous callers are asked to sign in, as for a
		// namespace that does not exist.
		code, _, _ := authed.get(t, "/charts/team/index.yaml", "", "")
		if code2, _, _ := authed.get(t, "/charts/nobody/index.yaml", "", ""); code != http.StatusUnauthorized || code2 != code {
			t.Errorf("anonymous, nothing public: %d; a namespace that does not exist: %d; want 401 both", code, code2)
		}
	})
}
