package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{New(BlobUnknown, "blob %s", "x").WithDetail(map[string]string{"digest": "x"}), 404, "BLOB_UNKNOWN", "blob x"},
		{fmt.Errorf("wrapped: %w", New(DigestInvalid, "bad")), 400, "DIGEST_INVALID", "bad"},
		{New(SizeInvalid, "too big").WithStatus(413), 413, "SIZE_INVALID", "too big"},
		{&Error{Code: NameUnknown}, 404, "NAME_UNKNOWN", NameUnknown.Message},
		{errors.New("disk on fire at /secret/path"), 500, "UNKNOWN", "internal server error"},
	} {
		w := httptest.NewRecorder()
		w.Header().Set("Docker-Content-Digest", "sha256:stale")
		if got := Write(w, tc.err); got != tc.status || w.Code != tc.status {
			t.Fatalf("%v: status %d/%d, want %d", tc.err, got, w.Code, tc.status)
		}
		var b struct {
			Errors []struct {
				Code, Message string
				Detail        any
			}
		}
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || len(b.Errors) != 1 {
			t.Fatalf("%v: body %q: %v", tc.err, w.Body, err)
		}
		if b.Errors[0].Code != tc.code || b.Errors[0].Message != tc.msg {
			t.Fatalf("%v: got %+v", tc.err, b.Errors[0])
		}
		if w.Header().Get("Docker-Content-Digest") != "" || w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("%v: headers %v", tc.err, w.Header())
		}
	}
}
