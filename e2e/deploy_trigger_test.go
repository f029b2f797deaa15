package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/hubctl/hubctl/internal/deploy/dockerhost/tlstest"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// TestDeployTriggeredByPush is docs/deploy.md's "Deploying from a workflow", run as
// written there (the hub's, the engine's and the service's names replaced): a real
// `hubctl serve` whose workflow engine runs steps on the real Docker engine, a
// workflow applied from the page's example, and an engine reached over tcp:// with
// TLS (a client certificate the hub's secret store holds; here the test's TLS front
// of the local engine's socket). Pushing the tag v1 of acme/web runs the workflow:
// its step, in an image FROM scratch holding hubctl and busybox that the engine
// pulls from the hub with the job's token, deploys v1 with $HUBCTL_TOKEN through
// the hub; pushing v2 deploys v2 under load with no failed request. The hub's
// history shows both deploys, by the applier; a tag the trigger does not match
// deploys nothing.
func TestDeployTriggeredByPush(t *testing.T) {
	requireDocker(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		skipOrFatal(t, "busybox not found (apt-get install -y busybox-static): %v", err)
	}
	bbBin, err := os.ReadFile(bb)
	if err != nil || !strings.HasPrefix(string(bbBin[:4]), "\x7fELF") {
		skipOrFatal(t, "%s is not a static ELF binary: %v", bb, err)
	}
	hubctlData, err := os.ReadFile(hubctlBin)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	service := "web-" + id
	t.Cleanup(func() { removeByLabel("dev.hubctl.service=" + service) })

	s := startServerEnv(t, t.TempDir(), []string{"HUBCTL_WORKFLOWS_EXECUTOR=docker", "HUBCTL_WORKFLOWS_INTERVAL=200ms",
		"HUBCTL_WORKFLOWS_DOCKER_NETWORK=host"})
	cli := loginCLI(t, s)
	cli.run("org", "create", "acme")
	engine, tlsFiles := startEngineTLSFront(t)
	for name, value := range tlsFiles {
		if resp, body := apiCall(t, s, http.MethodPut, "/api/v1/namespaces/acme/secrets/"+name, "admin", adminPassword,
			map[string]string{"value": value}); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("set secret %s: %s %q", name, resp.Status, truncate(body, 300))
		}
	}

	dockerCfg := t.TempDir()
	dockerEnv := append(os.Environ(), "DOCKER_BUILDKIT=0", "DOCKER_CONFIG="+dockerCfg)
	runStdin(t, "", dockerEnv, adminPassword+"\n", "docker", "login", s.Addr, "-u", "admin", "--password-stdin")
	var pushed []string
	t.Cleanup(func() { _ = exec.Command("docker", append([]string{"rmi", "-f"}, pushed...)...).Run() })
	push := func(dir, ref string) {
		t.Helper()
		pushed = append(pushed, ref)
		run(t, dir, dockerEnv, "docker", "build", "-q", "--label", "hubctl.e2e="+id, "-t", ref, ".")
		run(t, dir, dockerEnv, "docker", "push", ref)
	}

	// The step's image: hubctl and busybox (the step's `run:` is a shell script).
	tools := t.TempDir()
	writeFiles(t, tools, map[string]string{"hubctl*": string(hubctlData), "busybox*": string(bbBin),
		"Dockerfile": "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY hubctl /bin/hubctl\n"})
	push(tools, s.Addr+"/acme/tools:1")
	_ = exec.Command("docker", "rmi", "-f", s.Addr+"/acme/tools:1").Run() // the engine pulls it from the hub

	// The workflow, as docs/deploy.md has it.
	src := docWorkflowExample(t)
	for _, r := range [][2]string{
		{"deploy: [web]", "deploy: [" + service + "]"},
		{"name: web\n", "name: " + service + "\n"},
		{"docker.example.com:2376", engine},
		{"--hub hub.example.com", "--hub hub.example.com --proxy-publish 127.0.0.1:0"},
		{"hub.example.com", s.Addr},
	} {
		if !strings.Contains(src, r[0]) {
			t.Fatalf("docs/deploy.md's workflow lacks %q:\n%s", r[0], src)
		}
		src = strings.ReplaceAll(src, r[0], r[1])
	}
	wf := filepath.Join(t.TempDir(), "ship.yaml")
	if err := os.WriteFile(wf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.run("workflow", "apply", wf, "--namespace", "acme")

	// The service: v1 and v2 of the static web server.
	web := t.TempDir()
	writeFiles(t, web, map[string]string{"go.mod": "module web\n\ngo 1.22\n", "main.go": webServerSource,
		"Dockerfile": "FROM scratch\nCOPY web /web\nENTRYPOINT [\"/web\"]\n"})
	goEnv := append(cleanEnv("GOFLAGS=", "GOWORK=", "CGO_ENABLED=", "GOOS=", "GOARCH="),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOWORK=off", "GOFLAGS=-trimpath")
	pushWeb := func(tag string) {
		t.Helper()
		run(t, web, goEnv, "go", "build", "-ldflags", "-X main.version="+tag+"-"+id, "-o", "web", ".")
		push(web, s.Addr+"/acme/web:"+tag)
	}
	waitRuns := func(n int) hubtypes.WorkflowRun {
		t.Helper()
		var runs []hubtypes.WorkflowRun
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if err := json.Unmarshal([]byte(cli.run("workflow", "runs", "acme/ship", "-o", "json")), &runs); err != nil {
				t.Fatal(err)
			}
			if len(runs) >= n && runs[0].State != "queued" && runs[0].State != "running" {
				break
			}
			if time.Now().After(deadline) {
				s.dumpLog(60)
				t.Fatalf("no %d finished runs after 3 minutes: %+v", n, runs)
			}
			time.Sleep(300 * time.Millisecond)
		}
		if len(runs) != n {
			t.Fatalf("%d runs, want %d: %+v", len(runs), n, runs)
		}
		if logs := cli.run("workflow", "logs", strconv.FormatInt(runs[0].ID, 10)); runs[0].State != "succeeded" {
			t.Fatalf("run %+v; logs:\n%s", runs[0], logs)
		} else if strings.Contains(logs, "BEGIN EC PRIVATE KEY") {
			t.Fatalf("the engine's client key is in the run's log:\n%s", logs)
		} else if n == 1 && !strings.Contains(logs, "loading it into each host instead") {
			// The job token may not push acme/hubctl-proxy: the step loads the
			// proxy image into the engine instead of failing the deploy.
			t.Errorf("the first deploy's log does not say the proxy image was loaded into the host:\n%s", logs)
		}
		return runs[0]
	}

	pushWeb("v1")
	if r := waitRuns(1); r.Trigger != "push" {
		t.Fatalf("run 1 %+v", r)
	}
	proxy := proxyAddr(t, service)
	if body, err := loadtest.Get(http.DefaultClient, proxy); err != nil || body != "v1-"+id {
		t.Fatalf("after the v1 push, through the proxy: %q %v", body, err)
	}

	// A tag the trigger does not match deploys nothing.
	push(web, s.Addr+"/acme/web:latest")

	load := loadtest.Start(proxy, 4)
	defer load.End()
	load.WaitMore(t, 50)
	pushWeb("v2")
	waitRuns(2)
	switched := time.Now()
	load.WaitMore(t, 100)
	load.End()
	if failures, total := load.Failures(); len(failures) > 0 {
		t.Fatalf("%d of %d requests failed during the triggered update, first: %s", len(failures), total, failures[0])
	}
	if got := load.Since(switched); len(got) != 1 || got["v2-"+id] == 0 {
		t.Fatalf("answers after the deploy finished: %v", got)
	}

	// The hub's history: two deploys of the service, by the applier.
	resp, body := apiCall(t, s, http.MethodGet, "/api/v1/deploys/acme/"+service, "admin", adminPassword, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("history: %s %q", resp.Status, truncate(body, 300))
	}
	var hist struct {
		Deploys []struct {
			Number  int               `json:"number"`
			Outcome string            `json:"outcome"`
			By      string            `json:"by"`
			Digests map[string]string `json:"digests"`
		} `json:"deploys"`
	}
	if err := json.Unmarshal(body, &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Deploys) != 2 {
		t.Fatalf("history %s", body)
	}
	for _, d := range hist.Deploys {
		if d.Outcome != "succeeded" || d.By != "admin" {
			t.Fatalf("history %s", body)
		}
	}
}

// docWorkflowExample is the workflow of docs/deploy.md's "Deploying from a
// workflow": its one ```yaml workflow block.
func docWorkflowExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\n```yaml workflow\n(.*?)\n```\n").FindAllStringSubmatch(string(data), -1)
	if len(m) != 1 {
		t.Fatalf("docs/deploy.md has %d ```yaml workflow blocks, want 1", len(m))
	}
	return m[0][1] + "\n"
}

// proxyAddr is the URL of the service's proxy as published on the host.
func proxyAddr(t *testing.T, service string) string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=dev.hubctl.service="+service, "--filter", "label=dev.hubctl.role=proxy").Output()
	ids := strings.Fields(string(out))
	if err != nil || len(ids) != 1 {
		t.Fatalf("the service's proxy: %v %q", err, out)
	}
	out, err = exec.Command("docker", "port", ids[0], "80/tcp").Output()
	addr := strings.TrimSpace(strings.Split(string(out), "\n")[0])
	if err != nil || addr == "" {
		t.Fatalf("the proxy's published port: %v %q", err, out)
	}
	return "http://" + addr + "/"
}

// removeByLabel removes the containers, networks and volumes carrying label.
func removeByLabel(label string) {
	if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output(); len(strings.Fields(string(out))) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(out))...)...).Run()
	}
	for _, kind := range []string{"network", "volume"} {
		if out, _ := exec.Command("docker", kind, "ls", "-q", "--filter", "label="+label).Output(); len(strings.Fields(string(out))) > 0 {
			_ = exec.Command("docker", append([]string{kind, "rm"}, strings.Fields(string(out))...)...).Run()
		}
	}
}

// startEngineTLSFront serves the local Docker engine's socket on 127.0.0.1 over
// TLS with client certificates, as `dockerd --tlsverify -H tcp://…:2376` does, and
// answers its address and the PEM files a client needs (DOCKER_CA, DOCKER_CERT,
// DOCKER_KEY). A client without a certificate the test's CA signed is refused.
func startEngineTLSFront(t *testing.T) (string, map[string]string) {
	t.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		sock = strings.TrimPrefix(h, "unix://")
	} else if h != "" {
		skipOrFatal(t, "DOCKER_HOST=%s: the TLS front serves a unix socket only", h)
	}
	ca := tlstest.NewCA(t, "e2e engine CA")
	srvCert, srvKey := ca.Issue(t, "e2e engine", true)
	cliCert, cliKey := ca.Issue(t, "e2e step", false)
	addr := strings.TrimPrefix(tlstest.Relay(t, sock, ca, srvCert, srvKey), "tcp://")
	return addr, map[string]string{"DOCKER_CA": string(ca.PEM), "DOCKER_CERT": string(cliCert), "DOCKER_KEY": string(cliKey)}
}
