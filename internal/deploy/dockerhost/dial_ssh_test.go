package dockerhost

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/dockerhost/sshtest"
)

// TestDialSSH reaches this machine's engine through a real sshd on loopback, as
// DOCKER_HOST=ssh:// does; a key the host does not take, or a host key that is not
// the known one, fails at once with what ssh said, and never prompts.
func TestDialSSH(t *testing.T) {
	dialEngineSocket(t)
	keys := t.TempDir()
	good := sshtest.Keygen(t, keys, "deployer")
	wrong := sshtest.Keygen(t, keys, "stranger")
	pub, err := os.ReadFile(good + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s := sshtest.Start(t, pub)
	known := s.KnownHosts(t, "known_hosts", s.HostPub)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := deploy.Host{Name: "remote", Docker: s.Addr()}

	api, err := Dial(ctx, h, WithSSHConfig(s.ClientConfig(t, "good_config", good, known)))
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
	if n := s.Clients(); n == 0 {
		t.Error("no ssh process while the client holds connections")
	}
	// Closing the client ends its ssh processes.
	api.Close()
	for deadline := time.Now().Add(30 * time.Second); s.Clients() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d ssh processes left after Close", s.Clients())
		}
	}

	// A key the host does not authorize.
	_, err = Dial(ctx, h, WithSSHConfig(s.ClientConfig(t, "wrong_config", wrong, known)))
	if err == nil || !strings.Contains(err.Error(), "Permission denied") || !strings.Contains(err.Error(), "authorized_keys") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Dial with a key the host does not take: %v; want one line saying Permission denied, with the fix", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the wrong key ran into the test's deadline: something waited for a prompt")
	}
	t.Logf("wrong key: %v", err)

	// A host whose key is not the known one (a man in the middle, or a reinstall).
	other := sshtest.Keygen(t, keys, "impostor-host")
	otherPub, err := os.ReadFile(other + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	spoofed := s.KnownHosts(t, "known_hosts_other", otherPub)
	_, err = Dial(ctx, h, WithSSHConfig(s.ClientConfig(t, "spoofed_config", good, spoofed)))
	if err == nil || !strings.Contains(err.Error(), "known_hosts") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Dial with a changed host key: %v; want a one-line host key error", err)
	}
	t.Logf("changed host key: %v", err)

	// Nobody listening.
	closed := deploy.Host{Name: "gone", Docker: fmt.Sprintf("ssh://%s@127.0.0.1:%d", s.User, sshtest.FreePort(t))}
	_, err = Dial(ctx, closed, WithSSHConfig(s.ClientConfig(t, "good_config2", good, known)))
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
	key := sshtest.Keygen(t, keys, "deployer")
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s := sshtest.Start(t, pub)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api, err := Dial(ctx, deploy.Host{Name: "remote", Docker: s.Addr()},
		WithSSHConfig(s.ClientConfig(t, "config", key, s.KnownHosts(t, "known_hosts", s.HostPub))))
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
