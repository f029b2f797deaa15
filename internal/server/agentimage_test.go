package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/agentimage"
	"github.com/hubctl/hubctl/internal/agentimage/agentimagetest"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/kubetest"
	"github.com/hubctl/hubctl/internal/policy"
	"github.com/hubctl/hubctl/internal/workflow/executor/kube"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agentimagetest.Cleanup()
	os.Exit(code)
}

// skipOrFail skips a test whose tool is not here, and fails it under CI=true.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// agentHub starts a hub whose workflows run on Kubernetes (no cluster needed for the
// image) with external_url on its own address and the agent image built from a small
// static binary; it returns the hub and the image reference its log announced.
func agentHub(t *testing.T, data, addr string, flags map[string]string) (*running, string) {
	t.Helper()
	old := agentBinary
	agentBinary = agentimagetest.StaticBinary(t)
	t.Cleanup(func() { agentBinary = old })
	f := map[string]string{"auth.mode": "token", "addr": addr, "data": data, "external_url": "http://" + addr,
		"workflows.executor": "kubernetes", "workflows.interval": "50ms"}
	for k, v := range flags {
		f[k] = v
	}
	r := start(t, f)
	return r, agentLogLine(t, r)
}

// agentLogLine returns the image of the hub's "workflows: agent image" line, and its
// fields through t.Logf; "" when the hub logged none.
func agentLogLine(t *testing.T, r *running) string {
	t.Helper()
	for _, l := range logLines(t, r.log) {
		if l["msg"] == "workflows: agent image" {
			img, _ := l["image"].(string)
			return img
		}
	}
	return ""
}

// agentLogFields returns the fields of the hub's "workflows: agent image" line.
func agentLogFields(t *testing.T, r *running) map[string]any {
	t.Helper()
	for _, l := range logLines(t, r.log) {
		if l["msg"] == "workflows: agent image" {
			return l
		}
	}
	t.Fatalf("no agent image line; log:\n%s", r.log.String())
	return nil
}

// anonymousPull fetches path of the registry with an anonymous registry token for
// the agent repository (pull), as a pod without pull secret does.
func anonymousPull(t *testing.T, base, path string) (int, []byte) {
	t.Helper()
	q := url.Values{"service": {"hubctl"}, "scope": {"repository:" + agentimage.Repository + ":pull"}}
	code, body := apiDo(t, "GET", base+"/token?"+q.Encode(), "", nil)
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(body), &tok); code != 200 || err != nil || tok.Token == "" {
		t.Fatalf("anonymous /token = %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// pullAgent pulls ref (host/repo@digest) anonymously: the manifest by digest, its
// config and its one layer, which must hold the static binary alone at /hubctl.
func pullAgent(t *testing.T, base, ref string) {
	t.Helper()
	_, d, ok := strings.Cut(ref, "@")
	if !ok {
		t.Fatalf("reference %q is not pinned by digest", ref)
	}
	code, raw := anonymousPull(t, base, "/v2/"+agentimage.Repository+"/manifests/"+d)
	if code != 200 || digest.FromBytes(raw).String() != d {
		t.Fatalf("manifest %s: %d %s", d, code, raw)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest: %v %s", err, raw)
	}
	code, layer := anonymousPull(t, base, "/v2/"+agentimage.Repository+"/blobs/"+m.Layers[0].Digest.String())
	if code != 200 || digest.FromBytes(layer) != m.Layers[0].Digest {
		t.Fatalf("layer: %d", code)
	}
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(agentimagetest.StaticBinary(t))
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Name != "hubctl" {
		t.Fatalf("layer's first entry %v, %v", h, err)
	}
	if got, _ := io.ReadAll(tr); !bytes.Equal(got, want) {
		t.Errorf("/hubctl is not the binary serve built the image from")
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("the layer holds more than /hubctl: %v", err)
	}
}

// TestAgentImagePublishedAtStart: a hub on Kubernetes with an external URL and no
// agent_image publishes its own agent image at start, pinned by digest on the
// external host, which anyone pulls (a crane pull, anonymous, too); GC keeps it
// while it deletes an untagged manifest beside it; a second start writes nothing.
func TestAgentImagePublishedAtStart(t *testing.T) {
	data, addr := t.TempDir(), freeAddr(t)
	r, ref := agentHub(t, data, addr, nil)
	base := "http://" + addr
	if !strings.HasPrefix(ref, addr+"/"+accounts.SystemNamespace+"/workflow-agent@sha256:") {
		t.Fatalf("agent image %q; log:\n%s", ref, r.log.String())
	}
	if f := agentLogFields(t, r); f["blobs_written"] != 2.0 || f["manifest_written"] != true {
		t.Errorf("first start: %v; want 2 blobs and the manifest written", f)
	}
	pullAgent(t, base, ref)
	if crane, err := exec.LookPath(filepath.Join(os.Getenv("HOME"), ".cache/hubctl/bin/crane")); err == nil {
		cmd := exec.Command(crane, "manifest", "--insecure", ref)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil || digest.FromBytes(out).String() != ref[strings.Index(ref, "@")+1:] {
			t.Errorf("crane manifest %s: %v %s", ref, err, out)
		}
	} else {
		t.Logf("crane is not installed: the pull is checked over HTTP only")
	}

	// Garbage beside it: an untagged manifest in the admin's namespace.
	tok := registryToken(t, base, AdminUser, testAdminPassword, "repository:"+AdminUser+"/junk:pull,push")
	push(t, http.DefaultClient, base, AdminUser+"/junk", tok, []byte("junk layer"))
	req, _ := http.NewRequest("DELETE", base+"/v2/"+AdminUser+"/junk/manifests/v1", nil)
	req.Header.Set("Authorization", "Bearer "+registryToken(t, base, AdminUser, testAdminPassword, "repository:"+AdminUser+"/junk:delete"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("untag the junk: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	r.stop(t)

	cfg, err := config.Load(config.Sources{Flags: map[string]string{"data": data}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	meta, err := openMetaStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := openBlobStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := gc.Run(ctx, gc.Options{Meta: meta, Blobs: blobs, Untagged: true, Holder: "test"})
	meta.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Manifests == 0 || rep.Swept == 0 {
		t.Errorf("GC swept nothing (%+v): the test's garbage was not garbage", rep)
	}
	for _, m := range rep.DeletedManifests {
		if strings.HasPrefix(m, accounts.SystemNamespace+"/") {
			t.Errorf("GC deleted %s", m)
		}
	}

	r2, ref2 := agentHub(t, data, addr, nil)
	if ref2 != ref {
		t.Errorf("second start: %q; want %q", ref2, ref)
	}
	if f := agentLogFields(t, r2); f["blobs_written"] != 0.0 || f["manifest_written"] != false {
		t.Errorf("second start wrote %v; want nothing", f)
	}
	pullAgent(t, base, ref2)
}

// TestAgentImageAttacker: nobody replaces the image every job's pod runs with its
// token inside: not the site admin through the token service (only pull is granted),
// the registry (push, mount and delete refused), the hub API (no delete), nor by
// taking the namespace as an account; and a hub without auth refuses writes there too.
func TestAgentImageAttacker(t *testing.T) {
	r, ref := agentHub(t, t.TempDir(), freeAddr(t), nil)
	base := "http://" + r.addr
	if ref == "" {
		t.Fatalf("no agent image; log:\n%s", r.log.String())
	}
	_, d, _ := strings.Cut(ref, "@")
	repo := agentimage.Repository
	admin := basicAuth(AdminUser, testAdminPassword)

	// The token service grants the site admin pull, nothing more.
	q := url.Values{"service": {"hubctl"}, "scope": {"repository:" + repo + ":pull,push,delete", "repository:" + accounts.SystemNamespace + "/evil:pull,push"}}
	code, body := apiDo(t, "GET", base+"/token?"+q.Encode(), admin, nil)
	var tr struct{ Token string }
	if err := json.Unmarshal([]byte(body), &tr); code != 200 || err != nil {
		t.Fatalf("/token: %d %s", code, body)
	}
	parts := strings.Split(tr.Token, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Access []struct {
			Name    string
			Actions []string
		}
	}
	if err := json.Unmarshal(claims, &c); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Access {
		for _, act := range a.Actions {
			if act != "pull" {
				t.Errorf("the admin's token grants %s on %s", act, a.Name)
			}
		}
	}

	// The registry refuses every write, whatever the token.
	writes := []struct{ method, path string }{
		{"PUT", "/v2/" + repo + "/manifests/latest"},
		{"PUT", "/v2/" + repo + "/manifests/" + d},
		{"DELETE", "/v2/" + repo + "/manifests/" + d},
		{"POST", "/v2/" + repo + "/blobs/uploads/"},
		{"POST", "/v2/" + repo + "/blobs/uploads/?mount=" + d + "&from=" + AdminUser + "/x"},
		{"POST", "/v2/" + accounts.SystemNamespace + "/evil/blobs/uploads/"},
	}
	for _, w := range writes {
		req, _ := http.NewRequest(w.method, base+w.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tr.Token)
		req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "DENIED") {
			t.Errorf("%s %s as the admin = %d %s; want 403 DENIED", w.method, w.path, resp.StatusCode, b)
		}
	}
	// The hub API deletes nothing there, and no account takes the name.
	if code, body := apiDo(t, "DELETE", base+"/api/v1/repositories/"+repo, admin, nil); code == http.StatusNoContent {
		t.Errorf("the hub API deleted %s: %d %s", repo, code, body)
	}
	if code, body := apiDo(t, "POST", base+"/api/v1/orgs", admin, map[string]string{"name": accounts.SystemNamespace}); code != http.StatusBadRequest {
		t.Errorf("an organisation %s: %d %s; want 400", accounts.SystemNamespace, code, body)
	}
	if code, body := apiDo(t, "POST", base+"/api/v1/users", admin, map[string]string{"name": accounts.SystemNamespace, "password": "long-enough-password"}); code != http.StatusBadRequest {
		t.Errorf("a user %s: %d %s; want 400", accounts.SystemNamespace, code, body)
	}
	pullAgent(t, base, ref) // still there, unchanged

	// A hub without auth is open to everybody, except there.
	open := start(t, map[string]string{"auth.mode": "none"})
	for _, w := range writes[:4] {
		req, _ := http.NewRequest(w.method, "http://"+open.addr+w.path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s on a hub without auth = %d; want 403", w.method, w.path, resp.StatusCode)
		}
	}
}

// TestAgentImageNeedsExternalURL: without external_url the hub publishes nothing,
// keeps refusing artifacts, and says once to set external_url or agent_image; an
// operator's agent_image is used as it is, and nothing is published.
func TestAgentImageNeedsExternalURL(t *testing.T) {
	old := agentBinary
	agentBinary = agentimagetest.StaticBinary(t)
	t.Cleanup(func() { agentBinary = old })
	oldCheck := KubeCheckWorkflow
	KubeCheckWorkflow = kube.CheckWorkflowWith
	t.Cleanup(func() { KubeCheckWorkflow = oldCheck })
	r := start(t, map[string]string{"auth.mode": "token", "workflows.executor": "kubernetes"})
	// Artifacts are refused at apply, the refusal naming both settings.
	src := "name: arts\non:\n  manual: {}\njobs:\n  build:\n    image: busybox\n    artifacts:\n      - {name: dist, path: out}\n    steps:\n      - run: mkdir out\n"
	req, _ := http.NewRequest("PUT", "http://"+r.addr+"/api/v1/workflows/"+AdminUser+"/arts", strings.NewReader(src))
	req.Header.Set("Authorization", basicAuth(AdminUser, testAdminPassword))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "agent_image") || !strings.Contains(string(b), "external_url") {
		t.Errorf("apply artifacts without external_url: %d %s; want 400 naming agent_image and external_url", resp.StatusCode, b)
	}
	warned := 0
	for _, l := range logLines(t, r.log) {
		if msg, _ := l["msg"].(string); strings.Contains(msg, "no agent image: set external_url") && strings.Contains(msg, "workflows.kube.agent_image") {
			warned++
		}
	}
	if warned != 1 || agentLogLine(t, r) != "" {
		t.Errorf("%d warnings, image %q; log:\n%s", warned, agentLogLine(t, r), r.log.String())
	}
	addr := freeAddr(t)
	own := start(t, map[string]string{"auth.mode": "token", "workflows.executor": "kubernetes", "addr": addr, "external_url": "http://" + addr,
		"workflows.kube.agent_image": "registry.example/agent:1"})
	if img := agentLogLine(t, own); img != "" {
		t.Errorf("published %s beside the operator's agent_image", img)
	}
	if code, _ := anonymousPull(t, "http://"+addr, "/v2/"+agentimage.Repository+"/tags/list"); code != http.StatusNotFound {
		t.Errorf("tags of %s on a hub with agent_image: %d; want 404", agentimage.Repository, code)
	}
	// A binary that cannot run FROM scratch: one warning, no image.
	agentBinary = "/bin/sh"
	if _, err := os.Stat(agentBinary); err != nil {
		skipOrFail(t, "no /bin/sh")
	}
	addr = freeAddr(t)
	dyn := start(t, map[string]string{"auth.mode": "token", "workflows.executor": "kubernetes", "addr": addr, "external_url": "http://" + addr})
	n := 0
	for _, l := range logLines(t, dyn.log) {
		if msg, _ := l["msg"].(string); strings.Contains(msg, "this hubctl cannot be one") {
			n++
		}
	}
	if n != 1 || agentLogLine(t, dyn) != "" {
		t.Errorf("a dynamic binary: %d warnings; log:\n%s", n, dyn.log.String())
	}
}

// TestAgentImageKubeJob: a hub whose workflows run on a real control plane
// (internal/kubetest) builds the Job of a job with artifacts on the image it
// published, pinned by digest, and the job's pull secret (what the kubelet signs in
// with for every image of the hub) gets pull on it from /token.
func TestAgentImageKubeJob(t *testing.T) {
	c := kubetest.Start(t)
	const ns = "hubctl-agent"
	c.Namespace(t, ns)
	old := KubeExecutor
	KubeExecutor = func(cfg config.WorkflowsKube) (WorkflowExecutor, error) {
		rc, err := kube.RESTConfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		return kube.NewFromConfig(rc, cfg.Namespace, kube.WithAgentImage(cfg.AgentImage))
	}
	t.Cleanup(func() { KubeExecutor = old })
	addr := freeAddr(t)
	r, ref := agentHub(t, t.TempDir(), addr, map[string]string{"workflows.kube.kubeconfig": c.Kubeconfig, "workflows.kube.namespace": ns})
	if ref == "" {
		t.Fatalf("no agent image; log:\n%s", r.log.String())
	}
	base := "http://" + addr
	admin := basicAuth(AdminUser, testAdminPassword)
	// A job that saves an artifact; its token asks pull on the admin's repository,
	// so the Job gets a pull secret.
	src := "name: arts\non:\n  manual: {}\npermissions:\n  pull: [" + AdminUser + "/tools]\njobs:\n  build:\n    image: busybox\n    artifacts:\n      - {name: dist, path: out}\n    steps:\n      - run: mkdir out\n"
	req, _ := http.NewRequest("PUT", base+"/api/v1/workflows/"+AdminUser+"/arts", strings.NewReader(src))
	req.Header.Set("Authorization", admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("apply a workflow with artifacts: %d %s", resp.StatusCode, b)
	}
	if code, b := apiDo(t, "POST", base+"/api/v1/workflows/"+AdminUser+"/arts/runs", admin, map[string]any{}); code != http.StatusCreated {
		t.Fatalf("run: %d %s", code, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var job *batchv1.Job
	for job == nil {
		jobs, err := c.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelJob})
		if err != nil {
			t.Fatalf("no Job made: %v; log:\n%s", err, r.log.String())
		}
		if len(jobs.Items) > 0 {
			job = &jobs.Items[0]
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	pod := job.Spec.Template.Spec
	var save *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "hubctl-save" {
			save = &pod.Containers[i]
		}
	}
	if save == nil || save.Image != ref {
		t.Fatalf("the save container %+v; want image %s", save, ref)
	}
	if len(pod.ImagePullSecrets) != 1 {
		t.Fatalf("image pull secrets %v", pod.ImagePullSecrets)
	}
	sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, pod.ImagePullSecrets[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var dc struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(sec.Data[corev1.DockerConfigJsonKey], &dc); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(dc.Auths[addr].Auth)
	user, pass, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok {
		t.Fatalf("pull secret for %s: %v %v", addr, dc.Auths, err)
	}
	// As the kubelet's runtime signs in for the agent image: pull, and only pull.
	q := url.Values{"service": {"hubctl"}, "scope": {"repository:" + agentimage.Repository + ":pull,push"}}
	code, body := apiDo(t, "GET", base+"/token?"+q.Encode(), basicAuth(user, pass), nil)
	var tr struct{ Scope string }
	if err := json.Unmarshal([]byte(body), &tr); code != 200 || err != nil || tr.Scope != "repository:"+agentimage.Repository+":pull" {
		t.Errorf("the job's pull secret at /token for the agent image: %d %s; want pull granted", code, body)
	}
}

// TestAgentImageKeptByRetention: a retention policy stored for the system namespace
// (no API lets anyone set one: it is read-only for all) deletes nothing there, while
// the same policy on another namespace does delete, so the rule does bite.
func TestAgentImageKeptByRetention(t *testing.T) {
	data, addr := t.TempDir(), freeAddr(t)
	r, ref := agentHub(t, data, addr, nil)
	base := "http://" + addr
	tok := registryToken(t, base, AdminUser, testAdminPassword, "repository:"+AdminUser+"/junk:pull,push")
	push(t, http.DefaultClient, base, AdminUser+"/junk", tok, []byte("junk layer"))
	r.stop(t)

	cfg, err := config.Load(config.Sources{Flags: map[string]string{"data": data}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	meta, err := openMetaStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pol := policy.Policy{Retention: &policy.Retention{Rules: []policy.Rule{{Tags: "*", PushedWithin: policy.Duration(time.Second)}}}}
	for _, scope := range []string{accounts.SystemNamespace, AdminUser} {
		if err := meta.PutPolicy(ctx, scope, pol, "test"); err != nil {
			t.Fatal(err)
		}
	}
	meta.Close()
	time.Sleep(1100 * time.Millisecond) // every tag is now older than the rule keeps

	maddr := freeAddr(t)
	r2, ref2 := agentHub(t, data, addr, map[string]string{"retention.interval": "100ms", "metrics.addr": maddr})
	if ref2 != ref {
		t.Fatalf("second start: %q; want %q", ref2, ref)
	}
	var junk string
	for range 100 {
		req, _ := http.NewRequest("GET", base+"/v2/"+AdminUser+"/junk/tags/list", nil)
		req.Header.Set("Authorization", "Bearer "+registryToken(t, base, AdminUser, testAdminPassword, "repository:"+AdminUser+"/junk:pull"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		junk = string(b)
		if !strings.Contains(junk, `"v1"`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(junk, `"v1"`) {
		t.Fatalf("retention never deleted %s/junk:v1 (%s): the rule does not bite, the test proves nothing; log:\n%s", AdminUser, junk, r2.log.String())
	}
	before := scrape(t, "http://"+maddr+"/metrics", nil)[`hubctl_retention_runs_total{result="ok"}`]
	for range 100 {
		if scrape(t, "http://"+maddr+"/metrics", nil)[`hubctl_retention_runs_total{result="ok"}`] >= before+2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, tags := anonymousPull(t, base, "/v2/"+agentimage.Repository+"/tags/list")
	if code != http.StatusOK || !strings.Contains(string(tags), `"tags":["`) {
		t.Fatalf("the agent image's tags after retention: %d %s", code, tags)
	}
	pullAgent(t, base, ref)
}
