package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
)

func manifestUnknown(name, ref string) error {
	return errcode.New(errcode.ManifestUnknown, "manifest %s is unknown in repository %s", ref, name).WithDetail(map[string]string{"reference": ref})
}

// accepts reports whether the request's Accept header admits media type mt. No Accept
// header, or a wildcard, admits everything.
func accepts(r *http.Request, mt string) bool {
	values := r.Header.Values("Accept")
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			t, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if t == mt || t == "*/*" || t == "application/*" {
				return true
			}
		}
	}
	return false
}

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	var m metadata.Manifest
	var err error
	tag := ""
	if reference.IsDigest(ref) {
		d, perr := parseDigest(ref)
		if perr != nil {
			return perr
		}
		m, err = h.o.Meta.GetManifest(r.Context(), name, d)
	} else {
		if !reference.IsTag(ref) {
			return errcode.New(errcode.ManifestInvalid, "%q is neither a valid tag nor a digest", ref)
		}
		m, err = h.o.Meta.GetManifestByTag(r.Context(), name, ref)
		tag = ref
	}
	if errors.Is(err, metadata.ErrManifestNotFound) || errors.Is(err, metadata.ErrTagNotFound) {
		return manifestUnknown(name, ref)
	} else if err != nil {
		return err
	}
	if !accepts(r, m.MediaType) {
		return errcode.New(errcode.ManifestUnknown, "manifest %s is a %s, which the request's Accept header does not list", ref, m.MediaType)
	}
	hd := w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Content-Length", strconv.Itoa(len(m.Payload)))
	hd.Set("Docker-Content-Digest", m.Digest.String())
	hd.Set("ETag", `"`+m.Digest.String()+`"`)
	if m.Subject != "" {
		hd.Set("OCI-Subject", m.Subject.String())
	}
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, m.Digest.String()) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		// Counted once the manifest is sent: only successful pulls, whoever made them.
		_, _ = w.Write(m.Payload)
		if h.o.Policy != nil {
			h.o.Policy.Pulled(name, m.Digest, tag)
		}
	}
	return nil
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	max := h.o.MaxManifestSize
	if r.ContentLength > max {
		return errcode.New(errcode.SizeInvalid, "manifest is %d bytes, the limit is %d", r.ContentLength, max).WithStatus(http.StatusRequestEntityTooLarge)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, max+1)); err != nil {
		return errcode.New(errcode.ManifestInvalid, "reading the manifest: %v", err)
	}
	if int64(buf.Len()) > max {
		return errcode.New(errcode.SizeInvalid, "manifest is larger than the limit of %d bytes", max).WithStatus(http.StatusRequestEntityTooLarge)
	}
	payload := buf.Bytes()

	var tags []string
	var d digest.Digest
	if reference.IsDigest(ref) {
		// Distribution spec 1.1+dev: PUT by digest may tag it at once (?tag=a&tag=b),
		// answered with one OCI-Tag header per tag applied.
		tags = r.URL.Query()["tag"]
		for _, t := range tags {
			if !reference.IsTag(t) {
				return errcode.New(errcode.ManifestInvalid, "tag %q is invalid: it must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", t)
			}
		}
		want, err := parseDigest(ref)
		if err != nil {
			return err
		}
		if d = want.Algorithm().FromBytes(payload); d != want {
			return errcode.New(errcode.DigestInvalid, "manifest digest is %s, not %s", d, want).WithDetail(map[string]string{"digest": want.String()})
		}
	} else {
		if !reference.IsTag(ref) {
			return errcode.New(errcode.ManifestInvalid, "tag %q is invalid: it must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", ref)
		}
		tags = []string{ref}
		d = digest.SHA256.FromBytes(payload)
	}
	p, err := parseManifest(r.Header.Get("Content-Type"), payload)
	if err != nil {
		return errcode.New(errcode.ManifestInvalid, "%v", err)
	}
	m := metadata.Manifest{
		Repository:   name,
		Digest:       d,
		MediaType:    p.mediaType,
		ArtifactType: p.artifactType,
		Size:         int64(len(payload)),
		Payload:      payload,
		Subject:      p.subject,
		Annotations:  p.annotations,
	}
	if len(tags) == 0 {
		tags = []string{""}
	}
	for _, tag := range tags {
		if err := h.checkTagMove(r.Context(), name, tag, d); err != nil {
			return err
		}
	}
	stored, err := h.checkArtifact(r.Context(), m, tags)
	if err != nil {
		return err
	}
	hd := w.Header()
	for i, tag := range tags {
		res, err := h.o.Meta.PutManifest(r.Context(), m, p.refs, tag)
		if err != nil {
			var missing *metadata.MissingReferenceError
			if errors.As(err, &missing) {
				return errcode.New(errcode.ManifestBlobUnknown, "%v", missing).WithDetail(map[string]string{"digest": missing.Digest.String()})
			}
			if errors.Is(err, metadata.ErrQuotaExceeded) || errors.Is(err, metadata.ErrRepositoryFull) {
				return quotaDenied(err)
			}
			return err
		}
		// Every successful PUT is a push (re-pushes too, as webhook consumers expect);
		// tag moves are reported per tag.
		if i == 0 {
			h.publish(r, events.Event{Type: events.ManifestPushed, Repository: name, Digest: d.String(), Tag: tag, MediaType: m.MediaType, Size: m.Size})
		}
		if res.TagMoved {
			h.publish(r, events.Event{Type: events.TagMoved, Repository: name, Digest: d.String(), PreviousDigest: res.PreviousTagDigest.String(), Tag: tag, MediaType: m.MediaType})
		}
		if tag != "" && reference.IsDigest(ref) {
			hd.Add("OCI-Tag", tag)
		}
	}
	if stored != nil {
		if err := stored(r.Context()); err != nil {
			return err
		}
	}
	hd.Set("Location", fmt.Sprintf("/v2/%s/manifests/%s", name, d))
	hd.Set("Docker-Content-Digest", d.String())
	if p.subject != "" {
		hd.Set("OCI-Subject", p.subject.String())
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	ctx := r.Context()
	if reference.IsDigest(ref) {
		d, err := parseDigest(ref)
		if err != nil {
			return err
		}
		if err := h.checkManifestDelete(ctx, name, d); err != nil {
			return err
		}
		res, err := h.o.Meta.DeleteManifest(ctx, name, d)
		var referenced *metadata.ReferencedManifestError
		if errors.Is(err, metadata.ErrManifestNotFound) {
			return manifestUnknown(name, ref)
		} else if errors.As(err, &referenced) {
			return manifestReferenced(name, referenced)
		} else if err != nil {
			return err
		}
		for _, t := range res.Tags {
			h.publish(r, events.Event{Type: events.TagDeleted, Repository: name, Digest: d.String(), Tag: t})
		}
		h.publish(r, events.Event{Type: events.ManifestDeleted, Repository: name, Digest: d.String(), MediaType: res.Manifest.MediaType})
	} else {
		if !reference.IsTag(ref) {
			return errcode.New(errcode.ManifestInvalid, "%q is neither a valid tag nor a digest", ref)
		}
		if err := h.checkTagDelete(ctx, name, ref); err != nil {
			return err
		}
		d, err := h.o.Meta.DeleteTag(ctx, name, ref)
		if errors.Is(err, metadata.ErrTagNotFound) {
			return manifestUnknown(name, ref)
		} else if err != nil {
			return err
		}
		h.publish(r, events.Event{Type: events.TagDeleted, Repository: name, Digest: d.String(), Tag: ref})
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// manifestReferenced refuses to delete a child of an index: 409 Conflict, because the
// request conflicts with the repository's state and succeeds once the index is gone,
// with the spec's DENIED code, the refusal of an operation on a resource. Not 405
// UNSUPPORTED, which the spec reserves for a registry that does not delete manifests
// at all (clients then stop trying), and not 403, which clients read as missing
// rights. docs/registry.md says the same.
func manifestReferenced(name string, e *metadata.ReferencedManifestError) error {
	return errcode.New(errcode.Denied, "%v in repository %s: delete the index first (deleting a tag deletes only the tag)", e, name).
		WithStatus(http.StatusConflict).
		WithDetail(map[string]string{"digest": e.Digest.String(), "index": e.Indexes[0].String()})
}
