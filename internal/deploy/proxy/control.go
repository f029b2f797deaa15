package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MinSecretBytes is the shortest control secret accepted.
const MinSecretBytes = 16

// maxControlBody bounds a control request's body.
const maxControlBody = 64 << 10

// Error codes of the control channel's JSON errors.
const (
	CodeUnauthorized = "UNAUTHORIZED"
	CodeInvalid      = "INVALID"
	CodeTooLarge     = "TOO_LARGE"
	CodeNotFound     = "NOT_FOUND"
	CodeBusy         = "BUSY"
	CodeConflict     = "CONFLICT"
	CodeUnhealthy    = "UNHEALTHY"
	CodeInternal     = "INTERNAL"
)

// errorBody is every control error: {"error":{"code":…,"message":…}}.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Control returns the handler of the control channel, for a listener of its own
// (never the public one). Every request must carry "Authorization: Bearer SECRET";
// the secret is compared in constant time and must be at least MinSecretBytes long.
//
//	GET    /v1/services          every service's Status
//	GET    /v1/services/{name}   one Status
//	PUT    /v1/services/{name}   a DeployRequest; answers a DeployResult once switched and drained
//	DELETE /v1/services/{name}   stop routing it; answers a RemoveResult once drained
func (p *Proxy) Control(secret []byte) (http.Handler, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("the control secret is %d bytes; it must be at least %d (generate one: head -c 32 /dev/urandom | base64)", len(secret), MinSecretBytes)
	}
	want := sha256.Sum256(secret)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/services", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.List())
	})
	mux.HandleFunc("GET /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, err := p.Status(r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("PUT /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		var req DeployRequest
		r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeErrorCode(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxControlBody))
				return
			}
			writeErrorCode(w, http.StatusBadRequest, CodeInvalid, "the body is not a deploy request: "+err.Error())
			return
		}
		if dec.More() {
			writeErrorCode(w, http.StatusBadRequest, CodeInvalid, "the body holds more than one JSON value")
			return
		}
		res, err := p.Deploy(r.Context(), r.PathValue("name"), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("DELETE /v1/services/{name}", func(w http.ResponseWriter, r *http.Request) {
		res, err := p.Remove(r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(tok))
		// Hashing first makes the compare independent of the secret's length too.
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hubctl-proxy"`)
			writeErrorCode(w, http.StatusUnauthorized, CodeUnauthorized, "the control channel needs the proxy's secret: Authorization: Bearer SECRET")
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErrorCode(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, CodeInternal
	switch {
	case errors.Is(err, ErrInvalid):
		status, code = http.StatusBadRequest, CodeInvalid
	case errors.Is(err, ErrNotFound):
		status, code = http.StatusNotFound, CodeNotFound
	case errors.Is(err, ErrBusy):
		status, code = http.StatusConflict, CodeBusy
	case errors.Is(err, ErrConflict):
		status, code = http.StatusConflict, CodeConflict
	case errors.Is(err, ErrUnhealthy):
		status, code = http.StatusUnprocessableEntity, CodeUnhealthy
	}
	writeErrorCode(w, status, code, err.Error())
}

// codeErr maps a control error code back to the sentinel it stands for.
func codeErr(code string) error {
	switch code {
	case CodeInvalid, CodeTooLarge:
		return ErrInvalid
	case CodeNotFound:
		return ErrNotFound
	case CodeBusy:
		return ErrBusy
	case CodeConflict:
		return ErrConflict
	case CodeUnhealthy:
		return ErrUnhealthy
	case CodeUnauthorized:
		return ErrUnauthorized
	}
	return nil
}

// ErrUnauthorized: the control channel refused the secret.
var ErrUnauthorized = errors.New("the proxy refused the control secret")
