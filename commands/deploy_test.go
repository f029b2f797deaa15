package commands

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/proxyimage"
	"github.com/hubctl/hubctl/internal/iostreams"
)

const deployOK = `service:
  name: web
  image: localhost:5000/acme/web:1
  replicas: 3
  proxy: {port: 8080}
hosts:
  - name: local
  - name: edge
    docker: ssh://deploy@edge.example.com
`

const deployBroken = `service:
  name: web
  image: localhost:5000/acme/web:1
  replica: 3
hosts:
  - name: edge
`

func TestDeployValidate(t *testing.T) {
	dir := t.TempDir()
	ok, broken := filepath.Join(dir, "ok.yaml"), filepath.Join(dir, "broken.yaml")
	for f, s := range map[string]string{ok: deployOK, broken: deployBroken} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run(t, nil, "deploy", "validate", ok)
	if code != 0 || out != ok+": ok (web: 2 on local, 1 on edge)\n" || errOut != "" {
		t.Errorf("ok file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = run(t, nil, "deploy", "validate", ok, broken)
	want := broken + `:4:3: service: unknown key "replica" (did you mean "replicas"?)`
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, broken+":6:5: hosts[0] (edge) has no docker address") || !strings.Contains(errOut, "deploy files have errors") {
		t.Errorf("broken file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = run(t, nil, "deploy", "validate", "-o", "json", broken)
	var v DeployValidation
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.OK || len(v.Errors) != 2 || v.Errors[0].Line != 4 || v.Errors[0].Col != 3 {
		t.Errorf("json: exit %d, %+v, %v", code, v, err)
	}
	code, _, errOut = run(t, nil, "deploy", "validate", "-o", "yaml", ok)
	if code != 1 || !strings.Contains(errOut, `invalid --output "yaml"`) {
		t.Errorf("bad -o: exit %d, %q", code, errOut)
	}
	code, out, _ = run(t, nil, "deploy", "validate", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(out, "missing.yaml:1:1: open") {
		t.Errorf("missing file: exit %d, %q", code, out)
	}
	code, out, _ = run(t, nil, "deploy", "schema")
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, "hubctl deploy") {
		t.Errorf("schema: exit %d, %.80q", code, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestProxyCommands runs `hubctl proxy run` in-process and drives it with the
// control verbs: deploy, status, rm; without the secret nothing works.
func TestProxyCommands(t *testing.T) {
	const secret = "a-secret-of-enough-bytes"
	env := map[string]string{proxySecretEnv: secret}
	task, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "v1") })}
	go ts.Serve(task)
	defer ts.Close()

	pub, ctl := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	ios, _, _, errOut := iostreams.Test()
	go func() {
		f := NewFactory(ios, BuildInfo{Version: "v1"})
		f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		done <- Execute(ctx, f, []string{"proxy", "run", "--listen", pub, "--control-listen", ctl, "--state-file", filepath.Join(t.TempDir(), "state.json")})
	}()
	control := "http://" + ctl
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", ctl)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy run did not listen: %s", errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}

	code, out, stderr := run(t, env, "proxy", "deploy", "web", "--control", control, "--target", task.Addr().String(), "--health-interval", "50ms")
	if code != 0 || out != "web: generation 1 serving "+task.Addr().String()+"\n" {
		t.Fatalf("proxy deploy: exit %d, %q, %q", code, out, stderr)
	}
	resp, err := http.Get("http://" + pub + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "v1" {
		t.Errorf("through the proxy: %q", b)
	}
	code, out, _ = run(t, env, "proxy", "status", "--control", control, "-o", "json")
	if code != 0 || !strings.Contains(out, `"service":"web"`) || !strings.Contains(out, `"healthy":true`) {
		t.Errorf("proxy status: exit %d, %q", code, out)
	}
	code, out, _ = run(t, env, "proxy", "status", "--control", control)
	if code != 0 || !strings.HasPrefix(out, "SERVICE") || !strings.Contains(out, task.Addr().String()) {
		t.Errorf("proxy status table: exit %d, %q", code, out)
	}
	// Without the secret, or with a wrong one: refused, one line.
	code, _, stderr = run(t, nil, "proxy", "status", "--control", control)
	if code != 1 || !strings.Contains(stderr, "no control secret") {
		t.Errorf("no secret: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, map[string]string{proxySecretEnv: "wrong-secret-wrong-secret"}, "proxy", "rm", "web", "--control", control)
	if code != 1 || !strings.Contains(stderr, "control channel needs the proxy's secret") {
		t.Errorf("wrong secret: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, env, "proxy", "deploy", "web", "--control", control, "--target", "127.0.0.1:1", "--deploy-timeout", "300ms", "--health-interval", "50ms")
	if code != 1 || !strings.Contains(stderr, "did not become healthy") {
		t.Errorf("unhealthy deploy: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, env, "proxy", "rm", "web", "--control", control)
	if code != 0 || !strings.Contains(stderr, "removed web") {
		t.Errorf("proxy rm: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, env, "proxy", "rm", "web", "--control", control)
	if code != 1 || !strings.Contains(stderr, "routes no service of that name") {
		t.Errorf("proxy rm again: exit %d, %q", code, stderr)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("proxy run exited %d: %s", code, errOut)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("proxy run did not stop")
	}
}

func TestProxyRunRefusesBadSetup(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "no control secret"},
		{map[string]string{proxySecretEnv: "short"}, nil, "must be at least 16"},
		{map[string]string{proxySecretEnv: "a-secret-of-enough-bytes"}, []string{"--tls-listen", ":0"}, "--tls-listen needs --tls-cert"},
		{map[string]string{proxySecretEnv: "a-secret-of-enough-bytes"}, []string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{map[string]string{proxySecretEnv: "a-secret-of-enough-bytes"}, []string{"--log-format", "xml"}, "invalid --log-format"},
		{nil, []string{"--secret-file", "/nonexistent/secret"}, "control secret: open /nonexistent/secret"},
		{nil, []string{"--acme-domain", "localhost", "--tls-listen", ":0"}, "needs a DNS name with a dot"},
		{nil, []string{"--acme-domain", "a.example.com", "--tls-listen", ":0", "--acme-directory", "http://ca/dir"}, "must be an https URL"},
		{nil, []string{"--acme-domain", "a.example.com", "--tls-listen", ":0", "--tls-cert", "c", "--tls-key", "k"}, "exclude each other"},
		{nil, []string{"--acme-domain", "a.example.com"}, "--tls-listen needs"},
		{nil, []string{"--acme-email", "a@example.com"}, "need --acme-domain"},
		{nil, []string{"--acme-domain", "a.example.com", "--tls-listen", ":0"}, "needs --acme-cache or --state-file"},
	} {
		code, _, stderr := run(t, tt.env, append([]string{"proxy", "run", "--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"}, tt.args...)...)
		if code != 1 || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v %v: exit %d, %q; want %q", tt.env, tt.args, code, stderr, tt.want)
		}
	}
}

// TestDeployVerbsRefuseBadInput: what is wrong is said in one line before anything
// is resolved, dialled or locked.
func TestDeployVerbsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	broken := write("broken.yaml", deployBroken)
	kube, err := os.ReadFile("../internal/deploy/testdata/kube.yaml")
	if err != nil {
		t.Fatal(err)
	}
	badKube := write("kube.yaml", strings.Replace(string(kube), "  namespace: shop\n", "  namespace: shop\n  kubeconfig: "+filepath.Join(dir, "no-such-kubeconfig")+"\n", 1))
	garbled := write("garbled-kubeconfig", "apiVersion: v1\nkind: Config\nclusters: {nope\n")
	garbledKube := write("kube2.yaml", strings.Replace(string(kube), "  namespace: shop\n", "  namespace: shop\n  kubeconfig: "+garbled+"\n", 1))
	secret := write("secret.yaml", "service:\n  name: web\n  image: localhost:5000/acme/web:1\n  secrets: [DEPLOY_TEST_NEVER_SET_X]\n")
	tls := write("tls.yaml", "service:\n  name: web\n  image: localhost:5000/acme/web:1\n  proxy:\n    port: 8080\n    tls: {cert: /c.pem, key: /k.pem}\n")
	noProxyImage := write("proxy.yaml", "service:\n  name: web\n  image: localhost:5000/acme/web:1\n  proxy:\n    port: 8080\n")
	noNamespace := write("nons.yaml", "service:\n  name: web\n  image: localhost:5000/web:1\n")
	// Without --proxy-image hubctl builds the proxy image from its own binary: a test
	// binary linked with libc is refused with the way out; a static one gets as far as
	// resolving the image, which is not there.
	noProxyWant := "building one from this hubctl failed (give --proxy-image"
	if exe, err := os.Executable(); err == nil {
		if _, err := proxyimage.CheckBinary(exe); err == nil {
			noProxyWant = "resolve image localhost:5000/acme/web:1"
		}
	}
	state := filepath.Join(dir, "state")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "up", "-f", broken}, broken + `:4:3: service: unknown key "replica"`},
		{[]string{"deploy", "down", "-f", broken}, "(and 1 more: hubctl deploy validate " + broken + ")"},
		// A kubeconfig that does not exist: one line naming it, nothing recorded.
		{[]string{"deploy", "update", "-f", badKube, "--state-dir", state}, "kubeconfig: stat " + filepath.Join(dir, "no-such-kubeconfig")},
		{[]string{"deploy", "update", "-f", garbledKube, "--state-dir", state}, "kubeconfig: "},
		{[]string{"deploy", "history", "-f", badKube, "--state-dir", state}, "kubeconfig: "},
		{[]string{"deploy", "rollback", "-f", badKube, "--state-dir", state}, "kubeconfig: "},
		{[]string{"deploy", "down", "-f", badKube, "--state-dir", state}, "kubeconfig: "},
		{[]string{"deploy", "update", "-f", secret}, "secret DEPLOY_TEST_NEVER_SET_X is not set"},
		{[]string{"deploy", "rollback", "-f", secret, "one"}, `VERSION "one"`},
		// A certificate file that is not there: refused before any engine is dialled.
		{[]string{"deploy", "up", "-f", tls, "--proxy-image", "p:1", "--dry-run"}, "proxy.tls: cert: open /c.pem: no such file or directory"},
		{[]string{"deploy", "up", "-f", noProxyImage}, noProxyWant},
		{[]string{"deploy", "up", "-f", filepath.Join(dir, "none.yaml")}, "deploy file: open"},
		{[]string{"deploy", "up", "-f", secret, "-o", "yaml"}, `invalid --output "yaml"`},
		{[]string{"deploy", "rollback", "-f", secret, "--state-dir", state}, "web has no succeeded deploy before its last one"},
		// The hub must hold the image: its namespace keeps the history.
		{[]string{"deploy", "history", "-f", secret, "--hub", "hub.example.com"}, "service.image localhost:5000/acme/web:1 is not on the hub hub.example.com"},
		{[]string{"deploy", "lock", "break", "-f", noNamespace, "--hub", "localhost:5000"}, "has no namespace on localhost:5000"},
	} {
		code, _, errOut := run(t, nil, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 2 {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, code, errOut, tc.want)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("a refused verb made the state directory: %v", err)
	}
	code, out, errOut := run(t, nil, "deploy", "history", "-f", secret, "--state-dir", state, "-o", "json")
	if code != 0 || out != "[]\n" {
		t.Errorf("history of nothing: exit %d, %q %q", code, out, errOut)
	}
	// $HUBCTL_REGISTRY is the default hub; --hub= keeps the history local.
	hubEnv := map[string]string{"HUBCTL_REGISTRY": "hub.example.com"}
	if code, _, errOut := run(t, hubEnv, "deploy", "history", "-f", secret, "--state-dir", state); code == 0 || !strings.Contains(errOut, "not on the hub hub.example.com") {
		t.Errorf("history with $HUBCTL_REGISTRY: exit %d, %q", code, errOut)
	}
	if code, out, errOut := run(t, hubEnv, "deploy", "history", "-f", secret, "--state-dir", state, "-o", "json", "--hub="); code != 0 || out != "[]\n" {
		t.Errorf("history with --hub=: exit %d, %q %q", code, out, errOut)
	}
}
