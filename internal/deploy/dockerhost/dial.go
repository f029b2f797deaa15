package dockerhost

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
)

// DialOption tunes Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	sshConfig string
}

// WithSSHConfig makes ssh:// engines use this ssh_config file (ssh -F) instead of
// ~/.ssh/config: its IdentityFile, UserKnownHostsFile and the like.
func WithSSHConfig(file string) DialOption { return func(c *dialConfig) { c.sshConfig = file } }

// sshDialStdio is what runs on the engine's host: the docker CLI's relay from its
// stdin/stdout to the engine's socket (docker ≥ 18.09), as DOCKER_HOST=ssh:// does.
var sshDialStdio = []string{"docker", "system", "dial-stdio"}

// sshDummyHost is the HTTP host of requests over SSH: the connection is the ssh
// process, so the name only fills the request line (the docker CLI uses the same).
const sshDummyHost = "http://docker.example.com"

var (
	sshUserRe = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	sshHostRe = regexp.MustCompile(`^[A-Za-z0-9_.:%-]+$`)
)

// Dial connects to the Docker engine of h and checks that it answers, negotiating
// the API version (the oldest engine hubctl knows is 20.10, API 1.41). h.Docker is
// empty or "local" for the environment's engine (DOCKER_HOST, DOCKER_CERT_PATH and
// DOCKER_TLS_VERIFY, or the default socket), unix:///path, ssh://[user@]host[:port]
// (through the system ssh with the user's keys or agent, never a password prompt:
// `ssh -o BatchMode=yes … docker system dial-stdio` on the host), or tcp://host:port
// with h.TLS (a CA, and a client certificate and key; TLS 1.2 at least). A tcp://
// address without TLS is refused unless it is a loopback address. The caller closes
// the client.
func Dial(ctx context.Context, h deploy.Host, opts ...DialOption) (*client.Client, error) {
	var cfg dialConfig
	for _, o := range opts {
		o(&cfg)
	}
	addr := strings.TrimSpace(h.Docker)
	name := addr
	if addr == "" || addr == deploy.LocalHost {
		name = "the local engine"
		if env := os.Getenv(client.EnvOverrideHost); env != "" {
			name = "the local engine (DOCKER_HOST=" + env + ")"
		}
	}
	api, ssh, err := engineClient(addr, h.TLS, cfg)
	if err != nil {
		return nil, fmt.Errorf("docker engine %s: %w", name, err)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		api.Close()
		if ssh != nil {
			if serr := ssh.failure(); serr != nil {
				err = serr
			}
		}
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		if h.TLS != nil && certRefused(err) {
			if h.TLS.Cert == "" {
				err = fmt.Errorf("the engine wants a client certificate and tls gives none (cert, key): %w", err)
			} else {
				err = fmt.Errorf("the engine refused the client certificate %s: it must be one signed by the CA the engine trusts (dockerd --tlscacert): %w", h.TLS.Cert, err)
			}
		}
		return nil, fmt.Errorf("docker engine %s: %w", name, err)
	}
	return api, nil
}

// engineClient makes the client of addr without touching the network; ssh is the
// dialer of an ssh:// engine (nil otherwise), which keeps what ssh said on failure.
func engineClient(addr string, tlsFiles *deploy.DockerTLS, cfg dialConfig) (*client.Client, *sshDialer, error) {
	if addr == "" || addr == deploy.LocalHost {
		if tlsFiles != nil {
			return nil, nil, errors.New("tls is for tcp:// engines; the local engine takes DOCKER_CERT_PATH and DOCKER_TLS_VERIFY")
		}
		// DOCKER_HOST=ssh://… is honoured as the docker CLI honours it; the other
		// forms (and DOCKER_CERT_PATH for tcp) are the client library's.
		if env := os.Getenv(client.EnvOverrideHost); strings.HasPrefix(env, "ssh://") {
			return engineClient(env, nil, cfg)
		}
		api, err := client.New(client.FromEnv)
		return api, nil, err
	}
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return nil, nil, errors.New("not an engine address: write unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376")
	}
	if tlsFiles != nil && u.Scheme != "tcp" {
		return nil, nil, errors.New("tls is for tcp:// engines")
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, nil, errors.New("write unix:///absolute/path")
		}
		api, err := client.New(client.WithHost("unix://" + u.Path))
		return api, nil, err
	case "ssh":
		d, err := newSSHDialer(u, cfg)
		if err != nil {
			return nil, nil, err
		}
		api, err := client.New(client.WithHost(sshDummyHost), client.WithDialContext(d.dial))
		return api, d, err
	case "tcp":
		api, err := tcpClient(u, tlsFiles)
		return api, nil, err
	}
	return nil, nil, fmt.Errorf("the scheme %q is not one of unix://, ssh://, tcp://", u.Scheme)
}

// tcpClient is the client of a tcp:// engine: TLS with the given files, or plain
// HTTP on a loopback address only.
func tcpClient(u *url.URL, files *deploy.DockerTLS) (*client.Client, error) {
	host, port := u.Hostname(), u.Port()
	if host == "" || port == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("write tcp://host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, errors.New("the port must be 1 to 65535")
	}
	hostAddr := "tcp://" + net.JoinHostPort(host, port)
	if files == nil {
		if !loopbackHost(host) {
			return nil, fmt.Errorf("tcp://%s has no TLS: an engine's TCP port without TLS gives root on the host to anyone who reaches it; give tls (ca, cert, key), or use ssh://; plain TCP is allowed on a loopback address only", net.JoinHostPort(host, port))
		}
		return client.New(client.WithHost(hostAddr))
	}
	tc, err := clientTLS(files, host)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: tc,
		MaxIdleConns:    6,
		IdleConnTimeout: 30 * time.Second,
	}, CheckRedirect: client.CheckRedirect}
	return client.New(client.WithHTTPClient(hc), client.WithHost(hostAddr), client.WithScheme("https"))
}

// clientTLS reads the CA and the client certificate: the engine must present a
// certificate of that CA alone (not the system's), for host.
func clientTLS(files *deploy.DockerTLS, host string) (*tls.Config, error) {
	if files.CA == "" {
		return nil, errors.New("tls: no ca: the engine's certificate is checked against this CA alone")
	}
	if (files.Cert == "") != (files.Key == "") {
		return nil, errors.New("tls: cert and key go together")
	}
	pem, err := os.ReadFile(files.CA)
	if err != nil {
		return nil, fmt.Errorf("tls: ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: ca %s holds no PEM certificate", files.CA)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: host}
	if files.Cert != "" {
		cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate %s and key %s: %w", files.Cert, files.Key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sshDialer opens one ssh process per connection, as the docker CLI's connhelper
// does, and remembers the last failure that ssh explained on its stderr.
type sshDialer struct {
	args []string // ssh's arguments, the remote command last
	bin  string
	what string // user@host:port, for messages
	last atomic.Pointer[sshError]
}

func newSSHDialer(u *url.URL, cfg dialConfig) (*sshDialer, error) {
	host := u.Hostname()
	if host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("write ssh://user@host or ssh://user@host:port")
	}
	if _, hasPw := u.User.Password(); hasPw {
		return nil, errors.New("no password in the address: the engine over SSH uses your SSH keys or agent")
	}
	// The host and user become ssh's arguments: nothing that ssh could read as an
	// option, nor a shell word.
	if strings.HasPrefix(host, "-") || !sshHostRe.MatchString(host) {
		return nil, fmt.Errorf("the host %q is not a host name or address", host)
	}
	args := []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "-T"}
	if cfg.sshConfig != "" {
		args = append([]string{"-F", cfg.sshConfig}, args...)
	}
	what := host
	if u.User != nil {
		user := u.User.Username()
		if !sshUserRe.MatchString(user) {
			return nil, fmt.Errorf("the user name %q is not valid", user)
		}
		args = append(args, "-l", user)
		what = user + "@" + host
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("the port must be 1 to 65535")
		}
		args = append(args, "-p", p)
		what += ":" + p
	}
	args = append(args, "--", host)
	args = append(args, sshDialStdio...)
	bin, err := exec.LookPath("ssh")
	if err != nil {
		return nil, errors.New("ssh:// engines need the ssh client (apt-get install openssh-client): not found in PATH")
	}
	return &sshDialer{args: args, bin: bin, what: what}, nil
}

// failure is what ssh said when it last failed, if it did.
func (d *sshDialer) failure() error {
	if e := d.last.Load(); e != nil {
		return e
	}
	return nil
}

func (d *sshDialer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	// The connection outlives the dial's context (the transport pools it), so the
	// process is not tied to ctx; Close ends it.
	cmd := exec.Command(d.bin, d.args...)
	// Never a prompt: no terminal to ask on (ssh gets pipes and its own session), no
	// askpass program.
	cmd.Env = append(os.Environ(), "SSH_ASKPASS=", "SSH_ASKPASS_REQUIRE=never", "DISPLAY=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Pipes of our own, not cmd's: Wait would close cmd's while the engine's last
	// bytes may still be unread.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	c := &sshConn{d: d, stdin: inW, stdout: outR, cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &c.stderr
	// A process ssh leaves behind (a ControlPersist master) may hold stderr open:
	// Wait must not wait for it.
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("ssh %s: %w", d.what, err)
	}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := ctx.Err(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sshError is ssh (or the remote docker) failing, with the line it said.
type sshError struct {
	what string
	line string
	hint string
}

func (e *sshError) Error() string {
	s := "ssh " + e.what + ": " + e.line
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}

// explain picks the line of ssh's stderr that says what failed, with what to do.
func (d *sshDialer) explain(stderr string, waitErr error) *sshError {
	var lines []string
	for l := range strings.SplitSeq(stderr, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Warning: Permanently added") || strings.HasPrefix(l, "** ") {
			continue
		}
		lines = append(lines, l)
	}
	e := &sshError{what: d.what}
	all := strings.Join(lines, "\n")
	switch {
	case strings.Contains(all, "Permission denied"):
		e.hint = "the host refused every key offered: add your public key to the user's authorized_keys there, or load the key into ssh-agent"
	case strings.Contains(all, "Host key verification failed"), strings.Contains(all, "REMOTE HOST IDENTIFICATION HAS CHANGED"):
		e.hint = "the host's key is not the one in known_hosts: check it, then add it with ssh-keyscan or one ssh login by hand"
	case strings.Contains(all, "docker: not found"), strings.Contains(all, "docker: command not found"):
		e.hint = "the host needs the docker CLI for 'docker system dial-stdio'"
	case strings.Contains(all, "unknown command") && strings.Contains(all, "dial-stdio"):
		e.hint = "the host's docker CLI is older than 18.09 and has no 'docker system dial-stdio'"
	}
	// The line that names the failure, not the banners around it.
	for _, l := range lines {
		if strings.Contains(l, "Permission denied") || strings.Contains(l, "Host key verification failed") ||
			strings.Contains(l, "not found") || strings.Contains(l, "Could not resolve") ||
			strings.Contains(l, "Connection refused") || strings.Contains(l, "timed out") {
			e.line = l
			break
		}
	}
	switch {
	case e.line != "":
	case len(lines) > 0:
		e.line = lines[len(lines)-1]
	case waitErr != nil:
		e.line = "ssh ended: " + waitErr.Error()
	default:
		e.line = "the connection closed before the engine answered"
	}
	if len(e.line) > 300 {
		e.line = e.line[:300] + "…"
	}
	return e
}

// sshConn is a connection to the engine through an ssh process's stdin and stdout.
type sshConn struct {
	d             *sshDialer
	stdin         *os.File
	stdout        *os.File
	cmd           *exec.Cmd
	stderr        sshStderr
	exited        chan struct{}
	waitErr       error
	closing       atomic.Bool
	closeOnce     sync.Once
	stdinOnce     sync.Once
	stdinCloseErr error
	got           atomic.Bool // the engine answered something
}

// sshStderr keeps the first 8 KiB of what ssh writes on stderr.
type sshStderr struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *sshStderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if room := 8<<10 - s.buf.Len(); room > 0 {
		s.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (s *sshStderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (c *sshConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if n > 0 {
		c.got.Store(true)
	}
	if err != nil && !c.closing.Load() {
		// The pipe ends when ssh does: wait for it, so its stderr is complete, and
		// say why when it failed or ended before the engine said anything.
		<-c.exited
		if c.waitErr != nil || !c.got.Load() {
			e := c.d.explain(c.stderr.String(), c.waitErr)
			c.d.last.Store(e)
			return n, e
		}
	}
	return n, err
}

func (c *sshConn) Write(p []byte) (int, error) {
	n, err := c.stdin.Write(p)
	if err != nil && !c.closing.Load() {
		select {
		case <-c.exited:
			e := c.d.explain(c.stderr.String(), c.waitErr)
			c.d.last.Store(e)
			return n, e
		case <-time.After(2 * time.Second):
		}
	}
	return n, err
}

// CloseWrite ends the engine's input (a hijacked exec's stdin), keeping the output.
func (c *sshConn) CloseWrite() error {
	c.stdinOnce.Do(func() { c.stdinCloseErr = c.stdin.Close() })
	return c.stdinCloseErr
}

// CloseRead is a no-op: the output ends when the engine ends it.
func (c *sshConn) CloseRead() error { return nil }

// Close ends the ssh process.
func (c *sshConn) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		_ = c.CloseWrite()
		select {
		case <-c.exited:
		case <-time.After(100 * time.Millisecond):
			// ssh relays until the remote side closes; a pooled idle connection
			// would wait for that, so it is ended.
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		c.stdout.Close()
	})
	return nil
}

type sshAddr string

func (a sshAddr) Network() string { return "ssh" }
func (a sshAddr) String() string  { return string(a) }

func (c *sshConn) LocalAddr() net.Addr  { return sshAddr("local") }
func (c *sshConn) RemoteAddr() net.Addr { return sshAddr(c.d.what) }

// Deadlines are not supported by pipes to a process; the HTTP client bounds its
// requests with contexts instead.
func (c *sshConn) SetDeadline(time.Time) error      { return nil }
func (c *sshConn) SetReadDeadline(time.Time) error  { return nil }
func (c *sshConn) SetWriteDeadline(time.Time) error { return nil }

// certRefused reports whether err is the engine's TLS alert refusing the client's
// certificate (or its absence). TLS 1.3 sends it after the client's handshake
// ended, so it arrives as the first read's error.
func certRefused(err error) bool {
	var alert tls.AlertError
	if errors.As(err, &alert) {
		switch alert {
		case 42, 43, 44, 45, 46, 48, 116: // bad, unsupported, revoked, expired, unknown certificate; unknown CA; certificate required
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "remote error: tls: ") && (strings.Contains(msg, "certificate") || strings.Contains(msg, "unknown certificate authority"))
}
