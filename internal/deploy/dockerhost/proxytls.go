package dockerhost

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// labelProxyTLS says how the proxy container was made to terminate TLS: absent
// (it does not), "files", or "acme:" and a hash of the ACME settings. A running
// proxy made another way is not silently changed: its flags are fixed at create.
const labelProxyTLS = "dev.hubctl.proxy-tls"

// Where the certificate files go in the proxy container: its root is the image's
// (FROM scratch, hubctl only), so nothing else is there.
const (
	proxyTLSDir  = "tls"
	proxyCertIn  = "/tls/cert.pem"
	proxyKeyIn   = "/tls/key.pem"
	proxyTLSPort = "443/tcp"
)

// proxyTLSMode is the labelProxyTLS value the options ask for.
func (h *Host) proxyTLSMode() string {
	switch {
	case h.opts.ProxyCert != nil:
		return "files"
	case h.opts.ProxyACME != nil:
		a := h.opts.ProxyACME
		sum := sha256.Sum256([]byte(strings.Join(a.Domains, ",") + "\n" + a.Directory + "\n" + a.Email))
		return "acme:" + hex.EncodeToString(sum[:8])
	}
	return ""
}

// proxyTLSArgs are the `proxy run` flags of the mode (the HTTPS listener on 443 in
// the container; ACME keeps its cache beside the state file, on the state volume).
func (h *Host) proxyTLSArgs() []string {
	switch {
	case h.opts.ProxyCert != nil:
		return []string{"--tls-listen", ":443", "--tls-cert", proxyCertIn, "--tls-key", proxyKeyIn}
	case h.opts.ProxyACME != nil:
		a := h.opts.ProxyACME
		args := []string{"--tls-listen", ":443", "--acme-domain", strings.Join(a.Domains, ",")}
		if a.Directory != "" {
			args = append(args, "--acme-directory", a.Directory)
		}
		if a.Email != "" {
			args = append(args, "--acme-email", a.Email)
		}
		return args
	}
	return nil
}

// copyProxyCert writes the certificate and key into the proxy container, both
// 0600 and owned by root (the proxy runs as root in its scratch image): before its
// first start, and again on each deploy, where the proxy's FileCert picks up a new
// pair (it keeps the old one until both parse as a pair).
func (h *Host) copyProxyCert(ctx context.Context, id string) error {
	c := h.opts.ProxyCert
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: proxyTLSDir + "/", Mode: 0o700, ModTime: now}); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"cert.pem", c.CertPEM}, {"key.pem", c.KeyPEM}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: proxyTLSDir + "/" + f.name, Mode: 0o600, Size: int64(len(f.data)), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := h.api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return fmt.Errorf("copy the certificate files into the proxy: %w", err)
	}
	return nil
}

// checkProxyTLS refuses a proxy container that terminates TLS otherwise than the
// spec asks, and refreshes the certificate files of one that uses files.
func (h *Host) checkProxyTLS(ctx context.Context, id, name string, labels map[string]string) error {
	want, got := h.proxyTLSMode(), labels[labelProxyTLS]
	if want != got {
		return fmt.Errorf("proxy %s runs %s and the spec asks %s: its listeners are fixed when it is made; `hubctl deploy down` and `up` again make it anew",
			name, describeTLSMode(got), describeTLSMode(want))
	}
	if h.opts.ProxyCert != nil {
		return h.copyProxyCert(ctx, id)
	}
	return nil
}

func describeTLSMode(m string) string {
	switch {
	case m == "":
		return "without TLS"
	case m == "files":
		return "TLS with certificate files"
	default:
		return "TLS with ACME settings " + strings.TrimPrefix(m, "acme:")
	}
}
