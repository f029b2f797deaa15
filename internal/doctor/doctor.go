// Package doctor checks a registry from a client's side, one step at a time: the name
// resolves, the port answers, TLS and the certificate chain (given the client's trust),
// /v2/ and its token realm, the stored login, and push, pull and delete on a scratch
// repository. Each step yields one line; a failed step says what is wrong and what to
// do, and later steps that depend on it are skipped.
package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// Status is a step's outcome.
type Status string

// Outcomes.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
	Skip Status = "skip"
)

// Step is one line of the report.
type Step struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Options configure a check.
type Options struct {
	// Host is the registry, HOST[:PORT].
	Host string
	// Trust verifies its certificate (certs.d, --ca-file).
	Trust *tlsconf.Trust
	// Insecure reaches a non-loopback host over plain HTTP.
	Insecure bool
	// Credentials finds the stored login (nil: anonymous).
	Credentials credentials.Resolver
	// Repository is the scratch repository for the push test ("" skips it).
	Repository string
	// Timeout bounds each network step (default 15 s).
	Timeout time.Duration
}

// Run checks the registry and returns the steps in order.
func Run(ctx context.Context, o Options) []Step {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	r := &run{o: o}
	r.check(ctx)
	return r.steps
}

type run struct {
	o     Options
	steps []Step
	// realm and service are the token service's, once /v2/ named them.
	realm, service string
}

func (r *run) add(name string, st Status, format string, args ...any) {
	r.steps = append(r.steps, Step{Name: name, Status: st, Detail: fmt.Sprintf(format, args...)})
}

func (r *run) check(ctx context.Context) {
	host := credentials.RegistryHost(r.o.Host)
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, "443"
	}
	plain := r.o.Insecure || (credentials.IsLoopback(host) && !r.o.Trust.HasCA(host))
	if plain && port == "443" && !strings.Contains(host, ":") {
		port = "80"
	}
	scheme := "https"
	if plain {
		scheme = "http"
	}

	// Resolve.
	rctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	addrs, err := net.DefaultResolver.LookupHost(rctx, name)
	cancel()
	if err != nil {
		r.add("resolve", Fail, "%s does not resolve: %v (check the name, DNS or /etc/hosts)", name, err)
		return
	}
	r.add("resolve", OK, "%s is %s", name, strings.Join(addrs, ", "))

	// Connect.
	addr := net.JoinHostPort(name, port)
	d := &net.Dialer{Timeout: r.o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		r.add("connect", Fail, "%s: %v (is hubctl serve running, and the port open in the firewall?)", addr, err)
		return
	}
	conn.Close()
	r.add("connect", OK, "%s accepts connections", addr)

	// TLS.
	if plain {
		r.add("tls", Warn, "plain HTTP to %s (%s): fine on loopback, not across a network", host, plainWhy(r.o.Insecure))
	} else if !r.checkTLS(ctx, name, addr, host) {
		return
	}

	// /v2/ and the realm.
	base := scheme + "://" + host
	hc := r.o.Trust.Client(&http.Client{Timeout: r.o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }})
	resp, err := get(ctx, hc, base+"/v2/")
	if err != nil {
		r.add("registry", Fail, "GET %s/v2/: %v", base, err)
		return
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		r.add("registry", Warn, "/v2/ answers 200 without credentials: the registry runs without auth (--auth=none)")
	case resp.StatusCode == http.StatusUnauthorized:
		r.add("registry", OK, "/v2/ asks for credentials (%s)", orNone(resp.Header.Get("Docker-Distribution-API-Version")))
		r.checkRealm(ctx, hc, scheme, host, resp.Header.Get("WWW-Authenticate"))
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.add("registry", Fail, "/v2/ redirects to %s: a proxy in front sends clients elsewhere", resp.Header.Get("Location"))
		return
	default:
		r.add("registry", Fail, "/v2/ answers %s: this is not an OCI registry, or a proxy in front answers for it", resp.Status)
		return
	}

	// Login.
	creds := credentials.Anonymous
	if r.o.Credentials != nil {
		if c, err := r.o.Credentials.Resolve(host); err == nil {
			creds = c
		}
	}
	if creds.IsAnonymous() {
		r.add("login", Warn, "not logged in to %s: run 'hubctl login %s' (push and pull are tried anonymously)", host, host)
	} else {
		if err := tokenLogin(ctx, hc, r.realm, r.service, creds); err != nil {
			r.add("login", Fail, "the stored login for %s (%s) is refused: %v; run 'hubctl login %s'", host, orNone(creds.Username), err, host)
			return
		}
		r.add("login", OK, "logged in as %s", orNone(creds.Username))
	}

	// Push, pull, delete.
	if r.o.Repository == "" {
		r.add("push", Skip, "no scratch repository (--repo)")
		return
	}
	r.checkPushPull(ctx, host, creds)
}

func plainWhy(insecure bool) string {
	if insecure {
		return "--insecure"
	}
	return "a loopback host without a CA in certs.d or --ca-file"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func get(ctx context.Context, hc *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return hc.Do(req)
}

// checkTLS handshakes with the client's trust and reports the chain and expiry.
func (r *run) checkTLS(ctx context.Context, name, addr, host string) bool {
	cfg, err := r.o.Trust.ClientConfig(host)
	if err != nil {
		r.add("tls", Fail, "%v", err)
		return false
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	cfg.ServerName = name
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: r.o.Timeout}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var rec tls.RecordHeaderError
		switch {
		case errors.As(err, &rec):
			r.add("tls", Fail, "%s speaks plain HTTP, not TLS: serve it with --tls-cert/--tls-key (or --tls=self-signed), or use --insecure", addr)
		case tlsconf.ErrUnknownAuthority(err):
			r.add("tls", Fail, "the certificate of %s is signed by an authority this client does not trust: put its CA in ~/.config/hubctl/certs.d/%s/ca.crt or pass --ca-file", host, host)
		default:
			var hn x509.HostnameError
			if errors.As(err, &hn) {
				r.add("tls", Fail, "the certificate is not for %s (%v): reissue it with that name, or use the name it has", name, err)
			} else {
				r.add("tls", Fail, "TLS handshake with %s: %v", addr, err)
			}
		}
		return false
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	leaf := st.PeerCertificates[0]
	left := time.Until(leaf.NotAfter)
	detail := fmt.Sprintf("%s, certificate for %s from %s, valid until %s", tls.VersionName(st.Version),
		strings.Join(append(leaf.DNSNames, ipStrings(leaf.IPAddresses)...), ","), leaf.Issuer.CommonName, leaf.NotAfter.Format("2006-01-02"))
	switch {
	case left < 7*24*time.Hour:
		r.add("tls", Warn, "%s: expires in %s, renew it", detail, left.Round(time.Hour))
	default:
		r.add("tls", OK, "%s", detail)
	}
	return true
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// checkRealm reads the Bearer challenge and checks the realm answers, on the scheme
// the registry is reached with.
func (r *run) checkRealm(ctx context.Context, hc *http.Client, scheme, host, challenge string) {
	kind, params := credentials.ParseChallenge(challenge)
	if kind != "bearer" {
		r.add("realm", OK, "the registry asks for %s auth (no token service)", orNone(kind))
		return
	}
	realm := params["realm"]
	r.realm, r.service = realm, params["service"]
	u, err := url.Parse(realm)
	if err != nil || u.Host == "" {
		r.add("realm", Fail, "the token realm %q is not an absolute URL: set --external-url on the server", realm)
		return
	}
	if u.Scheme != scheme {
		r.add("realm", Fail, "the token realm %s is %s while the registry is reached over %s: set --external-url %s://%s on the server", realm, u.Scheme, scheme, scheme, host)
		return
	}
	resp, err := get(ctx, hc, realm+"?service="+url.QueryEscape(params["service"]))
	if err != nil {
		r.add("realm", Fail, "the token realm %s does not answer: %v (set --external-url to the URL clients use)", realm, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		r.add("realm", Fail, "the token realm %s answers %s", realm, resp.Status)
		return
	}
	if u.Host != host {
		r.add("realm", Warn, "the token realm %s is on another host than %s: right only if that is the hub's external URL", realm, host)
		return
	}
	r.add("realm", OK, "token realm %s answers", realm)
}

// checkPushPull pushes a tiny image to the scratch repository, pulls it back and
// deletes it.
func (r *run) checkPushPull(ctx context.Context, host string, creds credentials.Credentials) {
	resolver := r.o.Credentials
	if resolver == nil {
		resolver = credentials.AnonymousResolver{}
	}
	var insecure []string
	if r.o.Insecure {
		insecure = []string{host}
	}
	c := distclient.New(distclient.Options{Credentials: resolver, Insecure: insecure, Trust: r.o.Trust, UserAgent: "hubctl-doctor", MaxAttempts: 2})
	repo := distclient.Repo{Host: host, Path: r.o.Repository}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]},"comment":"hubctl doctor %d"}`, time.Now().UnixNano()))
	cd := digest.FromBytes(cfg)
	if err := c.UploadBlob(ctx, repo, cd, int64(len(cfg)), bytes.NewReader(cfg), ""); err != nil {
		r.add("push", Fail, "push a blob to %s: %v", repo, hint(err, creds, "push"))
		return
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, cd, len(cfg)))
	md := digest.FromBytes(m)
	ref := distclient.Ref{Repo: repo, Tag: "hubctl-doctor"}
	if _, err := c.PutManifest(ctx, ref, "application/vnd.oci.image.manifest.v1+json", m); err != nil {
		r.add("push", Fail, "push a manifest to %s: %v", ref, hint(err, creds, "push"))
		return
	}
	r.add("push", OK, "pushed %s", ref)
	_, raw, err := c.GetManifest(ctx, ref)
	if err != nil || digest.FromBytes(raw) != md {
		r.add("pull", Fail, "pull %s back: %v", ref, hint(err, creds, "pull"))
		return
	}
	rc, err := c.GetBlob(ctx, repo, cd)
	if err == nil {
		b, rerr := io.ReadAll(rc)
		rc.Close()
		if rerr == nil && digest.FromBytes(b) != cd {
			rerr = errors.New("the blob read back differs")
		}
		err = rerr
	}
	if err != nil {
		r.add("pull", Fail, "pull the blob back: %v", hint(err, creds, "pull"))
		return
	}
	r.add("pull", OK, "pulled it back intact")
	if err := c.DeleteManifest(ctx, distclient.Ref{Repo: repo, Digest: md.String()}); err != nil {
		r.add("delete", Warn, "delete the scratch image %s@%s: %v (delete it by hand, or let retention)", repo, md, err)
		return
	}
	r.add("delete", OK, "deleted the scratch image")
}

// hint adds what to do to a refusal.
func hint(err error, creds credentials.Credentials, action string) error {
	if err == nil {
		return errors.New("the content differs")
	}
	if errors.Is(err, distclient.ErrUnauthorized) && creds.IsAnonymous() {
		return fmt.Errorf("%w (log in first)", err)
	}
	if errors.Is(err, distclient.ErrUnauthorized) {
		return fmt.Errorf("%w (%s needs a role on the repository that allows %s)", err, creds.Username, action)
	}
	return err
}

// tokenLogin asks the token service for a token with creds, as a client does: a
// refresh token (what 'hubctl login' and 'docker login' store) with the OAuth2 form,
// a password with HTTP Basic. Without a token service (Basic auth), it is skipped.
func tokenLogin(ctx context.Context, hc *http.Client, realm, service string, creds credentials.Credentials) error {
	if realm == "" {
		return nil
	}
	var req *http.Request
	var err error
	if creds.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {creds.IdentityToken}, "service": {service}, "client_id": {"hubctl-doctor"}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm+"?service="+url.QueryEscape(service), nil)
		if err == nil {
			req.SetBasicAuth(creds.Username, creds.Password)
		}
	}
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the token service answers %s", resp.Status)
	}
	return nil
}
