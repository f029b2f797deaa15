package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// startDeploySSHD runs sshd on a random loopback port with its own config, host key
// and authorized key (all in a temp dir), whose logins run this machine's docker
// CLI: ssh://USER@127.0.0.1:PORT is the same engine, reached as a remote host is.
// It answers that address and an ssh_config (ssh -F, given to hubctl as
// $HUBCTL_SSH_CONFIG) that offers the test's key only and trusts the test's host
// key only.
func startDeploySSHD(t *testing.T) (addr, sshConfig string) {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/sshd"); serr != nil {
			skipOrFatal(t, "sshd not found (apt-get install -y openssh-server): %v", err)
		}
		sshd = "/usr/sbin/sshd"
	}
	for _, bin := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			skipOrFatal(t, "%s not found (apt-get install -y openssh-client): %v", bin, err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/sshd"); os.IsNotExist(err) && os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	keygen := func(name string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hubctl-e2e-"+name, "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		return p
	}
	hostKey, clientKey := keygen("host"), keygen("client")
	hostPub, _ := os.ReadFile(hostKey + ".pub")
	clientPub, _ := os.ReadFile(clientKey + ".pub")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("authorized_keys", clientPub)
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		conf := write("sshd_config", fmt.Appendf(nil, `Port %d
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
`, port, hostKey, filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys")))
		var log bytes.Buffer
		cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		up := false
	wait:
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case <-exited:
				break wait
			default:
			}
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
				c.Close()
				up = true
				break
			}
		}
		if up {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("sshd log:\n%s", log.String())
				}
			})
			f := strings.Fields(string(hostPub))
			known := write("known_hosts", fmt.Appendf(nil, "[127.0.0.1]:%d %s %s\n", port, f[0], f[1]))
			cfg := write("ssh_config", fmt.Appendf(nil, `Host *
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  PasswordAuthentication no
  KbdInteractiveAuthentication no
  LogLevel ERROR
`, clientKey, known))
			return fmt.Sprintf("ssh://%s@127.0.0.1:%d", u.Username, port), cfg
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			t.Fatalf("sshd did not start:\n%s", log.String())
		}
	}
}

// TestDeployDockerSSH: a host reached over SSH (a real sshd on loopback, with a key
// and host key the test made, given to hubctl as $HUBCTL_SSH_CONFIG) takes a
// deploy end to end: up, the service answers through the proxy, update to v2,
// status and logs over the same connection, down removes everything. Without the
// ssh config (so without the key), the host is refused in one line and nothing
// starts.
func TestDeployDockerSSH(t *testing.T) {
	requireDocker(t)
	addr, sshConfig := startDeploySSHD(t)
	e := newDeployEnv(t)
	e.hosts = fmt.Sprintf("hosts:\n  - name: remote\n    docker: %s\n", addr)
	ver := func(v string) string { return v + "-" + e.id }

	e.writeSpec("v1")
	if _, errOut, err := e.hubctl(e.deployArgs("up")...); err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "ssh") {
		t.Fatalf("up without the ssh key: %v %q", err, errOut)
	} else {
		t.Logf("without the key: %s", strings.TrimSpace(errOut))
	}
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("a refused host left containers: %s", left)
	}

	e.env = []string{"HUBCTL_SSH_CONFIG=" + sshConfig}
	e.mustHubctl(e.deployArgs("up")...)
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("tasks after up over ssh = %v", got)
	}
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v1") {
		t.Fatalf("through the proxy: %q %v", body, err)
	}
	// The containers carry the spec's host name: they were made through the ssh host.
	if hosts := e.docker("ps", "--format", `{{.Label "dev.hubctl.host"}}`, "--filter", "label=dev.hubctl.service="+e.service); !strings.Contains(hosts, "remote") {
		t.Fatalf("host labels %q", hosts)
	}
	e.writeSpec("v2")
	e.mustHubctl(e.deployArgs("update")...)
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v2") {
		t.Fatalf("after update over ssh: %q %v", body, err)
	}
	if _, errOut, err := e.hubctl(e.args("logs")...); err != nil || !strings.Contains(errOut, "==> remote/") {
		t.Fatalf("logs over ssh: %v %q", err, errOut)
	}
	e.mustHubctl(e.args("down")...)
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("down over ssh left containers: %s", left)
	}
	if recs := e.history(); len(recs) != 2 || recs[0].Outcome != "succeeded" {
		t.Fatalf("history = %+v", recs)
	}
}
