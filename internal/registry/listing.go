package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
)

// maxPage caps a page when the client asks for more, so one request cannot make the
// server build an unbounded response; the Link header leads to the rest.
const maxPage = 10000

// pagination reads the n and last parameters. n < 0 means "all" (up to maxPage).
func pagination(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	last = q.Get("last")
	n = -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", errcode.New(errcode.Unsupported, "n must be a non-negative integer, got %q", s).WithStatus(http.StatusBadRequest)
		}
		n = v
	}
	return n, last, nil
}

// page fetches up to n entries (plus one to learn whether more exist) and sets the Link
// header to the next page when there is one.
func page(w http.ResponseWriter, path string, n int, last string, fetch func(last string, n int) ([]string, error)) ([]string, error) {
	if n == 0 {
		return []string{}, nil
	}
	limit := n
	if limit < 0 || limit > maxPage {
		limit = maxPage
	}
	items, err := fetch(last, limit+1)
	if err != nil {
		return nil, err
	}
	if len(items) > limit {
		items = items[:limit]
		v := url.Values{"n": {strconv.Itoa(limit)}, "last": {items[len(items)-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, v.Encode()))
	}
	if items == nil {
		items = []string{}
	}
	return items, nil
}

func writeJSON(w http.ResponseWriter, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

func (h *Handler) getTags(w http.ResponseWriter, r *http.Request, name string) error {
	n, last, err := pagination(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if n == 0 {
		// n=0 still has to say whether the repository exists.
		if ok, err := h.o.Meta.RepositoryExists(ctx, name); err != nil {
			return err
		} else if !ok {
			return errcode.New(errcode.NameUnknown, "repository %s is unknown", name).WithDetail(map[string]string{"name": name})
		}
	}
	tags, err := page(w, "/v2/"+name+"/tags/list", n, last, func(last string, n int) ([]string, error) {
		return h.o.Meta.ListTags(ctx, name, last, n)
	})
	if errors.Is(err, metadata.ErrRepositoryNotFound) {
		return errcode.New(errcode.NameUnknown, "repository %s is unknown", name).WithDetail(map[string]string{"name": name})
	} else if err != nil {
		return err
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
}

func (h *Handler) getCatalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pagination(r)
	if err != nil {
		return err
	}
	fetch := func(last string, n int) ([]string, error) {
		return h.o.Meta.ListRepositories(r.Context(), last, n)
	}
	if a := h.o.Auth; a != nil && a.Catalog != nil {
		tok, _ := r.Context().Value(accessKey{}).(Token)
		if has, _ := allows(tok.Access, catalogScope, scope.All); !has {
			raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			f, err := a.Catalog(r.Context(), strings.TrimSpace(raw))
			if err != nil {
				return err
			}
			fetch = func(last string, n int) ([]string, error) {
				return h.o.Meta.Catalog(r.Context(), f, last, n)
			}
		}
	}
	repos, err := page(w, "/v2/_catalog", n, last, fetch)
	if err != nil {
		return err
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{repos})
}

func (h *Handler) getReferrers(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	artifactType := r.URL.Query().Get("artifactType")
	refs, err := h.o.Meta.Referrers(r.Context(), name, d, artifactType)
	if err != nil {
		return err
	}
	idx := ocispec.Index{
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: make([]ocispec.Descriptor, 0, len(refs)),
	}
	idx.SchemaVersion = 2
	for _, m := range refs {
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType:    m.MediaType,
			ArtifactType: m.ArtifactType,
			Digest:       m.Digest,
			Size:         m.Size,
			Annotations:  m.Annotations,
		})
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, ocispec.MediaTypeImageIndex, idx)
}
