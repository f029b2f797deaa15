package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// target is one registry under test, reached through its own transport so that neither
// registry ever reuses the other's connections.
type target struct {
	name   string
	base   *url.URL
	client *http.Client
	// singlePost is whether the registry completes `POST ?digest=` with a body in one
	// request (201); otherwise monolithic pushes use POST then PUT with the body.
	singlePost bool
}

func newTarget(name, raw string, conns int) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("target %s: %q is not an http(s) URL", name, raw)
	}
	tr := &http.Transport{
		// No proxy: a proxy from the environment would measure the proxy.
		Proxy:       nil,
		DialContext: dialBigWrites,
		// Enough idle connections that every worker keeps its own keep-alive connection.
		MaxIdleConns:        4 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     90 * time.Second,
		// Blobs are random and manifests tiny: compression would only add CPU.
		DisableCompression: true,
		WriteBufferSize:    1 << 20,
		ReadBufferSize:     1 << 20,
	}
	return &target{name: name, base: u, client: &http.Client{Transport: tr}}, nil
}

// bigWriteConn sends request bodies in writes of up to 1 MiB. net/http hands a body to
// the connection's ReadFrom, and TCPConn.ReadFrom copies through a 32 KiB buffer: at
// GiB/s that is tens of thousands of write calls, CPU the client takes from the server
// it measures on a small machine.
type bigWriteConn struct{ net.Conn }

var copyBufs = sync.Pool{New: func() any { return make([]byte, 1<<20) }}

func (c bigWriteConn) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBufs.Get().([]byte)
	defer copyBufs.Put(buf)
	// The struct hides Conn's own ReadFrom, so CopyBuffer really uses buf.
	return io.CopyBuffer(struct{ io.Writer }{c.Conn}, r, buf)
}

func dialBigWrites(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return bigWriteConn{c}, nil
}

func (t *target) close() { t.client.CloseIdleConnections() }

func (t *target) url(path string) string {
	return strings.TrimSuffix(t.base.String(), "/") + path
}

// resolve turns a Location header into an absolute URL; registries may send it relative.
func (t *target) resolve(loc string) (*url.URL, error) {
	if loc == "" {
		return nil, errors.New("response has no Location header")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("bad Location %q: %w", loc, err)
	}
	return t.base.ResolveReference(u), nil
}

// do sends a request and fails unless the status is one of want. The body is drained
// and closed unless keep is set, so the connection goes back to the pool.
func (t *target) do(ctx context.Context, method, rawURL string, body io.Reader, size int64, hdr map[string]string, keep bool, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			if !keep {
				drain(resp)
			}
			return resp, nil
		}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	drain(resp)
	return nil, fmt.Errorf("%s %s: status %d: %s", method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(msg))
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
}

// ping checks that the target speaks the distribution API without credentials.
func (t *target) ping(ctx context.Context) error {
	_, err := t.do(ctx, http.MethodGet, t.url("/v2/"), nil, 0, nil, false, http.StatusOK)
	return err
}

var octet = map[string]string{"Content-Type": "application/octet-stream"}

// probeSinglePost finds out whether the target finishes a monolithic upload in the POST.
func (t *target) probeSinglePost(ctx context.Context, repo string, b *blob) error {
	u := t.url("/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(b.digest))
	resp, err := t.do(ctx, http.MethodPost, u, b.section(0, b.c.size), b.c.size, octet, false, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return err
	}
	t.singlePost = resp.StatusCode == http.StatusCreated
	if !t.singlePost {
		// The registry opened a session and ignored the body: cancel it (best effort).
		if loc, err := t.resolve(resp.Header.Get("Location")); err == nil {
			_, _ = t.do(ctx, http.MethodDelete, loc.String(), nil, 0, nil, false, http.StatusNoContent, http.StatusNotFound, http.StatusOK)
		}
	}
	return nil
}

// startUpload opens an upload session and returns its location.
func (t *target) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	resp, err := t.do(ctx, http.MethodPost, t.url("/v2/"+repo+"/blobs/uploads/"), bytes.NewReader(nil), 0, nil, false, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return t.resolve(resp.Header.Get("Location"))
}

func withDigest(u *url.URL, digest string) string {
	v := u.Query()
	v.Set("digest", digest)
	c := *u
	c.RawQuery = v.Encode()
	return c.String()
}

// pushMonolithic sends the whole blob in one request body: `POST ?digest=` where the
// target supports it, else POST for a session and PUT ?digest= with the body.
func (t *target) pushMonolithic(ctx context.Context, repo string, b *blob) error {
	size := b.c.size
	if t.singlePost {
		u := t.url("/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(b.digest))
		_, err := t.do(ctx, http.MethodPost, u, b.section(0, size), size, octet, false, http.StatusCreated)
		return err
	}
	loc, err := t.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	_, err = t.do(ctx, http.MethodPut, withDigest(loc, b.digest), b.section(0, size), size, octet, false, http.StatusCreated)
	return err
}

// pushChunked uploads the blob as PATCHes of chunk bytes with Content-Range, then
// closes the session with an empty PUT ?digest=.
func (t *target) pushChunked(ctx context.Context, repo string, b *blob, chunk int64) error {
	loc, err := t.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	size := b.c.size
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		hdr := map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, off+n-1),
		}
		resp, err := t.do(ctx, http.MethodPatch, loc.String(), b.section(off, n), n, hdr, false, http.StatusAccepted)
		if err != nil {
			return err
		}
		// The spec lets each response move the session: always follow the newest Location.
		if loc, err = t.resolve(resp.Header.Get("Location")); err != nil {
			return err
		}
	}
	_, err = t.do(ctx, http.MethodPut, withDigest(loc, b.digest), bytes.NewReader(nil), 0, nil, false, http.StatusCreated)
	return err
}

// pull GETs a blob, reads it with buf and checks its size and, if verify, its digest.
func (t *target) pull(ctx context.Context, repo string, b *blob, buf []byte, verify bool) error {
	resp, err := t.do(ctx, http.MethodGet, t.url("/v2/"+repo+"/blobs/"+b.digest), nil, 0, nil, true, http.StatusOK)
	if err != nil {
		return err
	}
	defer drain(resp)
	// A plain Read loop with a large buffer: io.Copy to io.Discard would read 8 KiB at a
	// time and measure syscalls rather than the server.
	h := sha256.New()
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		if verify {
			h.Write(buf[:m])
		}
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("GET blob %s: %w", b.digest, err)
		}
	}
	if n != b.c.size {
		return fmt.Errorf("GET blob %s: got %d bytes, want %d", b.digest, n, b.c.size)
	}
	if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); verify && got != b.digest {
		return fmt.Errorf("GET blob %s: content has digest %s", b.digest, got)
	}
	return nil
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

// pushSmallImage pushes a config, one small layer and a manifest tagged tag, and returns
// the manifest's size.
func (t *target) pushSmallImage(ctx context.Context, repo, tag string, cs *contentSet) (int, error) {
	layer, err := cs.newBlob()
	if err != nil {
		return 0, err
	}
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + layer.digest + `"]},"config":{}}`)
	configDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(config))
	for _, blobBody := range []struct {
		digest string
		body   io.Reader
		size   int64
	}{
		{configDigest, bytes.NewReader(config), int64(len(config))},
		{layer.digest, layer.section(0, cs.size), cs.size},
	} {
		loc, err := t.startUpload(ctx, repo)
		if err != nil {
			return 0, err
		}
		if _, err := t.do(ctx, http.MethodPut, withDigest(loc, blobBody.digest), blobBody.body, blobBody.size, octet, false, http.StatusCreated); err != nil {
			return 0, err
		}
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + ociManifest + `",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + configDigest + `","size":` + strconv.Itoa(len(config)) + `},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + layer.digest + `","size":` + strconv.FormatInt(cs.size, 10) + `}]}`)
	_, err = t.do(ctx, http.MethodPut, t.url("/v2/"+repo+"/manifests/"+tag), bytes.NewReader(manifest), int64(len(manifest)),
		map[string]string{"Content-Type": ociManifest}, false, http.StatusCreated)
	return len(manifest), err
}

// manifestRequest HEADs or GETs a manifest by tag and checks the answer's length.
func (t *target) manifestRequest(ctx context.Context, method, repo, tag string, size int, buf []byte) error {
	resp, err := t.do(ctx, method, t.url("/v2/"+repo+"/manifests/"+tag), nil, 0, map[string]string{"Accept": ociManifest}, true, http.StatusOK)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.ContentLength != int64(size) {
		return fmt.Errorf("%s manifest %s: Content-Length %d, want %d", method, tag, resp.ContentLength, size)
	}
	if method == http.MethodGet {
		n, err := io.ReadFull(resp.Body, buf[:size])
		if err != nil {
			return fmt.Errorf("GET manifest %s: read %d bytes: %w", tag, n, err)
		}
	}
	return nil
}
