package proxy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// missing skips a test whose tool is not here, and fails it when CI=true.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestProxyContainer is the proxy as a deploy will run it: hubctl, built static, in an
// image FROM scratch, on a Docker network the test makes, in front of two busybox
// httpd tasks (FROM scratch too), its port published on 127.0.0.1 only, driven by
// `docker exec … hubctl proxy deploy`. Under load, v1 → v2 fails no request.
func TestProxyContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds hubctl and images: not with -short")
	}
	api, err := client.New(client.FromEnv)
	if err != nil {
		missing(t, "docker engine client: %v", err)
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = api.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
	pcancel()
	if err != nil {
		missing(t, "no Docker engine reachable (set DOCKER_HOST or start dockerd): %v", err)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		missing(t, "busybox not found (apt-get install -y busybox-static): %v", err)
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}

	// hubctl, static, FROM scratch: the proxy image.
	dir := t.TempDir()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hubctl")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hubctl")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	hubctl, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	proxyImage := buildScratchImage(ctx, t, api, "hubctl-test/proxy", `FROM scratch
COPY hubctl /hubctl
COPY data /data
ENTRYPOINT ["/hubctl", "proxy", "run", "--listen", ":80", "--control-listen", "127.0.0.1:8081", "--state-file", "/data/state.json"]
`, map[string][]byte{"hubctl": hubctl, "data/.keep": nil})
	taskImage := buildScratchImage(ctx, t, api, "hubctl-test/httpd", `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENTRYPOINT ["/bin/sh", "-c", "mkdir -p /www && echo $VERSION > /www/index.html && echo ok > /www/up && exec httpd -f -p 8080 -h /www"]
`, map[string][]byte{"busybox": busybox})

	id := randomHex(t)
	lbl := map[string]string{"hubctl.test": "proxy-" + id}
	netName := "hubctl-test-proxy-" + id
	if _, err := api.NetworkCreate(ctx, netName, client.NetworkCreateOptions{Driver: "bridge", Labels: lbl}); err != nil {
		t.Fatal(err)
	}
	var made []string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, c := range made {
			if _, err := api.ContainerRemove(ctx, c, client.ContainerRemoveOptions{Force: true}); err != nil {
				t.Errorf("remove container %s: %v", c, err)
			}
		}
		if _, err := api.NetworkRemove(ctx, netName, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("remove network: %v", err)
		}
	})
	run := func(name, image string, env []string, publish bool) string {
		t.Helper()
		cfg := &container.Config{Image: image, Env: env, Labels: lbl}
		host := &container.HostConfig{}
		if publish {
			port := network.MustParsePort("80/tcp")
			cfg.ExposedPorts = network.PortSet{port: {}}
			host.PortBindings = network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
		}
		res, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: name, Config: cfg, HostConfig: host,
			NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {}}},
		})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		made = append(made, res.ID)
		if _, err := api.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		return res.ID
	}
	task := func(version string, i int) string {
		name := fmt.Sprintf("web-%s-%d-%s", version, i, id)
		run(name, taskImage, []string{"VERSION=" + version}, false)
		return name + ":8080"
	}
	v1 := []string{task("v1", 1), task("v1", 2)}
	secret := randomHex(t) + randomHex(t)
	proxyID := run("hubctl-proxy-"+id, proxyImage, []string{"HUBCTL_PROXY_SECRET=" + secret}, true)

	ins, err := api.ContainerInspect(ctx, proxyID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := ins.Container.NetworkSettings.Ports[network.MustParsePort("80/tcp")]
	if len(b) == 0 || b[0].HostIP.String() != "127.0.0.1" {
		t.Fatalf("published port: %+v; want one on 127.0.0.1", b)
	}
	url := "http://127.0.0.1:" + b[0].HostPort + "/"

	deploy := func(targets []string) string {
		t.Helper()
		args := []string{"/hubctl", "proxy", "deploy", "web", "--health-path", "/up", "--health-interval", "200ms", "--deploy-timeout", "30s"}
		for _, tg := range targets {
			args = append(args, "--target", tg)
		}
		out, code := execIn(ctx, t, api, proxyID, args)
		if code != 0 {
			t.Fatalf("proxy deploy %v: exit %d: %s", targets, code, out)
		}
		return out
	}
	// The container is started, not yet listening: wait for its control channel (the
	// first CI run that lost this race got "connection refused").
	waitFor(t, "the proxy's control channel", func() bool {
		_, code := execIn(ctx, t, api, proxyID, []string{"/hubctl", "proxy", "status"})
		return code == 0
	})
	// The control channel is not published: the host reaches only the public port.
	deploy(v1)
	waitFor(t, "v1 through the published port", func() bool {
		body, err := loadtest.Get(http.DefaultClient, url)
		return err == nil && strings.TrimSpace(body) == "v1"
	})

	l := loadtest.Start(url, 4)
	defer l.End()
	before := l.Count()
	waitFor(t, "load on v1", func() bool { return l.Count() > before+100 })
	v2 := []string{task("v2", 1), task("v2", 2)}
	out := deploy(v2)
	switched := time.Now()
	if !strings.Contains(out, "generation 2") {
		t.Errorf("deploy v2 said %q", out)
	}
	// The deployer stops the drained tasks.
	for _, name := range v1 {
		secs := 5
		if _, err := api.ContainerStop(ctx, strings.TrimSuffix(name, ":8080"), client.ContainerStopOptions{Timeout: &secs}); err != nil {
			t.Fatal(err)
		}
	}
	before = l.Count()
	waitFor(t, "load on v2", func() bool { return l.Count() > before+200 })
	l.End()
	l.CheckNoFailure(t, "")
	after := l.Since(switched)
	if len(after) != 1 || after["v2\n"] == 0 {
		t.Errorf("responses to requests started after the switch: %v; want only v2", after)
	}
	// A wrong secret in the exec's environment is refused.
	out, code := execIn(ctx, t, api, proxyID, []string{"/hubctl", "proxy", "status"}, "HUBCTL_PROXY_SECRET=wrong-secret-wrong-secret")
	if code == 0 || !strings.Contains(out, "needs the proxy's secret") {
		t.Errorf("status with a wrong secret: exit %d: %s", code, out)
	}
	_, total := l.Failures()
	t.Logf("%d requests through the proxy container, 0 failed", total)
}

// execIn runs args in the container and returns its output and exit code.
func execIn(ctx context.Context, t *testing.T, api *client.Client, id string, args []string, env ...string) (string, int) {
	t.Helper()
	ex, err := api.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: args, Env: env, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := api.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = stdcopy.StdCopy(&buf, &buf, att.Reader)
	att.Close()
	if err != nil {
		t.Fatal(err)
	}
	ins, err := api.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return buf.String(), ins.ExitCode
}

// buildScratchImage builds repo:<hash of the context> with the classic builder,
// unless the engine has it.
func buildScratchImage(ctx context.Context, t *testing.T, api *client.Client, repo, dockerfile string, files map[string][]byte) string {
	t.Helper()
	sum := sha256.New()
	sum.Write([]byte(dockerfile))
	names := []string{"Dockerfile"}
	for n, b := range files {
		names = append(names, n)
		sum.Write([]byte(n))
		sum.Write(b)
	}
	ref := repo + ":" + hex.EncodeToString(sum.Sum(nil))[:16]
	if _, err := api.ImageInspect(ctx, ref); err == nil {
		return ref
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		data := files[n]
		mode := int64(0o755)
		if n == "Dockerfile" {
			data, mode = []byte(dockerfile), 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := api.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{ref}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
		Labels: map[string]string{"hubctl.test": repo},
	})
	if err != nil {
		t.Fatalf("build %s: %v", ref, err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("build %s: %v", ref, err)
		}
		if m.Error != "" {
			t.Fatalf("build %s: %s", ref, m.Error)
		}
	}
	return ref
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
