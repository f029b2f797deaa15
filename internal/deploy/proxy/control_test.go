package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// TestControlRefusesWithoutSecret is the attacker's test: no secret, a wrong one, a
// prefix of it, another scheme, or the control path on the public listener change
// nothing and read nothing.
func TestControlRefusesWithoutSecret(t *testing.T) {
	tp := startProxy(t, "")
	evil := startTask(t, "evil", true)
	body := `{"targets":["` + evil.addr + `"],"health":{"path":"/up","interval":"20ms"}}`
	for _, tt := range []struct{ name, auth string }{
		{"none", ""},
		{"wrong", "Bearer wrong-secret-wrong-secret"},
		{"prefix", "Bearer " + testSecret[:len(testSecret)-1]},
		{"longer", "Bearer " + testSecret + "x"},
		{"lower-case scheme", "bearer " + testSecret},
		{"basic", "Basic " + testSecret},
		{"bare", testSecret},
	} {
		for _, m := range []struct{ method, path, body string }{
			{"PUT", "/v1/services/web", body},
			{"GET", "/v1/services", ""},
			{"GET", "/v1/services/web", ""},
			{"DELETE", "/v1/services/web", ""},
		} {
			req, _ := http.NewRequest(m.method, tp.control+m.path, strings.NewReader(m.body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), CodeUnauthorized) || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %s: %s %s; want 401", m.method, m.path, tt.name, resp.Status, b)
			}
		}
	}
	// The public listener has no control paths: with the right secret it is a request
	// for a service like any other.
	req, _ := http.NewRequest("PUT", tp.url+"/v1/services/web", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("control PUT on the public listener: %s; want 404 (no service)", resp.Status)
	}
	if l := tp.p.List(); len(l) != 0 {
		t.Fatalf("services after refused requests: %+v", l)
	}
	if evil.requests.Load() != 0 {
		t.Errorf("the refused target got %d requests", evil.requests.Load())
	}
	// The Client reports a wrong secret as ErrUnauthorized.
	c, err := NewClient(tp.control, "wrong-secret-wrong-secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(context.Background()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("client with a wrong secret: %v; want ErrUnauthorized", err)
	}
	// A short secret is refused on both sides.
	if _, err := tp.p.Control([]byte("short")); err == nil {
		t.Error("Control accepted a 5-byte secret")
	}
	if _, err := NewClient(tp.control, "short", nil); err == nil {
		t.Error("NewClient accepted a 5-byte secret")
	}
}

// TestControlBadRequests: oversized and malformed bodies and out-of-bounds values
// get a clear 4xx and change nothing.
func TestControlBadRequests(t *testing.T) {
	tp := startProxy(t, "")
	ok := startTask(t, "v1", true)
	huge := `{"targets":["` + ok.addr + `"],"hosts":["` + strings.Repeat("a", 100<<10) + `"]}`
	for _, tt := range []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"oversized", "/v1/services/web", huge, 413, "larger than"},
		{"not json", "/v1/services/web", "targets: [x]", 400, "not a deploy request"},
		{"unknown field", "/v1/services/web", `{"targets":["` + ok.addr + `"],"weight":3}`, 400, "unknown field"},
		{"two values", "/v1/services/web", `{"targets":["` + ok.addr + `"]}{}`, 400, "more than one"},
		{"no targets", "/v1/services/web", `{"targets":[]}`, 400, "no targets"},
		{"url target", "/v1/services/web", `{"targets":["http://` + ok.addr + `"]}`, 400, "HOST:PORT"},
		{"port 0", "/v1/services/web", `{"targets":["127.0.0.1:0"]}`, 400, "port"},
		{"twice", "/v1/services/web", `{"targets":["` + ok.addr + `","` + ok.addr + `"]}`, 400, "twice"},
		{"bad name", "/v1/services/Web_", `{"targets":["` + ok.addr + `"]}`, 400, "service name"},
		{"bad host", "/v1/services/web", `{"targets":["` + ok.addr + `"],"hosts":["a b"]}`, 400, "DNS name"},
		{"bad path", "/v1/services/web", `{"targets":["` + ok.addr + `"],"health":{"path":"up"}}`, 400, "must start with /"},
		{"bad duration", "/v1/services/web", `{"targets":["` + ok.addr + `"],"health":{"interval":"soon"}}`, 400, "not a duration"},
		{"tiny interval", "/v1/services/web", `{"targets":["` + ok.addr + `"],"health":{"interval":"1ns"}}`, 400, "between"},
		{"threshold", "/v1/services/web", `{"targets":["` + ok.addr + `"],"health":{"threshold":1000}}`, 400, "threshold"},
		{"unknown service", "/v1/services/nope", "", 404, "no such service"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := "PUT"
			if tt.body == "" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, tp.control+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+testSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.msg) {
				t.Errorf("%s %s; want %d containing %q", resp.Status, b, tt.status, tt.msg)
			}
		})
	}
	if l := tp.p.List(); len(l) != 0 {
		t.Fatalf("services after bad requests: %+v", l)
	}
}

// TestRestartFromState: a proxy started on the state file of another serves the
// same services at once, with the same generation.
func TestRestartFromState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	tp := startProxy(t, state)
	v1 := startTask(t, "v1", true)
	api := startTask(t, "api", true)
	ctx := context.Background()
	for _, d := range []struct {
		name string
		req  DeployRequest
	}{
		{"web", DeployRequest{Targets: targets(v1), Health: fastHealth}},
		{"web", DeployRequest{Targets: targets(v1), Health: fastHealth}},
		{"api", DeployRequest{Hosts: []string{"api.test"}, Targets: targets(api), Health: fastHealth}},
	} {
		if _, err := tp.client.Deploy(ctx, d.name, d.req); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v; want 0600", fi.Mode().Perm())
	}
	tp.close()

	tp2 := startProxy(t, state)
	if b, err := loadtest.Get(http.DefaultClient, tp2.url+"/"); err != nil || b != "v1" {
		t.Fatalf("restarted proxy: %q, %v; want v1 at once", b, err)
	}
	req, _ := http.NewRequest("GET", tp2.url+"/", nil)
	req.Host = "api.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "api" {
		t.Errorf("restarted proxy, host api.test: %q", b)
	}
	st := mustStatus(t, tp2.p, "web")
	if st.Generation != 2 || st.Health.Path != "/up" || st.Health.Threshold != 2 {
		t.Errorf("restarted status = %+v", st)
	}
	// Removing writes the state too.
	if _, err := tp2.client.Remove(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	tp2.close()
	tp3 := startProxy(t, state)
	if l := tp3.p.List(); len(l) != 1 || l[0].Service != "web" {
		t.Errorf("after remove and restart: %+v", l)
	}

	// A damaged state file stops the start with a message naming it.
	for _, bad := range []string{"{", `{"version":9,"services":[]}`, `{"version":1,"services":[{"name":"web","request":{"targets":["nope"]}}]}`, `{"version":1,"extra":1}`} {
		if err := os.WriteFile(state, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Options{StateFile: state}); err == nil || !strings.Contains(err.Error(), state) {
			t.Errorf("state %s: %v; want an error naming the file", bad, err)
		}
	}
	if err := os.WriteFile(state, bytes.Repeat([]byte(" "), maxStateBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StateFile: state}); err == nil {
		t.Error("a state file over the limit was read")
	}
}
