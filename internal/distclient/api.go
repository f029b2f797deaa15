package distclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types the client accepts, newest first.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// maxManifest bounds a manifest read into memory, as registries bound what they take.
const maxManifest = 16 << 20

// HeadManifest resolves ref to its descriptor without fetching the body. Registries
// that leave Docker-Content-Digest out of HEAD are asked with GET.
func (c *Client) HeadManifest(ctx context.Context, ref Ref) (ocispec.Descriptor, error) {
	resp, err := c.do(ctx, ref.Host, request{
		method: http.MethodHead,
		path:   "/v2/" + ref.Path + "/manifests/" + ref.Identifier(),
		header: http.Header{"Accept": {manifestAccept}},
		scopes: []string{pullScope(ref.Path)},
	}, http.StatusOK)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", ref, err)
	}
	drain(resp)
	dg := resp.Header.Get("Docker-Content-Digest")
	if ref.Digest != "" {
		dg = ref.Digest
	}
	if dg == "" || resp.ContentLength < 0 {
		desc, _, err := c.GetManifest(ctx, ref)
		return desc, err
	}
	d, err := digest.Parse(dg)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: registry sent a bad digest %q", ref, dg)
	}
	return ocispec.Descriptor{MediaType: mediaType(resp.Header), Digest: d, Size: resp.ContentLength}, nil
}

// GetManifest fetches a manifest and verifies it: against the digest of a digest
// reference, else against the Docker-Content-Digest the registry sent, when it sent one.
func (c *Client) GetManifest(ctx context.Context, ref Ref) (ocispec.Descriptor, []byte, error) {
	resp, err := c.do(ctx, ref.Host, request{
		method: http.MethodGet,
		path:   "/v2/" + ref.Path + "/manifests/" + ref.Identifier(),
		header: http.Header{"Accept": {manifestAccept}},
		scopes: []string{pullScope(ref.Path)},
	}, http.StatusOK)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", ref, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", ref, err)
	}
	if len(raw) > maxManifest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: larger than %d bytes", ref, maxManifest)
	}
	want := ref.Digest
	if want == "" {
		want = resp.Header.Get("Docker-Content-Digest")
	}
	var d digest.Digest
	if want != "" {
		wd, err := digest.Parse(want)
		if err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: bad digest %q", ref, want)
		}
		if !wd.Algorithm().Available() || wd.Algorithm().FromBytes(raw) != wd {
			return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: content does not match digest %s", ref, wd)
		}
		d = wd
	} else {
		d = digest.FromBytes(raw)
	}
	mt := mediaType(resp.Header)
	if mt == "" || mt == "application/json" || mt == "text/plain" {
		mt = sniffMediaType(raw)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, raw, nil
}

// PutManifest stores raw under ref's tag or digest. It returns whether the registry
// recorded the manifest's subject (the OCI-Subject header of distribution v1.1), which
// tells the caller whether the referrers tag schema needs updating.
func (c *Client) PutManifest(ctx context.Context, ref Ref, mediaType string, raw []byte) (subjectRecorded bool, err error) {
	resp, err := c.do(ctx, ref.Host, request{
		method: http.MethodPut,
		path:   "/v2/" + ref.Path + "/manifests/" + ref.Identifier(),
		header: http.Header{"Content-Type": {mediaType}},
		body:   func() (io.Reader, error) { return bytes.NewReader(raw), nil },
		length: int64(len(raw)),
		scopes: []string{pushScope(ref.Path)},
	}, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return false, fmt.Errorf("put manifest %s: %w", ref, err)
	}
	drain(resp)
	return resp.Header.Get("OCI-Subject") != "", nil
}

// DeleteManifest deletes the manifest ref names (by digest; by tag where the registry
// allows deleting tags).
func (c *Client) DeleteManifest(ctx context.Context, ref Ref) error {
	resp, err := c.do(ctx, ref.Host, request{
		method: http.MethodDelete,
		path:   "/v2/" + ref.Path + "/manifests/" + ref.Identifier(),
		scopes: []string{deleteScope(ref.Path)},
	}, http.StatusAccepted, http.StatusOK, http.StatusNoContent)
	if err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	drain(resp)
	return nil
}

// BlobExists reports whether repo holds the blob.
func (c *Client) BlobExists(ctx context.Context, repo Repo, d digest.Digest, scopes ...string) (bool, error) {
	if len(scopes) == 0 {
		scopes = []string{pullScope(repo.Path)}
	}
	resp, err := c.do(ctx, repo.Host, request{
		method: http.MethodHead,
		path:   "/v2/" + repo.Path + "/blobs/" + d.String(),
		scopes: scopes,
	}, http.StatusOK)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("blob %s@%s: %w", repo, d, err)
	}
	drain(resp)
	return true, nil
}

// GetBlob opens a blob for reading, following redirects to object storage. The bytes
// are not verified here: the caller decides whether to hash them.
func (c *Client) GetBlob(ctx context.Context, repo Repo, d digest.Digest) (io.ReadCloser, error) {
	resp, err := c.do(ctx, repo.Host, request{
		method: http.MethodGet,
		path:   "/v2/" + repo.Path + "/blobs/" + d.String(),
		scopes: []string{pullScope(repo.Path)},
	}, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("blob %s@%s: %w", repo, d, err)
	}
	return resp.Body, nil
}

// MountBlob asks repo to link the blob from another repository of the same registry.
// It reports whether the mount happened; when it did not, the registry may have
// opened an upload session instead, whose location is returned for UploadBlob.
func (c *Client) MountBlob(ctx context.Context, repo Repo, d digest.Digest, from string) (mounted bool, location string, err error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	resp, err := c.do(ctx, repo.Host, request{
		method: http.MethodPost,
		path:   "/v2/" + repo.Path + "/blobs/uploads/?" + q.Encode(),
		body:   func() (io.Reader, error) { return http.NoBody, nil },
		scopes: []string{pushScope(repo.Path), pullScope(from)},
	}, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, "", fmt.Errorf("mount %s into %s: %w", d, repo, err)
	}
	drain(resp)
	if resp.StatusCode == http.StatusCreated {
		return true, "", nil
	}
	loc, err := resolveLocation(resp)
	return false, loc, err
}

// DefaultMonolithicMax is the largest blob UploadBlob sends in a single POST unless
// Options.MonolithicMax says otherwise; larger ones stream in one PUT to an upload
// session, never held in memory.
const DefaultMonolithicMax = 1 << 20

// UploadBlob sends a blob of known digest and size. Up to the monolithic limit it is one POST
// with the body; above, a POST for a session (unless one is given) and one PUT that
// streams the whole body. A failed upload is retried by the caller from a fresh reader.
func (c *Client) UploadBlob(ctx context.Context, repo Repo, d digest.Digest, size int64, r io.Reader, location string) error {
	if location == "" && size <= c.opts.MonolithicMax {
		// Small blobs (configs, small layers) go in one request: POST ?digest= with the
		// body. A registry that does not take monolithic POSTs opens a session instead
		// (202), and the buffered body is PUT there.
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("upload %s to %s: read: %w", d, repo, err)
		}
		resp, err := c.do(ctx, repo.Host, request{
			method: http.MethodPost,
			path:   "/v2/" + repo.Path + "/blobs/uploads/?digest=" + url.QueryEscape(d.String()),
			header: http.Header{"Content-Type": {"application/octet-stream"}},
			body:   func() (io.Reader, error) { return bytes.NewReader(body), nil },
			length: size,
			scopes: []string{pushScope(repo.Path)},
		}, http.StatusCreated, http.StatusAccepted)
		if err != nil {
			return fmt.Errorf("upload %s to %s: %w", d, repo, err)
		}
		drain(resp)
		if resp.StatusCode == http.StatusCreated {
			return nil
		}
		if location, err = resolveLocation(resp); err != nil {
			return fmt.Errorf("upload %s to %s: %w", d, repo, err)
		}
		r = bytes.NewReader(body)
	}
	if location == "" {
		resp, err := c.do(ctx, repo.Host, request{
			method: http.MethodPost,
			path:   "/v2/" + repo.Path + "/blobs/uploads/",
			body:   func() (io.Reader, error) { return http.NoBody, nil },
			scopes: []string{pushScope(repo.Path)},
		}, http.StatusAccepted)
		if err != nil {
			return fmt.Errorf("upload %s to %s: %w", d, repo, err)
		}
		drain(resp)
		if location, err = resolveLocation(resp); err != nil {
			return fmt.Errorf("upload %s to %s: %w", d, repo, err)
		}
	}
	u, err := url.Parse(location)
	if err != nil {
		return fmt.Errorf("upload %s to %s: bad Location %q", d, repo, redact(location))
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	resp, err := c.do(ctx, repo.Host, request{
		method: http.MethodPut,
		url:    u.String(),
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   func() (io.Reader, error) { return r, nil },
		length: size,
		once:   true,
		scopes: []string{pushScope(repo.Path)},
	}, http.StatusCreated, http.StatusNoContent, http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", d, repo, err)
	}
	drain(resp)
	return nil
}

func resolveLocation(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("registry sent no upload Location")
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad upload Location %q", redact(loc))
	}
	return u.String(), nil
}

// Tags lists a repository's tags, following Link pagination.
func (c *Client) Tags(ctx context.Context, repo Repo) ([]string, error) {
	var all []string
	next := "/v2/" + repo.Path + "/tags/list?n=1000"
	for next != "" {
		var page struct {
			Tags []string `json:"tags"`
		}
		link, err := c.getJSON(ctx, repo.Host, next, []string{pullScope(repo.Path)}, &page)
		if err != nil {
			return nil, err // names the repository in its path
		}
		all = append(all, page.Tags...)
		next = link
	}
	return all, nil
}

// Catalog lists the repositories of a registry (those the caller may see), following
// Link pagination.
func (c *Client) Catalog(ctx context.Context, host string) ([]string, error) {
	var all []string
	next := "/v2/_catalog?n=1000"
	for next != "" {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		link, err := c.getJSON(ctx, host, next, []string{catalogScope()}, &page)
		if err != nil {
			return nil, fmt.Errorf("catalog of %s: %w", host, err)
		}
		all = append(all, page.Repositories...)
		next = link
	}
	return all, nil
}

// Referrers lists the manifests whose subject is d, through the referrers API, or the
// referrers tag schema (sha256-<hex>) on registries without that API.
func (c *Client) Referrers(ctx context.Context, repo Repo, d digest.Digest) ([]ocispec.Descriptor, error) {
	var idx ocispec.Index
	_, err := c.getJSON(ctx, repo.Host, "/v2/"+repo.Path+"/referrers/"+d.String(), []string{pullScope(repo.Path)}, &idx)
	if err == nil {
		return idx.Manifests, nil
	}
	if !isStatus(err, http.StatusNotFound) && !isStatus(err, http.StatusMethodNotAllowed) {
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
	}
	// The fallback of distribution-spec v1.1: an index tagged <alg>-<hex>.
	_, raw, err := c.GetManifest(ctx, Ref{Repo: repo, Tag: FallbackTag(d)})
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("referrers of %s@%s: %w", repo, d, err)
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("referrers of %s@%s: tag %s is not an index: %w", repo, d, FallbackTag(d), err)
	}
	return idx.Manifests, nil
}

// FallbackTag is the referrers tag schema's tag for subject d.
func FallbackTag(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

func (c *Client) getJSON(ctx context.Context, host, path string, scopes []string, v any) (next string, err error) {
	resp, err := c.do(ctx, host, request{
		method: http.MethodGet,
		path:   path,
		header: http.Header{"Accept": {"application/json"}},
		scopes: scopes,
	}, http.StatusOK)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManifest)).Decode(v); err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	return nextLink(resp), nil
}

// nextLink reads RFC 5988 `Link: </v2/...>; rel="next"`, relative to the request. A
// header may carry several link-values separated by commas, and several headers may
// be sent.
func nextLink(resp *http.Response) string {
	for _, h := range resp.Header.Values("Link") {
		for _, l := range splitLinks(h) {
			target, params, _ := strings.Cut(l, ";")
			if !hasRelNext(params) {
				continue
			}
			target = strings.Trim(strings.TrimSpace(target), "<>")
			u, err := resp.Request.URL.Parse(target)
			if err != nil {
				return ""
			}
			return u.RequestURI()
		}
	}
	return ""
}

// splitLinks splits a Link header at the commas between link-values, not those inside
// the <…> of a target.
func splitLinks(h string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '<':
			depth++
		case '>':
			depth = max(depth-1, 0)
		case ',':
			if depth == 0 {
				out = append(out, h[start:i])
				start = i + 1
			}
		}
	}
	return append(out, h[start:])
}

func hasRelNext(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "rel") {
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
				if strings.EqualFold(rel, "next") {
					return true
				}
			}
		}
	}
	return false
}

func mediaType(h http.Header) string {
	mt := h.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	return strings.TrimSpace(mt)
}

// sniffMediaType reads mediaType from the document, for registries that answer with a
// generic Content-Type.
func sniffMediaType(raw []byte) string {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	_ = json.Unmarshal(raw, &probe)
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	}
	return ocispec.MediaTypeImageManifest
}

func isStatus(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == code
}
