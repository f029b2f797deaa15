// Package errcode holds the error codes of the OCI distribution spec and writes them as
// the spec's JSON error body.
package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Code is one of the distribution spec's error codes with the HTTP status it is sent with.
type Code struct {
	Name    string
	Status  int
	Message string
}

// The codes of the distribution spec (plus DENIED/UNAUTHORIZED used by auth and quotas).
var (
	BlobUnknown         = Code{"BLOB_UNKNOWN", http.StatusNotFound, "blob unknown to registry"}
	BlobUploadInvalid   = Code{"BLOB_UPLOAD_INVALID", http.StatusBadRequest, "blob upload invalid"}
	BlobUploadUnknown   = Code{"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound, "blob upload unknown to registry"}
	DigestInvalid       = Code{"DIGEST_INVALID", http.StatusBadRequest, "provided digest did not match uploaded content"}
	ManifestBlobUnknown = Code{"MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest, "manifest references a manifest or blob unknown to registry"}
	ManifestInvalid     = Code{"MANIFEST_INVALID", http.StatusBadRequest, "manifest invalid"}
	ManifestUnknown     = Code{"MANIFEST_UNKNOWN", http.StatusNotFound, "manifest unknown to registry"}
	NameInvalid         = Code{"NAME_INVALID", http.StatusBadRequest, "invalid repository name"}
	NameUnknown         = Code{"NAME_UNKNOWN", http.StatusNotFound, "repository name not known to registry"}
	SizeInvalid         = Code{"SIZE_INVALID", http.StatusBadRequest, "provided length did not match content length"}
	Unauthorized        = Code{"UNAUTHORIZED", http.StatusUnauthorized, "authentication required"}
	Denied              = Code{"DENIED", http.StatusForbidden, "requested access to the resource is denied"}
	Unsupported         = Code{"UNSUPPORTED", http.StatusMethodNotAllowed, "the operation is unsupported"}
	TooManyRequests     = Code{"TOOMANYREQUESTS", http.StatusTooManyRequests, "too many requests"}
	// Unknown is not a spec code; it is sent for failures that are not the client's.
	Unknown = Code{"UNKNOWN", http.StatusInternalServerError, "internal server error"}
	// Unavailable is not a spec code; it is sent when a backing store is down.
	Unavailable = Code{"UNAVAILABLE", http.StatusServiceUnavailable, "service unavailable"}
)

// Error is a Code with a request-specific message and detail; it satisfies error so
// handlers can return it and the HTTP edge writes it.
type Error struct {
	Code    Code
	Message string
	Detail  any
	// Status overrides Code.Status when non-zero (e.g. 413 for an oversized manifest).
	Status int
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message
	}
	return e.Code.Name + ": " + msg
}

// New returns an Error of code c with a formatted message.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns e with detail set.
func (e *Error) WithDetail(detail any) *Error { e.Detail = detail; return e }

// WithStatus returns e sent with status instead of its code's default.
func (e *Error) WithStatus(status int) *Error { e.Status = status; return e }

// HTTPStatus is the status e is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status
}

type body struct {
	Errors []item `json:"errors"`
}

type item struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// Write sends err as the spec's JSON error body. Errors that are not *Error are sent as
// 500 with a generic message so internals never leak to clients.
func Write(w http.ResponseWriter, err error) int {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: Unknown}
	}
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message
	}
	status := e.HTTPStatus()
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	w.WriteHeader(status)
	if status != http.StatusNoContent {
		_ = json.NewEncoder(w).Encode(body{Errors: []item{{Code: e.Code.Name, Message: msg, Detail: e.Detail}}})
	}
	return status
}
