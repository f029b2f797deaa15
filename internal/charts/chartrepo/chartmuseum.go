package chartrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/errcode"
)

// The ChartMuseum API as its multitenant server (--depth 1) routes it, one tenant per
// namespace (chartmuseum pkg/chartmuseum/server/multitenant/routes.go):
//
//	GET    /api/NS/charts                  every chart: {name: [version…]}
//	GET    /api/NS/charts/NAME             the versions of a chart
//	GET    /api/NS/charts/NAME/VERSION     one version
//	HEAD   /api/NS/charts/NAME[/VERSION]   whether it exists
//	POST   /api/NS/charts                  upload: the .tgz as the body, or multipart
//	                                       fields "chart" and "prov"
//	POST   /api/NS/prov                    add a provenance file to an uploaded version
//	DELETE /api/NS/charts/NAME/VERSION     delete a version
//
// Answers are ChartMuseum's: {"saved":true} 201, {"deleted":true} 200 and
// {"error":"…"} with the status. An upload is stored as the OCI artifact helm push
// makes, through the registry (quota, events and the chart checks included), so
// `helm pull oci://HOST/NS/NAME` gets it.

// cmError is ChartMuseum's error body.
type cmError struct {
	Error string `json:"error"`
}

func (h *Handler) serveChartMuseum(w http.ResponseWriter, r *http.Request, rest string) {
	if err := h.chartMuseum(w, r, rest); err != nil {
		e := h.publicError(r, err)
		_ = writeJSON(w, e.HTTPStatus(), cmError{Error: e.Message})
	}
}

func (h *Handler) chartMuseum(w http.ResponseWriter, r *http.Request, rest string) error {
	parts := strings.Split(rest, "/")
	ns := parts[0]
	if err := checkNamespace(ns); err != nil {
		return err
	}
	c, err := h.o.Auth.caller(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	m := r.Method
	switch {
	case len(parts) == 2 && parts[1] == "charts" && (m == http.MethodGet || m == http.MethodHead):
		return h.cmList(w, r, c, ns)
	case len(parts) == 2 && parts[1] == "charts" && m == http.MethodPost:
		return h.cmUpload(w, r, c, ns)
	case len(parts) == 2 && parts[1] == "prov" && m == http.MethodPost:
		return h.cmUploadProv(w, r, c, ns)
	case len(parts) == 3 && parts[1] == "charts" && (m == http.MethodGet || m == http.MethodHead):
		vs, err := h.cmVersions(ctx, w, c, ns, parts[2], "")
		if err != nil {
			return err
		}
		return h.cmEntries(w, r, vs, false)
	case len(parts) == 4 && parts[1] == "charts" && (m == http.MethodGet || m == http.MethodHead):
		vs, err := h.cmVersions(ctx, w, c, ns, parts[2], parts[3])
		if err != nil {
			return err
		}
		return h.cmEntries(w, r, vs, true)
	case len(parts) == 4 && parts[1] == "charts" && m == http.MethodDelete:
		return h.cmDelete(w, r, c, ns, parts[2], parts[3])
	}
	return errcode.New(errcode.NameUnknown, "no such ChartMuseum endpoint %s %s", m, r.URL.Path).WithStatus(http.StatusNotFound)
}

// cmVersions returns the versions of chart name in ns the caller may pull (one when
// version is set), or ChartMuseum's 404.
func (h *Handler) cmVersions(ctx context.Context, w http.ResponseWriter, c *caller, ns, name, version string) ([]chartstore.Version, error) {
	vs, err := h.visible(ctx, c, chartstore.Query{Namespace: ns, Name: name, Version: version})
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		if c.anonymous() {
			return nil, challenge(w, "chart not found, or you must sign in")
		}
		what := "chart not found"
		if version != "" {
			what = "improper constraint: " + version
		}
		return nil, errcode.New(errcode.NameUnknown, "%s", what).WithStatus(http.StatusNotFound)
	}
	return vs, nil
}

// cmEntries writes versions as ChartMuseum does: a list, newest first, or one.
func (h *Handler) cmEntries(w http.ResponseWriter, r *http.Request, vs []chartstore.Version, one bool) error {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	list := make([]map[string]any, 0, len(vs))
	sortNewest(vs)
	for _, v := range vs {
		e, err := entryObject(v)
		if err != nil {
			return err
		}
		list = append(list, e)
	}
	if one {
		return writeJSON(w, http.StatusOK, list[0])
	}
	return writeJSON(w, http.StatusOK, list)
}

func sortNewest(vs []chartstore.Version) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && charts.VersionLess(vs[j-1].Version, vs[j].Version); j-- {
			vs[j-1], vs[j] = vs[j], vs[j-1]
		}
	}
}

func (h *Handler) cmList(w http.ResponseWriter, r *http.Request, c *caller, ns string) error {
	ctx := r.Context()
	vs, err := h.visible(ctx, c, chartstore.Query{Namespace: ns})
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		if empty, err := h.notVisible(ctx, w, c, ns); !empty {
			return err
		}
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	byName := map[string][]chartstore.Version{}
	for _, v := range vs {
		byName[v.Name] = append(byName[v.Name], v)
	}
	out := map[string][]map[string]any{}
	for name, list := range byName {
		sortNewest(list)
		for _, v := range list {
			e, err := entryObject(v)
			if err != nil {
				return err
			}
			out[name] = append(out[name], e)
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// mayWrite refuses a caller who may not do action on repository: 401 asking an
// anonymous caller to sign in, 403 otherwise.
func mayWrite(ctx context.Context, w http.ResponseWriter, c *caller, repository, action string) error {
	ok, err := c.may(ctx, repository, action)
	if err != nil || ok {
		return err
	}
	if c.anonymous() {
		return challenge(w, "sign in to %s charts in %s", action, repository)
	}
	return errcode.New(errcode.Denied, "you may not %s %s", action, repository)
}

// readUpload reads the chart (and provenance) of an upload: the raw body, or the
// multipart fields "chart" and "prov".
func readUpload(w http.ResponseWriter, r *http.Request) (tgz, prov []byte, err error) {
	limit := int64(charts.MaxArchiveSize + charts.MaxProvSize + 1<<20)
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		tgz, err = io.ReadAll(r.Body)
		if err != nil {
			return nil, nil, errcode.New(errcode.SizeInvalid, "reading the chart: %v", err).WithStatus(http.StatusBadRequest)
		}
		return tgz, nil, nil
	}
	if err := r.ParseMultipartForm(limit); err != nil {
		return nil, nil, errcode.New(errcode.SizeInvalid, "reading the form: %v", err).WithStatus(http.StatusBadRequest)
	}
	field := func(name string) ([]byte, error) {
		f, _, err := r.FormFile(name)
		if errors.Is(err, http.ErrMissingFile) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	if tgz, err = field("chart"); err != nil {
		return nil, nil, err
	}
	if prov, err = field("prov"); err != nil {
		return nil, nil, err
	}
	if tgz == nil {
		return nil, nil, errcode.New(errcode.ManifestInvalid, "no chart in form field \"chart\"")
	}
	return tgz, prov, nil
}

func (h *Handler) cmUpload(w http.ResponseWriter, r *http.Request, c *caller, ns string) error {
	ctx := r.Context()
	tgz, prov, err := readUpload(w, r)
	if err != nil {
		return err
	}
	a, err := charts.NewArtifact(tgz, prov, now())
	if err != nil {
		return refusal(err)
	}
	repo := ns + "/" + a.Meta.Name
	if err := mayWrite(ctx, w, c, repo, scope.Push); err != nil {
		return err
	}
	if err := h.push(ctx, c, repo, a); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]bool{"saved": true})
}

// provFileRe finds the archive a provenance file signs: helm writes
// "files:\n  NAME-VERSION.tgz: sha256:HEX" into the signed message.
var provFileRe = regexp.MustCompile(`(?m)^\s+([^\s:/]+\.tgz):\s*sha256:([0-9a-f]{64})\s*$`)

func (h *Handler) cmUploadProv(w http.ResponseWriter, r *http.Request, c *caller, ns string) error {
	ctx := r.Context()
	prov, err := io.ReadAll(http.MaxBytesReader(w, r.Body, charts.MaxProvSize))
	if err != nil {
		return errcode.New(errcode.SizeInvalid, "reading the provenance file: %v", err).WithStatus(http.StatusBadRequest)
	}
	m := provFileRe.FindSubmatch(prov)
	if m == nil {
		return errcode.New(errcode.ManifestInvalid, "not a helm provenance file: it names no chart archive")
	}
	v, ok, err := h.findVersion(ctx, c, ns, strings.TrimSuffix(string(m[1]), ".tgz"))
	if err != nil {
		return err
	}
	if !ok {
		return errcode.New(errcode.NameUnknown, "chart %s is not in %s: upload the chart first", m[1], ns).WithStatus(http.StatusNotFound)
	}
	if v.ChartDigest.Encoded() != string(m[2]) {
		return errcode.New(errcode.ManifestInvalid, "the provenance file signs another archive than %s's", m[1])
	}
	if err := mayWrite(ctx, w, c, v.Repository, scope.Push); err != nil {
		return err
	}
	tgz, err := (&Hook{Store: h.o.Store, Blobs: h.o.Blobs}).readBlob(ctx, v.Repository, ocispec.Descriptor{Digest: v.ChartDigest}, charts.MaxArchiveSize)
	if err != nil {
		return err
	}
	if tgz == nil {
		return errcode.New(errcode.BlobUnknown, "the archive of %s is missing", m[1])
	}
	a, err := charts.NewArtifact(tgz, prov, v.CreatedAt)
	if err != nil {
		return refusal(err)
	}
	if err := h.push(ctx, c, v.Repository, a); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]bool{"saved": true})
}

func (h *Handler) cmDelete(w http.ResponseWriter, r *http.Request, c *caller, ns, name, version string) error {
	ctx := r.Context()
	vs, err := h.cmVersions(ctx, w, c, ns, name, version)
	if err != nil {
		return err
	}
	v := vs[0]
	if err := mayWrite(ctx, w, c, v.Repository, scope.Delete); err != nil {
		return err
	}
	tok, err := c.registryToken(ctx, v.Repository, scope.Delete)
	if err != nil {
		return err
	}
	if _, err := h.callRegistry(ctx, http.MethodDelete, "/v2/"+v.Repository+"/manifests/"+v.Digest.String(), "", nil, tok); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

// push stores artifact a in repository through the registry, with a registry token
// holding what the caller was granted there.
func (h *Handler) push(ctx context.Context, c *caller, repository string, a *charts.Artifact) error {
	tok, err := c.registryToken(ctx, repository, scope.Pull, scope.Push)
	if err != nil {
		return err
	}
	for _, b := range a.Blobs() {
		path := "/v2/" + repository + "/blobs/uploads/?digest=" + b.Desc.Digest.String()
		if _, err := h.callRegistry(ctx, http.MethodPost, path, "application/octet-stream", b.Data, tok); err != nil {
			return err
		}
	}
	path := "/v2/" + repository + "/manifests/" + charts.TagOf(a.Meta.Version)
	_, err = h.callRegistry(ctx, http.MethodPut, path, ocispec.MediaTypeImageManifest, a.Manifest, tok)
	return err
}

// callRegistry sends one request to the registry handler in-process and turns an
// error answer back into an *errcode.Error with its status and message.
func (h *Handler) callRegistry(ctx context.Context, method, path, contentType string, body []byte, bearer string) (*recorder, error) {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.o.Registry.ServeHTTP(rec, req)
	if rec.status < 300 {
		return rec, nil
	}
	var eb struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	code, msg := errcode.Unknown.Name, fmt.Sprintf("registry answered %d to %s %s", rec.status, method, path)
	if json.Unmarshal(rec.body.Bytes(), &eb) == nil && len(eb.Errors) > 0 {
		code, msg = eb.Errors[0].Code, eb.Errors[0].Message
	}
	return nil, errcode.New(errcode.Code{Name: code, Status: rec.status}, "%s", msg).WithStatus(rec.status)
}

// recorder is the ResponseWriter of an in-process registry call.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
