package distclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/server"
	"github.com/hubctl/hubctl/internal/server/servertest"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testAdminPassword is the admin password of the servers startRegistry runs.
const testAdminPassword = "distclient-test-admin"

// startRegistry runs a real hubctl registry in-process with auth mode "token" or
// "none" and returns its host:port.
func startRegistry(t *testing.T, authMode string) string {
	t.Helper()
	return servertest.Start(t, authMode, testAdminPassword)
}

// staticCreds resolves every host to one login, as a docker config with one entry does.
type staticCreds credentials.Credentials

func (s staticCreds) Resolve(string) (credentials.Credentials, error) {
	return credentials.Credentials(s), nil
}

// admin is the login of the admin account startRegistry creates.
var admin = staticCreds{Username: server.AdminUser, Password: testAdminPassword}

// faultProxy is a reverse proxy in front of a real registry. Its hook sees every request
// first and may answer it (a fault) by returning true; otherwise the registry answers.
// The registry builds its token realm from the Host header, which the proxy keeps, so
// token requests pass through the proxy too.
type faultProxy struct {
	Host string

	mu       sync.Mutex
	requests []string // "METHOD path?query" of every request seen
}

func newFaultProxy(t *testing.T, target string, hook func(w http.ResponseWriter, r *http.Request) bool) *faultProxy {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.ErrorLog = log.New(io.Discard, "", 0) // dropped connections are the point
	p := &faultProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.RequestURI())
		p.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// count returns how many requests matched: method (or "" for any) and a path prefix.
func (p *faultProxy) count(method, pathPrefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		m, rest, _ := strings.Cut(r, " ")
		if (method == "" || m == method) && strings.HasPrefix(rest, pathPrefix) {
			n++
		}
	}
	return n
}

// exact returns how many requests were exactly "METHOD path?query".
func (p *faultProxy) exact(request string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		if r == request {
			n++
		}
	}
	return n
}

// failFirst returns a hook that answers the first n requests whose path starts with
// prefix with status (and Retry-After when retryAfter is not empty).
func failFirst(n int, prefix string, status int, retryAfter string) func(http.ResponseWriter, *http.Request) bool {
	var seen atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, prefix) || seen.Add(1) > int64(n) {
			return false
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}`)
		return true
	}
}

// blob is a piece of content with its descriptor.
type blob struct {
	desc ocispec.Descriptor
	raw  []byte
}

func newBlob(mediaType string, raw []byte) blob {
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw: raw}
}

// image is a config, one layer and the manifest over them.
type image struct {
	config, layer, manifest blob
}

func newImage(t *testing.T, seed string) image {
	t.Helper()
	cfg := newBlob(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","seed":"`+seed+`"}`))
	layer := newBlob(ocispec.MediaTypeImageLayerGzip, bytes.Repeat([]byte(seed), 4096))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg.desc, Layers: []ocispec.Descriptor{layer.desc}}
	m.SchemaVersion = 2
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return image{config: cfg, layer: layer, manifest: newBlob(ocispec.MediaTypeImageManifest, raw)}
}

// push uploads the image's blobs and puts its manifest under tag.
func push(t *testing.T, c *Client, repo Repo, im image, tag string) {
	t.Helper()
	ctx := context.Background()
	for _, b := range []blob{im.config, im.layer} {
		if err := c.UploadBlob(ctx, repo, b.desc.Digest, b.desc.Size, bytes.NewReader(b.raw), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutManifest(ctx, Ref{Repo: repo, Tag: tag}, im.manifest.desc.MediaType, im.manifest.raw); err != nil {
		t.Fatal(err)
	}
}
