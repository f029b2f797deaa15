// Package sshtest starts a real sshd on loopback for tests of Docker hosts reached
// over SSH (ssh://user@127.0.0.1:PORT): its own config, host key and authorized
// keys in a temp dir, logins running this machine's docker CLI, so the address is
// the local engine reached as a remote host is. It also makes the client side: key
// pairs, a known_hosts file and an ssh_config that offers one key only and trusts
// the test's host key only. The dockerhost tests and the e2e tests share it.
package sshtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is an sshd a test started on 127.0.0.1, stopped when the test ends.
type Server struct {
	// Dir holds its files (and the files the helpers below write).
	Dir  string
	User string
	Port int
	// HostPub is its host public key (an authorized_keys line).
	HostPub []byte
}

// Missing skips a test whose tool is not here, and fails it when CI=true (CI never
// skips silently).
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing prerequisite fails the run)", msg)
	}
	t.Skipf("%s (with CI=true this is a failure)", msg)
}

// Start runs sshd on a random loopback port, taking the keys of authorized (an
// authorized_keys file's content), until the test ends. It skips (fails under
// CI=true) when sshd, ssh, ssh-keygen or the docker CLI are missing.
func Start(t testing.TB, authorized []byte) *Server {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/sshd"); serr != nil {
			Missing(t, "sshd not found (apt-get install -y openssh-server): %v", err)
		}
		sshd = "/usr/sbin/sshd"
	}
	for _, bin := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			Missing(t, "%s not found (apt-get install -y openssh-client): %v", bin, err)
		}
	}
	if _, err := exec.LookPath("docker"); err != nil {
		Missing(t, "the docker CLI is not here; the engine over SSH runs 'docker system dial-stdio': %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege-separation directory, which the
	// package makes at boot, not at install.
	if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) && os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	hostKey := Keygen(t, dir, "host")
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "authorized_keys", authorized)
	s := &Server{Dir: dir, User: u.Username, HostPub: hostPub}
	// A free port can be taken between the probe and sshd's bind: try a few.
	for attempt := 0; ; attempt++ {
		s.Port = FreePort(t)
		conf := write(t, dir, "sshd_config", fmt.Appendf(nil, `Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
LogLevel VERBOSE
`, s.Port, hostKey, filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys")))
		var log bytes.Buffer
		cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if waitUp(s.Port, exited) {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("sshd log:\n%s", log.String())
				}
			})
			return s
		}
		_ = cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			t.Fatalf("sshd did not start:\n%s", log.String())
		}
	}
}

// waitUp waits until port takes connections, or sshd exited, or 15 s passed.
func waitUp(port int, exited chan struct{}) bool {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// Addr is the Docker host address of the server: ssh://USER@127.0.0.1:PORT.
func (s *Server) Addr() string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d", s.User, s.Port)
}

// KnownHosts writes a known_hosts file (named name in Dir) that trusts pub as the
// server's host key, and returns its path.
func (s *Server) KnownHosts(t testing.TB, name string, pub []byte) string {
	t.Helper()
	f := strings.Fields(string(pub))
	return write(t, s.Dir, name, fmt.Appendf(nil, "[127.0.0.1]:%d %s %s\n", s.Port, f[0], f[1]))
}

// ClientConfig writes an ssh_config (named name in Dir) that offers key only,
// trusts knownHosts only and never asks an agent or for a password: what a
// deployer's ~/.ssh/config would say. It returns its path.
func (s *Server) ClientConfig(t testing.TB, name, key, knownHosts string) string {
	t.Helper()
	return write(t, s.Dir, name, fmt.Appendf(nil, `Host *
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  PasswordAuthentication no
  KbdInteractiveAuthentication no
  LogLevel ERROR
`, key, knownHosts))
}

// Clients counts the ssh client processes of this machine running `docker system
// dial-stdio` on this server.
func (s *Server) Clients() int {
	want := fmt.Sprintf("\x00-p\x00%d\x00--\x00127.0.0.1\x00docker\x00system\x00dial-stdio", s.Port)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), want) {
			n++
		}
	}
	return n
}

// Keygen makes an ed25519 key pair without a passphrase in dir and returns the
// private key's path (the public key is that path + ".pub").
func Keygen(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hubctl-test-"+name, "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return p
}

// FreePort answers a loopback TCP port free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func write(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
