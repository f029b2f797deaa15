package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/tlsconf"
)

// tlsFixture is a token-auth server on --tls=self-signed, its CA, and a CA of
// another hub that clients must refuse.
type tlsFixture struct {
	s       *server
	ca      string // the server's CA certificate
	wrongCA string // a CA that did not sign the server's certificate
	certDir string // a folder holding only ca.crt (skopeo's --cert-dir)
	badDir  string // the same with the wrong CA
}

func newTLSFixture(t *testing.T, args ...string) tlsFixture {
	t.Helper()
	s := startServerWith(t, t.TempDir(), append([]string{"--tls=self-signed", "--tls-names", "127.0.0.1,localhost"}, args...)...)
	f := tlsFixture{s: s, ca: filepath.Join(s.DataDir, "tls", "ca.crt")}
	log, _ := os.ReadFile(s.logPath)
	if !strings.Contains(string(log), "/etc/docker/certs.d/127.0.0.1:") {
		t.Errorf("serve did not print the trust line:\n%s", log)
	}
	other := tlsconf.SelfSigned{Dir: t.TempDir()}
	if _, err := other.Ensure([]string{"127.0.0.1", "localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.wrongCA = other.CACert()
	f.certDir, f.badDir = t.TempDir(), t.TempDir()
	for dir, ca := range map[string]string{f.certDir: f.ca, f.badDir: f.wrongCA} {
		b, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// wantTLSFailure asserts a client failed on the certificate, not on something else.
func wantTLSFailure(t *testing.T, what, stdout, stderr string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded with a wrong CA\nstdout:\n%s\nstderr:\n%s", what, stdout, stderr)
	}
	out := strings.ToLower(stdout + stderr)
	if !strings.Contains(out, "certificate") && !strings.Contains(out, "x509") && !strings.Contains(out, "http request to an https server") {
		t.Errorf("%s failed, but not on the certificate: %v\n%s\n%s", what, err, stdout, stderr)
	}
}

// TestTLSClientsTrustOnlyTheCA: hubctl, crane, skopeo, oras and helm push and pull over
// HTTPS to a --tls=self-signed hub given only its CA (each in its own way of being
// given one), and each refuses the hub when given another CA.
func TestTLSClientsTrustOnlyTheCA(t *testing.T) {
	f := newTLSFixture(t)
	s := f.s
	dir := t.TempDir()

	t.Run("hubctl", func(t *testing.T) {
		img := buildImage(t, "amd64", randomLayer(t, 16<<10))
		lay := newLayout(t)
		lay.addImage(img, "1")
		ref := s.Addr + "/admin/tls:1"
		// --ca-file.
		env := clientEnv(t, t.TempDir())
		runStdin(t, "", env, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin", "--ca-file", f.ca)
		run(t, "", env, hubctlBin, "push", "--ca-file", f.ca, "oci:"+lay.Dir+":1", ref)
		out := run(t, "", env, hubctlBin, "pull", "--ca-file", f.ca, ref, "oci:"+filepath.Join(t.TempDir(), "out")+":1")
		if !strings.HasSuffix(strings.TrimSpace(out), img.Manifest.Digest) {
			t.Fatalf("pull printed %q", out)
		}
		// The certs.d folder under hubctl's config, for every verb without a flag.
		env2 := clientEnv(t, t.TempDir())
		hostDir := filepath.Join(envDir(env2, "XDG_CONFIG_HOME"), "hubctl", "certs.d", s.Addr)
		if err := os.MkdirAll(hostDir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(f.ca)
		os.WriteFile(filepath.Join(hostDir, "ca.crt"), b, 0o644)
		runStdin(t, "", env2, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin")
		run(t, "", env2, hubctlBin, "tags", s.Addr+"/admin/tls")
		run(t, "", env2, hubctlBin, "repo", "show", "--registry", s.Addr, "admin/tls")
		run(t, "", env2, hubctlBin, "copy", ref, s.Addr+"/admin/tls:copied")
		// A wrong CA: login, push and the hub API all fail on the chain.
		so, se, err := runErr(t, "", env, hubctlBin, "push", "--ca-file", f.wrongCA, "oci:"+lay.Dir+":1", ref)
		wantTLSFailure(t, "hubctl push with a wrong CA", so, se, err)
		so, se, err = runErr(t, "", env, hubctlBin, "repo", "show", "--registry", s.Addr, "admin/tls", "--ca-file", f.wrongCA)
		wantTLSFailure(t, "hubctl repo show with a wrong CA", so, se, err)
		so, se, err = runErrStdin(t, env, adminPassword+"\n", hubctlBin, "login", s.Addr, "-u", "admin", "--password-stdin", "--ca-file", f.wrongCA)
		wantTLSFailure(t, "hubctl login with a wrong CA", so, se, err)
	})

	// The Docker engine: it skips certificate checks for 127.0.0.0/8, so this shows that
	// docker pushes and pulls over serve's TLS, not that the chain is right.
	t.Run("docker", func(t *testing.T) {
		requireDocker(t)
		ctxDir, _ := helloContext(t, "hello over TLS")
		env := clientEnv(t, t.TempDir())
		if exec.Command("docker", "buildx", "version").Run() != nil {
			env = append(env, "DOCKER_BUILDKIT=0")
		}
		ref := s.Addr + "/admin/docker-tls:1"
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
		runStdin(t, ctxDir, env, adminPassword+"\n", "docker", "login", s.Addr, "-u", "admin", "--password-stdin")
		run(t, ctxDir, env, "docker", "build", "-t", ref, ".")
		run(t, ctxDir, env, "docker", "push", ref)
		run(t, ctxDir, env, "docker", "rmi", ref)
		run(t, ctxDir, env, "docker", "pull", ref)
		if n := count(t, s.DataDir, "SELECT COUNT(*) FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = 'admin/docker-tls'"); n != 1 {
			t.Errorf("docker push over TLS left %d tags", n)
		}
	})

	t.Run("crane", func(t *testing.T) {
		crane := tool(t, "crane")
		if err := os.WriteFile(filepath.Join(dir, "layer.tar"), layerTar(t, "payload.bin", 32<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		// crane has no CA flag: Go's SSL_CERT_FILE is its way.
		env := append(clientEnv(t, t.TempDir()), "SSL_CERT_FILE="+f.ca)
		runStdin(t, dir, env, adminPassword, crane, "auth", "login", s.Addr, "-u", "admin", "--password-stdin")
		ref := s.Addr + "/admin/crane:tls"
		run(t, dir, env, crane, "append", "--oci-empty-base", "-f", filepath.Join(dir, "layer.tar"), "-t", ref)
		run(t, dir, env, crane, "pull", ref, filepath.Join(dir, "crane.tar"))
		bad := append(clientEnv(t, t.TempDir()), "SSL_CERT_FILE="+f.wrongCA)
		so, se, err := runErr(t, dir, bad, crane, "manifest", ref)
		wantTLSFailure(t, "crane with a wrong CA", so, se, err)
	})

	t.Run("skopeo", func(t *testing.T) {
		skopeo := tool(t, "skopeo")
		img := newImage(t, "amd64")
		layout := filepath.Join(dir, "skopeo-layout")
		writeOCILayout(t, layout, "v1", img)
		env := clientEnv(t, t.TempDir())
		auth := envDir(env, "REGISTRY_AUTH_FILE")
		runStdin(t, dir, env, adminPassword, skopeo, "login", "--authfile", auth, "--cert-dir", f.certDir, "-u", "admin", "--password-stdin", s.Addr)
		dst := "docker://" + s.Addr + "/admin/skopeo:tls"
		run(t, dir, env, skopeo, "copy", "--authfile", auth, "--insecure-policy", "--preserve-digests", "--dest-cert-dir", f.certDir, "oci:"+layout+":v1", dst)
		if raw := run(t, dir, env, skopeo, "inspect", "--authfile", auth, "--raw", "--cert-dir", f.certDir, dst); raw != string(img.Manifest) {
			t.Fatalf("skopeo inspect over TLS returned another manifest")
		}
		so, se, err := runErr(t, dir, env, skopeo, "inspect", "--authfile", auth, "--raw", "--cert-dir", f.badDir, dst)
		wantTLSFailure(t, "skopeo with a wrong CA", so, se, err)
	})

	t.Run("oras", func(t *testing.T) {
		oras := tool(t, "oras")
		content := randomBytes(t, 2000)
		os.WriteFile(filepath.Join(dir, "payload.bin"), content, 0o644)
		env := clientEnv(t, t.TempDir())
		cfg := filepath.Join(envDir(env, "HOME"), "oras.json")
		runStdin(t, dir, env, adminPassword, oras, "login", "--ca-file", f.ca, "--registry-config", cfg, "-u", "admin", "--password-stdin", s.Addr)
		ref := s.Addr + "/admin/oras:tls"
		run(t, dir, env, oras, "push", "--ca-file", f.ca, "--registry-config", cfg, ref, "payload.bin:application/octet-stream")
		out := filepath.Join(dir, "oras-out")
		run(t, dir, env, oras, "pull", "--ca-file", f.ca, "--registry-config", cfg, "-o", out, ref)
		if b, err := os.ReadFile(filepath.Join(out, "payload.bin")); err != nil || !bytes.Equal(b, content) {
			t.Fatalf("oras pull over TLS: payload differs (err %v)", err)
		}
		so, se, err := runErr(t, dir, env, oras, "pull", "--ca-file", f.wrongCA, "--registry-config", cfg, "-o", out, ref)
		wantTLSFailure(t, "oras with a wrong CA", so, se, err)
	})

	t.Run("helm", func(t *testing.T) {
		helm := tool(t, "helm")
		env := clientEnv(t, t.TempDir())
		cfg := filepath.Join(envDir(env, "HOME"), "helm-registry.json")
		run(t, dir, env, helm, "create", "tlschart")
		run(t, dir, env, helm, "package", "tlschart", "--version", "0.1.0", "-d", filepath.Join(dir, "pkg"))
		runStdin(t, dir, env, adminPassword, helm, "registry", "login", s.Addr, "--ca-file", f.ca, "--registry-config", cfg, "-u", "admin", "--password-stdin")
		run(t, dir, env, helm, "push", filepath.Join(dir, "pkg", "tlschart-0.1.0.tgz"), "oci://"+s.Addr+"/admin", "--ca-file", f.ca, "--registry-config", cfg)
		pull := filepath.Join(dir, "helm-pulled")
		os.MkdirAll(pull, 0o755)
		run(t, dir, env, helm, "pull", "oci://"+s.Addr+"/admin/tlschart", "--version", "0.1.0", "-d", pull, "--ca-file", f.ca, "--registry-config", cfg)
		if _, err := os.Stat(filepath.Join(pull, "tlschart-0.1.0.tgz")); err != nil {
			t.Fatal(err)
		}
		so, se, err := runErr(t, dir, env, helm, "pull", "oci://"+s.Addr+"/admin/tlschart", "--version", "0.1.0", "-d", pull, "--ca-file", f.wrongCA, "--registry-config", cfg)
		wantTLSFailure(t, "helm with a wrong CA", so, se, err)
	})
}

// runErrStdin is runErr with stdin.
func runErrStdin(t testing.TB, env []string, stdin, name string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	return so.String(), se.String(), err
}

// TestTLSCertFileReplaced: a certificate replaced on disk under a running hubctl serve
// is served on the next connection (hubctl given the new CA succeeds, the old fails).
func TestTLSCertFileReplaced(t *testing.T) {
	dir := t.TempDir()
	one, two := tlsconf.SelfSigned{Dir: filepath.Join(dir, "one")}, tlsconf.SelfSigned{Dir: filepath.Join(dir, "two")}
	for _, ss := range []tlsconf.SelfSigned{one, two} {
		if _, err := ss.Ensure([]string{"127.0.0.1"}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	place := func(ss tlsconf.SelfSigned) {
		for from, to := range map[string]string{ss.KeyFile(): key, ss.CertFile(): cert} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(to+".new", to); err != nil {
				t.Fatal(err)
			}
		}
	}
	place(one)
	s := startServerWith(t, t.TempDir(), "--tls-cert", cert, "--tls-key", key, "--auth=none")
	env := clientEnv(t, t.TempDir())
	tags := func(ca string) error {
		_, _, err := runErr(t, "", env, hubctlBin, "ls", "--ca-file", ca, s.Addr)
		return err
	}
	if err := tags(one.CACert()); err != nil {
		t.Fatalf("with the first CA: %v", err)
	}
	place(two)
	if err := tags(two.CACert()); err != nil {
		t.Fatalf("after the swap, with the new CA: %v", err)
	}
	if err := tags(one.CACert()); err == nil {
		t.Fatal("after the swap, the old CA still works")
	}
}

// TestDoctor: hubctl doctor against a TLS hub passes every step given the CA and a
// login, names the missing CA when given none, and names plain HTTP when a CA is
// given for a hub without TLS.
func TestDoctor(t *testing.T) {
	f := newTLSFixture(t)
	env := clientEnv(t, t.TempDir())
	runStdin(t, "", env, adminPassword+"\n", hubctlBin, "login", f.s.Addr, "-u", "admin", "--password-stdin", "--ca-file", f.ca)
	out := run(t, "", env, hubctlBin, "doctor", f.s.Addr, "--ca-file", f.ca)
	for _, step := range []string{"resolve", "connect", "tls", "registry", "realm", "login", "push", "pull", "delete"} {
		if !strings.Contains(out, "ok    "+step) && !strings.Contains(out, "ok  "+step) {
			t.Errorf("doctor: step %s not ok:\n%s", step, out)
		}
	}
	so, _, err := runErr(t, "", env, hubctlBin, "doctor", f.s.Addr, "--ca-file", f.wrongCA)
	if err == nil || !strings.Contains(so, "FAIL  tls") || !strings.Contains(so, "certs.d/"+f.s.Addr+"/ca.crt") {
		t.Errorf("doctor with a wrong CA: %v\n%s", err, so)
	}
	plain := startAuthServer(t)
	so, _, err = runErr(t, "", env, hubctlBin, "doctor", plain.Addr, "--ca-file", f.ca)
	if err == nil || !strings.Contains(so, "speaks plain HTTP") {
		t.Errorf("doctor with a CA against a plain hub: %v\n%s", err, so)
	}
	so, _, err = runErr(t, "", env, hubctlBin, "doctor", plain.Addr)
	if err != nil || !strings.Contains(so, "warn  tls") || !strings.Contains(so, "not logged in") {
		t.Errorf("doctor against a plain loopback hub: %v\n%s", err, so)
	}
}
