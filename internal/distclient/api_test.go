package distclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestAnonymousOnPrivateRepositoryHintsAtLogin(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "token")
	ctx := context.Background()
	// Something to refuse: the admin pushes a private image.
	push(t, New(Options{Credentials: admin}), Repo{Host: host, Path: "team/app"}, newImage(t, "a"), "v1")

	anon := New(Options{})
	repo := Repo{Host: host, Path: "team/app"}
	calls := map[string]func() error{
		"GetManifest": func() error { _, _, err := anon.GetManifest(ctx, Ref{Repo: repo, Tag: "v1"}); return err },
		"Tags":        func() error { _, err := anon.Tags(ctx, repo); return err },
		"UploadBlob": func() error {
			return anon.UploadBlob(ctx, repo, digest.FromString("x"), 1, strings.NewReader("x"), "")
		},
	}
	for name, call := range calls {
		err := call()
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: got %v, want an *Error", name, err)
		}
		if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 401 or 403", name, e.Status)
		}
		if !strings.Contains(e.Hint, "hubctl login "+host) || !strings.Contains(err.Error(), "hubctl login "+host) {
			t.Errorf("%s: hint %q / message %q should say to run hubctl login %s", name, e.Hint, err, host)
		}
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v does not match ErrUnauthorized", name, err)
		}
	}
	// A missing repository is no different for someone without rights: no existence leak.
	if _, err := anon.HeadManifest(ctx, Ref{Repo: Repo{Host: host, Path: "team/none"}, Tag: "v1"}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("HEAD of a missing private repository: %v", err)
	}
}

func TestWrongPasswordHint(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "token")
	c := New(Options{Credentials: staticCreds{Username: "admin", Password: "wrong"}})
	_, err := c.Tags(context.Background(), Repo{Host: host, Path: "team/app"})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "refused; run 'hubctl login "+host+"' again") {
		t.Fatalf("got %v", err)
	}
}

// TestRegistryAPI walks the whole API against a real hubctl registry with token auth,
// as the admin.
func TestRegistryAPI(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "token")
	ctx := context.Background()
	c := New(Options{Credentials: admin})
	repo := Repo{Host: host, Path: "team/app"}
	im := newImage(t, "api")

	// Blobs.
	if ok, err := c.BlobExists(ctx, repo, im.layer.desc.Digest); err != nil || ok {
		t.Fatalf("BlobExists before upload = %v, %v", ok, err)
	}
	for _, b := range []blob{im.config, im.layer} {
		if err := c.UploadBlob(ctx, repo, b.desc.Digest, b.desc.Size, bytes.NewReader(b.raw), ""); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.BlobExists(ctx, repo, b.desc.Digest); err != nil || !ok {
			t.Fatalf("BlobExists after upload = %v, %v", ok, err)
		}
	}
	rc, err := c.GetBlob(ctx, repo, im.layer.desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, im.layer.raw) {
		t.Fatalf("GetBlob: %d bytes, %v", len(got), err)
	}
	if _, err := c.GetBlob(ctx, repo, digest.FromString("missing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetBlob of a missing blob: %v", err)
	}
	// A body that does not match its digest is refused, not stored.
	bad := digest.FromString("something else")
	if err := c.UploadBlob(ctx, repo, bad, 3, strings.NewReader("abc"), ""); err == nil {
		t.Error("upload with a wrong digest succeeded")
	} else if ok, _ := c.BlobExists(ctx, repo, bad); ok {
		t.Error("the mismatched blob was stored")
	}

	// Manifests.
	ref := Ref{Repo: repo, Tag: "v1"}
	if recorded, err := c.PutManifest(ctx, ref, ocispec.MediaTypeImageManifest, im.manifest.raw); err != nil || recorded {
		t.Fatalf("PutManifest = %v, %v", recorded, err)
	}
	want := im.manifest.desc
	desc, err := c.HeadManifest(ctx, ref)
	if err != nil || desc.Digest != want.Digest || desc.Size != want.Size || desc.MediaType != want.MediaType {
		t.Fatalf("HeadManifest = %+v, %v; want %+v", desc, err, want)
	}
	desc, raw, err := c.GetManifest(ctx, ref)
	if err != nil || desc.Digest != want.Digest || desc.Size != want.Size || desc.MediaType != want.MediaType || !bytes.Equal(raw, im.manifest.raw) {
		t.Fatalf("GetManifest = %+v, %d bytes, %v", desc, len(raw), err)
	}
	byDigest := Ref{Repo: repo, Digest: want.Digest.String()}
	if desc, raw, err = c.GetManifest(ctx, byDigest); err != nil || desc.Digest != want.Digest || !bytes.Equal(raw, im.manifest.raw) {
		t.Fatalf("GetManifest by digest = %+v, %v", desc, err)
	}
	if _, err := c.HeadManifest(ctx, Ref{Repo: repo, Tag: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("HeadManifest of a missing tag: %v", err)
	}

	// Tags and catalog.
	for _, tag := range []string{"v2", "latest"} {
		if _, err := c.PutManifest(ctx, Ref{Repo: repo, Tag: tag}, ocispec.MediaTypeImageManifest, im.manifest.raw); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := c.Tags(ctx, repo)
	slices.Sort(tags)
	if err != nil || !slices.Equal(tags, []string{"latest", "v1", "v2"}) {
		t.Fatalf("Tags = %v, %v", tags, err)
	}

	// Mount into another repository of the same registry.
	other := Repo{Host: host, Path: "team/other"}
	for _, b := range []blob{im.config, im.layer} {
		mounted, loc, err := c.MountBlob(ctx, other, b.desc.Digest, repo.Path)
		if err != nil || !mounted || loc != "" {
			t.Fatalf("MountBlob = %v, %q, %v", mounted, loc, err)
		}
		if ok, err := c.BlobExists(ctx, other, b.desc.Digest); err != nil || !ok {
			t.Fatalf("mounted blob missing: %v, %v", ok, err)
		}
	}
	// A blob the source lacks is not mounted: the registry opens a session instead,
	// and the upload goes there.
	fresh := newBlob("application/octet-stream", []byte("not in team/app"))
	mounted, loc, err := c.MountBlob(ctx, other, fresh.desc.Digest, repo.Path)
	if err != nil || mounted || loc == "" || !strings.HasPrefix(loc, "http://"+host+"/v2/team/other/blobs/uploads/") {
		t.Fatalf("MountBlob of a missing blob = %v, %q, %v", mounted, loc, err)
	}
	if err := c.UploadBlob(ctx, other, fresh.desc.Digest, fresh.desc.Size, bytes.NewReader(fresh.raw), loc); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.BlobExists(ctx, other, fresh.desc.Digest); err != nil || !ok {
		t.Fatalf("blob uploaded to the mount's session missing: %v, %v", ok, err)
	}
	if _, err := c.PutManifest(ctx, Ref{Repo: other, Tag: "v1"}, ocispec.MediaTypeImageManifest, im.manifest.raw); err != nil {
		t.Fatal(err)
	}

	repos, err := c.Catalog(ctx, host)
	if err != nil || !slices.Contains(repos, "team/app") || !slices.Contains(repos, "team/other") {
		t.Fatalf("Catalog = %v, %v", repos, err)
	}

	// Delete by digest.
	if err := c.DeleteManifest(ctx, Ref{Repo: other, Digest: want.Digest.String()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HeadManifest(ctx, Ref{Repo: other, Digest: want.Digest.String()}); !errors.Is(err, ErrNotFound) {
		t.Errorf("HeadManifest after delete: %v", err)
	}
	if _, err := c.HeadManifest(ctx, ref); err != nil {
		t.Errorf("deleting from team/other touched team/app: %v", err)
	}
}

func TestReferrersAPI(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "none")
	ctx := context.Background()
	c := New(Options{})
	repo := Repo{Host: host, Path: "team/app"}
	im := newImage(t, "subject")
	push(t, c, repo, im, "v1")

	empty := newBlob("application/vnd.oci.empty.v1+json", []byte("{}"))
	if err := c.UploadBlob(ctx, repo, empty.desc.Digest, empty.desc.Size, bytes.NewReader(empty.raw), ""); err != nil {
		t.Fatal(err)
	}
	subject := im.manifest.desc
	sig := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.sig",
		Config: empty.desc, Layers: []ocispec.Descriptor{empty.desc}, Subject: &subject}
	sig.SchemaVersion = 2
	raw, _ := json.Marshal(sig)
	sd := digest.FromBytes(raw)
	recorded, err := c.PutManifest(ctx, Ref{Repo: repo, Digest: sd.String()}, ocispec.MediaTypeImageManifest, raw)
	if err != nil || !recorded {
		t.Fatalf("PutManifest of a referrer = %v, %v; want the subject recorded", recorded, err)
	}
	refs, err := c.Referrers(ctx, repo, subject.Digest)
	if err != nil || len(refs) != 1 || refs[0].Digest != sd || refs[0].ArtifactType != "application/vnd.example.sig" {
		t.Fatalf("Referrers = %+v, %v", refs, err)
	}
	if refs, err := c.Referrers(ctx, repo, digest.FromString("nothing refers to this")); err != nil || len(refs) != 0 {
		t.Fatalf("Referrers of an unknown subject = %+v, %v", refs, err)
	}
	if got := FallbackTag(subject.Digest); got != "sha256-"+subject.Digest.Encoded() {
		t.Errorf("FallbackTag = %q", got)
	}
}

// TestTagsFollowsLink shrinks the page size the client asks for (the proxy rewrites
// n=1000 to n=2), so the real registry paginates and the client must follow its Link.
func TestTagsFollowsLink(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "none")
	ctx := context.Background()
	im := newImage(t, "pages")
	want := []string{"a", "b", "c", "d", "e"}
	direct := New(Options{})
	for _, tag := range want {
		push(t, direct, Repo{Host: host, Path: "team/app"}, im, tag)
	}
	p := newFaultProxy(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if q := r.URL.Query(); q.Get("n") == "1000" {
			q.Set("n", "2")
			r.URL.RawQuery = q.Encode()
		}
		return false
	})
	c := New(Options{})
	tags, err := c.Tags(ctx, Repo{Host: p.Host, Path: "team/app"})
	if err != nil || !slices.Equal(tags, want) {
		t.Fatalf("Tags = %v, %v; want %v", tags, err, want)
	}
	if n := p.count("GET", "/v2/team/app/tags/list"); n != 3 {
		t.Errorf("%d tag pages fetched, want 3 (2+2+1)", n)
	}
	repos, err := c.Catalog(ctx, p.Host)
	if err != nil || !slices.Equal(repos, []string{"team/app"}) {
		t.Fatalf("Catalog = %v, %v", repos, err)
	}
}

// TestManifestDigestVerified: a registry (here a proxy) that sends bytes that do not
// match the digest it names, or the digest the reference pins, is caught.
func TestManifestDigestVerified(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "none")
	ctx := context.Background()
	im := newImage(t, "verify")
	push(t, New(Options{}), Repo{Host: host, Path: "team/app"}, im, "v1")
	wrong := digest.FromString("wrong")
	p := newFaultProxy(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		if r.URL.Query().Get("lie") == "" {
			w.Header().Set("Docker-Content-Digest", wrong.String())
		}
		_, _ = w.Write(im.manifest.raw)
		return true
	})
	c := New(Options{})
	repo := Repo{Host: p.Host, Path: "team/app"}
	if _, _, err := c.GetManifest(ctx, Ref{Repo: repo, Tag: "v1"}); err == nil || !strings.Contains(err.Error(), "does not match digest "+wrong.String()) {
		t.Errorf("GetManifest with a lying Docker-Content-Digest: %v", err)
	}
	if _, _, err := c.GetManifest(ctx, Ref{Repo: repo, Digest: wrong.String()}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("GetManifest by a digest the bytes do not have: %v", err)
	}
}

// TestTokenCaching counts the requests to the token service through a proxy: many
// calls, sequential and concurrent, with the same scopes fetch one token; other scopes
// fetch their own.
func TestTokenCaching(t *testing.T) {
	t.Parallel()
	host := startRegistry(t, "token")
	ctx := context.Background()
	im := newImage(t, "tokens")
	push(t, New(Options{Credentials: admin}), Repo{Host: host, Path: "team/app"}, im, "v1")

	p := newFaultProxy(t, host, nil)
	c := New(Options{Credentials: admin})
	repo := Repo{Host: p.Host, Path: "team/app"}
	ref := Ref{Repo: repo, Tag: "v1"}
	for range 5 {
		if _, err := c.HeadManifest(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GetManifest(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			ok, err := c.BlobExists(ctx, repo, im.layer.desc.Digest)
			if err == nil && !ok {
				err = errors.New("blob missing")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := p.count("", "/token"); n != 1 {
		t.Fatalf("%d token requests for one scope, want 1", n)
	}
	if n := p.count("", "/v2/"); n < 31 {
		t.Fatalf("only %d registry requests went through the proxy", n)
	}
	// Another scope (push on the same repository) needs a token of its own, once.
	for range 3 {
		if ok, err := c.BlobExists(ctx, repo, im.layer.desc.Digest, pushScope(repo.Path)); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if n := p.count("", "/token"); n != 2 {
		t.Fatalf("%d token requests after a second scope, want 2", n)
	}
	// The challenge was learnt once for the client, not once per call.
	if n := p.exact("GET /v2/"); n != 1 {
		t.Fatalf("GET /v2/ sent %d times, want 1", n)
	}
}
