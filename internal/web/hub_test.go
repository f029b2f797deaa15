package web_test

// A real hub in-process (servertest: the same server.Run as `hubctl serve`), driven
// through its own APIs to make users and push images, and a cookie-keeping client
// that behaves like a browser posting the hub's forms.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/server/servertest"
)

const adminPassword = "admin-password-for-web-tests"

// hub is a running hub.
type hub struct {
	t    *testing.T
	addr string
}

func startHub(t *testing.T) *hub {
	t.Helper()
	return &hub{t: t, addr: servertest.Start(t, "token", adminPassword)}
}

func (h *hub) url(path string) string { return "http://" + h.addr + path }

// api calls the hub API with HTTP Basic and wants status.
func (h *hub) api(method, path, user, pass string, body any, status int) []byte {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.url(path), rd)
	req.SetBasicAuth(user, pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		h.t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, out, status)
	}
	return out
}

// user creates a user whose password is name+"-password".
func (h *hub) user(name string) {
	h.t.Helper()
	h.api("POST", "/api/v1/users", "admin", adminPassword, map[string]string{"name": name, "password": name + "-password"}, http.StatusCreated)
}

func (h *hub) setVisibility(repo, vis string) {
	h.t.Helper()
	h.api("PATCH", "/api/v1/repositories/"+repo, "admin", adminPassword, map[string]string{"visibility": vis}, http.StatusOK)
}

// registryToken gets a push token for repo as user.
func (h *hub) registryToken(user, pass, repo string) string {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.url("/token?service=hubctl&scope=repository:"+repo+":pull,push"), nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.Token == "" {
		h.t.Fatalf("token for %s: %s %v", repo, resp.Status, err)
	}
	return tr.Token
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// put sends a registry request with a bearer token and wants 201.
func (h *hub) put(tok, method, path, contentType string, body []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url(path), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		out, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("%s %s: %s %s", method, path, resp.Status, out)
	}
}

// image is a pushed single-platform image.
type image struct {
	Digest string
	Size   int64 // config + layer
}

// pushImage pushes a one-layer image for os/arch whose config carries labels and a
// history step, tagged tag (none when ""), and returns its digest.
func (h *hub) pushImage(tok, repo, tag, arch string, labels map[string]string, layerSize int) image {
	h.t.Helper()
	layer := bytes.Repeat([]byte(arch+repo), layerSize/len(arch+repo)+1)[:layerSize]
	cfg, _ := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/bin", "GREETING=<b>hi</b>"}, "Entrypoint": []string{"/app", "--serve"}, "Labels": labels, "User": "1000"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(layer)}},
		"history": []map[string]any{
			{"created_by": "ENV GREETING=<b>hi</b>", "empty_layer": true},
			{"created_by": "COPY app /app # " + arch},
		},
	})
	for _, b := range [][]byte{cfg, layer} {
		h.put(tok, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(b), "application/octet-stream", b)
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digestOf(layer), "size": len(layer)}},
	})
	ref := digestOf(man)
	if tag != "" {
		ref = tag
	}
	h.put(tok, "PUT", "/v2/"+repo+"/manifests/"+ref, "application/vnd.oci.image.manifest.v1+json", man)
	return image{Digest: digestOf(man), Size: int64(len(cfg) + len(layer))}
}

// pushIndex pushes an index of amd64 and arm64 images under tag and returns them.
func (h *hub) pushIndex(tok, repo, tag string, labels map[string]string) (string, []image) {
	h.t.Helper()
	amd := h.pushImage(tok, repo, "", "amd64", labels, 3000)
	arm := h.pushImage(tok, repo, "", "arm64", labels, 5000)
	var ms []map[string]any
	for i, im := range []image{amd, arm} {
		ms = append(ms, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": im.Digest,
			"size": 0, "platform": map[string]string{"os": "linux", "architecture": []string{"amd64", "arm64"}[i]}})
	}
	// The descriptor sizes must be the children's real sizes.
	for i, im := range []image{amd, arm} {
		ms[i]["size"] = len(h.manifest(tok, repo, im.Digest))
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms})
	h.put(tok, "PUT", "/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.index.v1+json", idx)
	return digestOf(idx), []image{amd, arm}
}

// browser is a cookie-keeping client that does not follow redirects, sending
// Origin like a browser does on a form post.
type browser struct {
	h      *hub
	c      *http.Client
	origin string
}

func (h *hub) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, origin: "http://" + h.addr, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is a fetched response.
type page struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) get(path string) page {
	b.h.t.Helper()
	resp, err := b.c.Get(b.h.url(path))
	if err != nil {
		b.h.t.Fatal(err)
	}
	return read(b.h.t, resp)
}

// post sends a form as a browser on the hub's own page would (Origin set).
func (b *browser) post(path string, form url.Values) page {
	b.h.t.Helper()
	return b.postWith(path, form, map[string]string{"Origin": b.origin})
}

func (b *browser) postWith(path string, form url.Values, hdr map[string]string) page {
	b.h.t.Helper()
	req, _ := http.NewRequest("POST", b.h.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return read(b.h.t, resp)
}

func read(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the first CSRF token of a page.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", p.Body)
	}
	return html.UnescapeString(m[1])
}

var loginCSRFRe = regexp.MustCompile(`action="/login"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"`)

// loginCSRF is the sign-in form's CSRF token (a signed-in page has the sign-out
// form's too).
func (p page) loginCSRF(t *testing.T) string {
	t.Helper()
	m := loginCSRFRe.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no sign-in form in page:\n%s", p.Body)
	}
	return html.UnescapeString(m[1])
}

// login signs in as user with the sign-in form and wants success.
func (b *browser) login(user string) {
	b.h.t.Helper()
	p := b.loginAs(user, user+"-password")
	if p.Status != http.StatusSeeOther {
		b.h.t.Fatalf("sign in as %s: %d\n%s", user, p.Status, p.Body)
	}
}

func (b *browser) loginAs(user, pass string) page {
	b.h.t.Helper()
	form := b.get("/login")
	return b.post("/login", url.Values{"csrf": {form.loginCSRF(b.h.t)}, "username": {user}, "password": {pass}, "next": {"/explore"}})
}

// cookie is the browser's value of cookie name.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.h.url("/"))
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// manifest GETs a manifest's bytes.
func (h *hub) manifest(tok, repo, ref string) []byte {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.url("/v2/"+repo+"/manifests/"+ref), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET manifest %s: %s", ref, resp.Status)
	}
	return b
}
