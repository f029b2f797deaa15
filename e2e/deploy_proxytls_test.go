package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/dockerhost/tlstest"
	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// TestDeployProxyTLSFiles: a deploy file with proxy.tls (certificate files) makes
// the deployed proxy terminate HTTPS on its published 443: the service answers
// there to a client trusting only the test's CA; the key is in no part of the
// container's configuration, only in a 0600 file copied in; new files are picked
// up by the next update; a mismatched pair or a missing file is refused in one
// line with nothing started.
func TestDeployProxyTLSFiles(t *testing.T) {
	requireDocker(t)
	e := newDeployEnv(t)
	ca := tlstest.NewCA(t, "hubctl e2e proxy CA")
	cert, key := ca.Issue(t, "proxy", true)
	_, otherKey := ca.Issue(t, "other", true)
	certFile := tlstest.WriteFile(t, e.dir, "web.pem", cert)
	keyFile := tlstest.WriteFile(t, e.dir, "web.key", key)
	otherKeyFile := tlstest.WriteFile(t, e.dir, "other.key", otherKey)
	spec := func(v, cert, key string) {
		t.Helper()
		file := e.writeSpec(v)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.Replace(data, []byte("    port: 8080\n"), []byte("    port: 8080\n    tls:\n      cert: "+cert+"\n      key: "+key+"\n"), 1)
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := func(verb ...string) []string {
		return append(e.deployArgs(verb...), "--proxy-tls-publish", "127.0.0.1:0")
	}
	nothing := func(what string) {
		t.Helper()
		if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
			t.Fatalf("%s left containers: %s", what, left)
		}
		if _, err := os.Stat(e.stateDir); !os.IsNotExist(err) {
			t.Fatalf("%s wrote history: %v", what, err)
		}
	}

	// Bad files: one line each, nothing started, nothing recorded.
	for _, bad := range []struct{ cert, key, want string }{
		{certFile, otherKeyFile, "are not a certificate and its key"},
		{certFile, filepath.Join(e.dir, "missing.key"), "proxy.tls: key: open"},
	} {
		spec("v1", bad.cert, bad.key)
		_, errOut, err := e.hubctl(args("up")...)
		if err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, bad.want) {
			t.Fatalf("up with %s, %s: %v\n%s", bad.cert, bad.key, err, errOut)
		}
		if strings.Contains(errOut, "PRIVATE KEY") {
			t.Fatalf("the error shows the key: %s", errOut)
		}
		t.Logf("refused: %s", strings.TrimSpace(errOut))
		nothing("a refused proxy.tls")
	}

	// The plan says so, and a dry run starts nothing.
	spec("v1", certFile, keyFile)
	if out := e.mustHubctl(args("up", "--dry-run")...); !strings.Contains(out, "proxy: HTTPS with certificate files for [\"127.0.0.1\"]") {
		t.Fatalf("dry run:\n%s", out)
	}
	nothing("a dry run")

	e.mustHubctl(args("up")...)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, // each request sees the certificate served now
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	url := "https://" + e.proxyPublished("443") + "/"
	if body, err := loadtest.Get(client, url); err != nil || body != "v1-"+e.id {
		t.Fatalf("over HTTPS through the proxy: %q %v", body, err)
	}
	// The system's roots do not know the test CA: the proxy serves that
	// certificate, not some other one.
	if _, err := loadtest.Get(&http.Client{Timeout: 10 * time.Second}, url); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v", err)
	}
	// Plain HTTP still answers on the HTTP port.
	if body, err := loadtest.Get(http.DefaultClient, "http://"+e.proxyPublished("80")+"/"); err != nil || body != "v1-"+e.id {
		t.Fatalf("over HTTP: %q %v", body, err)
	}

	// The key is nowhere in the container's configuration; it is a 0600 file.
	proxyName := e.docker("ps", "--format", "{{.Names}}", "--filter", "label=dev.hubctl.service="+e.service, "--filter", "label=dev.hubctl.role=proxy")
	if proxyName == "" {
		t.Fatal("no proxy container")
	}
	inspect := e.docker("inspect", proxyName)
	keyBody := strings.Join(strings.Split(string(key), "\n")[1:2], "")
	if strings.Contains(inspect, "PRIVATE KEY") || strings.Contains(inspect, keyBody[:32]) {
		t.Fatalf("the key shows in docker inspect")
	}
	hdr, data := containerFile(t, proxyName, "/tls/key.pem")
	if hdr.Mode&0o777 != 0o600 || !bytes.Equal(data, key) {
		t.Fatalf("key file in the proxy: mode %o, %d bytes", hdr.Mode, len(data))
	}

	// New files: the next update copies them in and the proxy serves them.
	cert2, key2 := ca.Issue(t, "proxy renewed", true)
	tlstest.WriteFile(t, e.dir, "web.pem", cert2)
	tlstest.WriteFile(t, e.dir, "web.key", key2)
	spec("v2", certFile, keyFile)
	e.mustHubctl(args("update")...)
	served := func() string {
		resp, err := client.Get(url)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	waitDeploy(t, "the renewed certificate served", func() bool { return served() == "proxy renewed" })
	if body, err := loadtest.Get(client, url); err != nil || body != "v2-"+e.id {
		t.Fatalf("v2 over HTTPS: %q %v", body, err)
	}

	down := func() {
		t.Helper()
		e.mustHubctl(e.args("down")...)
		if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
			t.Fatalf("down left containers: %s", left)
		}
		if left := e.docker("volume", "ls", "-q", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
			t.Fatalf("down left volumes (the ACME cache is on the state volume): %s", left)
		}
	}
	down()

	// ACME: the proxy runs with the settings (no CA is asked until a handshake, so
	// an unreachable directory serves HTTP all the same), 443 published, the cache
	// on the state volume; a deploy asking certificate files of that proxy is
	// refused with the way out.
	file := e.writeSpec("v1")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	acmeSpec := bytes.Replace(data, []byte("    port: 8080\n"), []byte("    port: 8080\n    tls:\n      acme:\n        domains: [shop.example.com]\n        directory: https://127.0.0.1:9/dir\n        email: ops@example.com\n"), 1)
	if err := os.WriteFile(file, acmeSpec, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.mustHubctl(args("up", "--dry-run")...); !strings.Contains(out, "proxy: HTTPS with ACME certificates for shop.example.com from https://127.0.0.1:9/dir") {
		t.Fatalf("ACME dry run:\n%s", out)
	}
	e.mustHubctl(args("up")...)
	proxyName = e.docker("ps", "--format", "{{.Names}}", "--filter", "label=dev.hubctl.service="+e.service, "--filter", "label=dev.hubctl.role=proxy")
	if cmd := e.docker("inspect", "--format", "{{json .Config.Cmd}}", proxyName); !strings.Contains(cmd, `"--acme-domain","shop.example.com","--acme-directory","https://127.0.0.1:9/dir","--acme-email","ops@example.com"`) {
		t.Fatalf("ACME proxy command %s", cmd)
	}
	e.proxyPublished("443")
	if body, err := loadtest.Get(http.DefaultClient, "http://"+e.proxyPublished("80")+"/"); err != nil || body != "v1-"+e.id {
		t.Fatalf("ACME proxy over HTTP: %q %v", body, err)
	}
	spec("v2", certFile, keyFile)
	_, errOut, err := e.hubctl(args("update")...)
	if err == nil || !strings.Contains(errOut, "runs TLS with ACME settings") || !strings.Contains(errOut, "`hubctl deploy down` and `up`") {
		t.Fatalf("files over an ACME proxy: %v\n%s", err, errOut)
	}
	t.Logf("refused: %s", strings.TrimSpace(errOut))
	if body, err := loadtest.Get(http.DefaultClient, "http://"+e.proxyPublished("80")+"/"); err != nil || body != "v1-"+e.id {
		t.Fatalf("after the refused update: %q %v", body, err)
	}
	down()
}

// proxyPublished is the host address where the proxy's container port is
// published.
func (e *deployEnv) proxyPublished(port string) string {
	e.t.Helper()
	for _, c := range e.status() {
		if c.Role != "proxy" {
			continue
		}
		for _, p := range c.Published {
			if addr, ok := strings.CutSuffix(p, "->"+port+"/tcp"); ok {
				return addr
			}
		}
	}
	e.t.Fatalf("the proxy's port %s is not published in status", port)
	return ""
}

// containerFile reads one file out of a container (docker cp to a tar stream).
func containerFile(t *testing.T, container, path string) (*tar.Header, []byte) {
	t.Helper()
	out, err := exec.Command("docker", "cp", container+":"+path, "-").Output()
	if err != nil {
		t.Fatalf("docker cp %s: %v", path, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(tr); err != nil {
		t.Fatal(err)
	}
	return hdr, b.Bytes()
}
