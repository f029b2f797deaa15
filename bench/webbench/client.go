package main

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
)

// browser is a cookie-keeping client that does not follow redirects and posts forms
// with Origin set, as a browser on the hub's own page does.
type browser struct {
	base string
	c    *http.Client
}

func newBrowser(base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var loginCSRFRe = regexp.MustCompile(`action="/login"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)"`)

// login signs in through the sign-in form: GET /login for its CSRF token and cookie,
// then POST the form, wanting the redirect that ends a sign-in.
func (b *browser) login(name, pass string) error {
	resp, err := b.c.Get(b.base + "/login")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginCSRFRe.FindSubmatch(body)
	if m == nil {
		return fmt.Errorf("no sign-in form on /login (%s)", resp.Status)
	}
	form := url.Values{"csrf": {html.UnescapeString(string(m[1]))}, "username": {name}, "password": {pass}, "next": {"/explore"}}
	req, _ := http.NewRequest("POST", b.base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	resp, err = b.c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign in as %s: %s", name, resp.Status)
	}
	return nil
}

var assetRe = regexp.MustCompile(`<(?:link rel="stylesheet" href|script src)="([^"]+)"`)

// weight is a page's HTML and its HTML plus every stylesheet and script it loads,
// uncompressed.
func (b *browser) weight(path string) (page, total int, err error) {
	_, _, page, body, err := b.get(path)
	if err != nil {
		return 0, 0, err
	}
	total = page
	for _, m := range assetRe.FindAllStringSubmatch(body, -1) {
		_, _, n, _, err := b.get(m[1])
		if err != nil {
			return 0, 0, err
		}
		total += n
	}
	return page, total, nil
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// registry is a client of the distribution API with one bearer token.
type registry struct {
	base, token string
}

// token gets a pull+push token for repo from /token with HTTP Basic.
func token(base, user, pass, repo string) (string, error) {
	req, _ := http.NewRequest("GET", base+"/token?service=hubctl&scope=repository:"+repo+":pull,push", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tr struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.Token == "" {
		return "", fmt.Errorf("token for %s: %s %v", repo, resp.Status, err)
	}
	return tr.Token, nil
}

func (r registry) send(method, path, contentType string, body []byte) error {
	req, _ := http.NewRequest(method, r.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		out, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, out)
	}
	return nil
}

// pushImage pushes a linux/arch image of 12 small layers whose config carries a
// history step per layer (and an empty one between), env and labels, as a service
// image built on a distribution base does; it returns the manifest and its digest.
func (r registry) pushImage(repo, arch string) ([]byte, error) {
	var layers []map[string]any
	var diffIDs []string
	var history []map[string]any
	for i := range 12 {
		layer := bytes.Repeat([]byte(fmt.Sprintf("%s layer %d of %s\n", arch, i, repo)), 100*(i+1))
		if err := r.send("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(layer), "application/octet-stream", layer); err != nil {
			return nil, err
		}
		layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digestOf(layer), "size": len(layer)})
		diffIDs = append(diffIDs, digestOf(layer))
		history = append(history,
			map[string]any{"created_by": fmt.Sprintf("ENV STEP=%d", i), "empty_layer": true},
			map[string]any{"created_by": fmt.Sprintf("RUN /bin/sh -c apt-get update && apt-get install -y package-%d # buildkit", i)})
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": arch, "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_HOME=/srv/app"},
			"Entrypoint": []string{"/srv/app/web"}, "User": "1000", "ExposedPorts": map[string]any{"8080/tcp": map[string]any{}},
			"Labels": map[string]string{"org.opencontainers.image.title": "web", "org.opencontainers.image.description": "The web front end",
				"org.opencontainers.image.source": "https://git.example/ns1/web", "org.opencontainers.image.version": "1.2.3"}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history": history,
	})
	if err := r.send("POST", "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(cfg), "application/octet-stream", cfg); err != nil {
		return nil, err
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)},
		"layers": layers,
	})
	return man, r.send("PUT", "/v2/"+repo+"/manifests/"+digestOf(man), "application/vnd.oci.image.manifest.v1+json", man)
}

// pushIndex pushes a linux/amd64 + linux/arm64 index under tag through the registry
// API as user, and answers the index's digest and the amd64 image's.
func pushIndex(base, user, pass, repo, tag string) (index, child string, err error) {
	tok, err := token(base, user, pass, repo)
	if err != nil {
		return "", "", err
	}
	r := registry{base: base, token: tok}
	var ms []map[string]any
	for _, arch := range []string{"amd64", "arm64"} {
		man, err := r.pushImage(repo, arch)
		if err != nil {
			return "", "", err
		}
		if child == "" {
			child = digestOf(man)
		}
		ms = append(ms, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digestOf(man),
			"size": len(man), "platform": map[string]string{"os": "linux", "architecture": arch}})
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms})
	return digestOf(idx), child, r.send("PUT", "/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.index.v1+json", idx)
}
