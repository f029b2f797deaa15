package httpdebug

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTraceRedactsSecrets: the trace shows requests and answers, and never a
// password, token, cookie or presigned signature.
func TestTraceRedactsSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=cookie-secret")
		w.Header().Set("Location", "https://bucket.example/blob?X-Amz-Signature=sig-secret&X-Amz-Credential=cred-secret&x=1")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, `{"token":"body-secret"}`)
	}))
	defer srv.Close()
	var out strings.Builder
	c := &http.Client{Transport: &Transport{Out: &out}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/token?access_token=query-secret&scope=repository:a:pull", strings.NewReader("password=form-secret"))
	req.Header.Set("Authorization", "Basic YWxpY2U6cGFzc3dvcmQtc2VjcmV0")
	req.Header.Set("Cookie", "session=cookie-secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	trace := out.String()
	for _, want := range []string{"--> POST " + srv.URL + "/token?", "--> Authorization: Basic <redacted>", "<-- HTTP/1.1 418 I'm a teapot", "scope=repository%3Aa%3Apull", "x=1", "--> (body: 20 bytes)"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
	for _, secret := range []string{"YWxpY2U6", "query-secret", "form-secret", "cookie-secret", "sig-secret", "cred-secret", "body-secret"} {
		if strings.Contains(trace, secret) {
			t.Errorf("trace shows %q:\n%s", secret, trace)
		}
	}
}
