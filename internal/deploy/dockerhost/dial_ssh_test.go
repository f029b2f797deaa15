package dockerhost

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
)

// dialSSHD is an sshd the test started on 127.0.0.1, whose logins run the docker
// CLI of this machine, so ssh://user@127.0.0.1:port is this same engine.
type dialSSHD struct {
	dir, user string
	port      int
	hostPub   []byte
}

// startDialSSHD runs sshd with its own config, host key and authorized key (made
// in a temp dir), on a random loopback port, until the test ends.
func startDialSSHD(t *testing.T, authorized []byte) *dialSSHD {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/sshd"); serr != nil {
			dialMissing(t, "sshd not found (apt-get install -y openssh-server): %v", err)
		}
		sshd = "/usr/sbin/sshd"
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		dialMissing(t, "ssh not found (apt-get install -y openssh-client): %v", err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		dialMissing(t, "the docker CLI is not here; the engine over SSH runs 'docker system dial-stdio': %v", err)
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
	hostKey := dialKeygen(t, dir, "host")
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	dialWrite(t, dir, "authorized_keys", authorized)
	s := &dialSSHD{dir: dir, user: u.Username, hostPub: hostPub}
	// A free port can be taken between the probe and sshd's bind: try a few.
	for attempt := 0; ; attempt++ {
		s.port = dialFreePort(t)
		cfg := fmt.Sprintf(`Port %d
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
`, s.port, hostKey, filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))
		conf := dialWrite(t, dir, "sshd_config", []byte(cfg))
		var log bytes.Buffer
		cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sshd: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		up := false
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
			select {
			case <-exited:
			default:
				if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second); err == nil {
					c.Close()
					up = true
				}
			}
			if up || dialClosed(exited) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if up {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("sshd log:\n%s", log.String())
				}
			})
			return s
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			t.Fatalf("sshd did not start:\n%s", log.String())
		}
	}
}

func dialClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func dialFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// dialKeygen makes an ed25519 key pair without a passphrase and returns the
// private key's path.
func dialKeygen(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hubctl-test-"+name, "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return p
}

// clientConfig writes an ssh_config that offers key only, trusts knownHosts only and
// never asks the agent: what a deployer's ~/.ssh/config would say.
func (s *dialSSHD) clientConfig(t *testing.T, name, key, knownHosts string) string {
	t.Helper()
	cfg := fmt.Sprintf(`Host *
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  PasswordAuthentication no
  KbdInteractiveAuthentication no
  LogLevel ERROR
`, key, knownHosts)
	return dialWrite(t, s.dir, name, []byte(cfg))
}

func (s *dialSSHD) knownHosts(t *testing.T, name string, pub []byte) string {
	t.Helper()
	f := strings.Fields(string(pub))
	return dialWrite(t, s.dir, name, fmt.Appendf(nil, "[127.0.0.1]:%d %s %s\n", s.port, f[0], f[1]))
}

// clients counts the ssh client processes dialled to this sshd.
func (s *dialSSHD) clients() int {
	want := fmt.Sprintf("\x00-p\x00%d\x00--\x00127.0.0.1\x00docker\x00system\x00dial-stdio", s.port)
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

func (s *dialSSHD) addr() string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d", s.user, s.port)
}

// TestDialSSH reaches this machine's engine through a real sshd on loopback, as
// DOCKER_HOST=ssh:// does; a key the host does not take, or a host key that is not
// the known one, fails at once with what ssh said, and never prompts.
func TestDialSSH(t *testing.T) {
	dialEngineSocket(t)
	keys := t.TempDir()
	good := dialKeygen(t, keys, "deployer")
	wrong := dialKeygen(t, keys, "stranger")
	pub, err := os.ReadFile(good + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s := startDialSSHD(t, pub)
	known := s.knownHosts(t, "known_hosts", s.hostPub)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := deploy.Host{Name: "remote", Docker: s.addr()}

	api, err := Dial(ctx, h, WithSSHConfig(s.clientConfig(t, "good_config", good, known)))
	if err != nil {
		t.Fatalf("Dial %s: %v", h.Docker, err)
	}
	dialCheck(ctx, t, api)
	// The same engine as the local one: the same daemon id.
	local, err := Dial(ctx, deploy.Host{Name: "local"})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	ri, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatalf("info over ssh: %v", err)
	}
	li, err := local.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ri.Info.ID != li.Info.ID {
		t.Errorf("over ssh the engine is %s, locally %s", ri.Info.ID, li.Info.ID)
	}
	// Several requests at once: each connection is an ssh process of its own.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := api.ContainerList(ctx, client.ContainerListOptions{All: true})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("parallel list over ssh: %v", err)
		}
	}
	if n := s.clients(); n == 0 {
		t.Error("no ssh process while the client holds connections")
	}
	// Closing the client ends its ssh processes.
	api.Close()
	for deadline := time.Now().Add(30 * time.Second); s.clients() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d ssh processes left after Close", s.clients())
		}
	}

	// A key the host does not authorize.
	_, err = Dial(ctx, h, WithSSHConfig(s.clientConfig(t, "wrong_config", wrong, known)))
	if err == nil || !strings.Contains(err.Error(), "Permission denied") || !strings.Contains(err.Error(), "authorized_keys") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Dial with a key the host does not take: %v; want one line saying Permission denied, with the fix", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the wrong key ran into the test's deadline: something waited for a prompt")
	}
	t.Logf("wrong key: %v", err)

	// A host whose key is not the known one (a man in the middle, or a reinstall).
	other := dialKeygen(t, keys, "impostor-host")
	otherPub, err := os.ReadFile(other + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	spoofed := s.knownHosts(t, "known_hosts_other", otherPub)
	_, err = Dial(ctx, h, WithSSHConfig(s.clientConfig(t, "spoofed_config", good, spoofed)))
	if err == nil || !strings.Contains(err.Error(), "known_hosts") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Dial with a changed host key: %v; want a one-line host key error", err)
	}
	t.Logf("changed host key: %v", err)

	// Nobody listening.
	closed := deploy.Host{Name: "gone", Docker: fmt.Sprintf("ssh://%s@127.0.0.1:%d", s.user, dialFreePort(t))}
	_, err = Dial(ctx, closed, WithSSHConfig(s.clientConfig(t, "good_config2", good, known)))
	if err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("Dial of a closed port: %v", err)
	}
}

// TestDialSSHExec drives over SSH what a deploy does on a host: an image build
// (a streamed request body), a container, and `docker exec` with its output on a
// hijacked connection (how the proxy's control verbs run), then removes them.
func TestDialSSHExec(t *testing.T) {
	dialEngineSocket(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		dialMissing(t, "busybox not found (apt-get install -y busybox-static): %v", err)
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	key := dialKeygen(t, keys, "deployer")
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s := startDialSSHD(t, pub)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api, err := Dial(ctx, deploy.Host{Name: "remote", Docker: s.addr()},
		WithSSHConfig(s.clientConfig(t, "config", key, s.knownHosts(t, "known_hosts", s.hostPub))))
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()

	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	tag := hex.EncodeToString(id[:])
	ref := "hubctl-test/dial-ssh:" + tag
	name := "hubctl-test-dial-ssh-" + tag
	labels := map[string]string{"hubctl.test": "dial-ssh-" + tag}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove container: %v", err)
		}
		if _, err := api.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove image: %v", err)
		}
	})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
		mode int64
	}{
		{"Dockerfile", []byte("FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"sleep\", \"300\"]\n"), 0o644},
		{"busybox", busybox, 0o755},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := api.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{ref}, Version: build.BuilderV1, Remove: true, ForceRemove: true, Labels: labels})
	if err != nil {
		t.Fatalf("build over ssh: %v", err)
	}
	out, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("build over ssh: %v %s", err, out)
	}

	c, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: ref, Labels: labels}})
	if err != nil {
		t.Fatalf("create over ssh: %v", err)
	}
	if _, err := api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start over ssh: %v", err)
	}
	ex, err := api.ExecCreate(ctx, c.ID, client.ExecCreateOptions{Cmd: []string{"/bin/busybox", "echo", "hello over ssh"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec create over ssh: %v", err)
	}
	att, err := api.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec attach over ssh: %v", err)
	}
	var stdout, stderr bytes.Buffer
	_, err = stdcopy.StdCopy(&stdout, &stderr, att.Reader)
	att.Close()
	if err != nil {
		t.Fatalf("exec output over ssh: %v", err)
	}
	ins, err := api.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.ExitCode != 0 || strings.TrimSpace(stdout.String()) != "hello over ssh" {
		t.Errorf("exec over ssh: exit %d, stdout %q, stderr %q", ins.ExitCode, stdout.String(), stderr.String())
	}
}
