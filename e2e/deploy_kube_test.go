package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/kube"
	"github.com/hubctl/hubctl/internal/kubetest"
)

// deployKubeChart is a chart of one Deployment whose image is pinned by the deploy
// (image.repository, .tag, .digest).
var deployKubeChart = map[string]string{
	"Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.0\"\n",
	"values.yaml": "replicaCount: 1\npodAnnotations: {}\nimage:\n  repository: \"\"\n  tag: \"\"\n  digest: \"\"\n",
	"templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      containers:
      - name: web
        image: "{{ .Values.image.repository }}{{ with .Values.image.digest }}@{{ . }}{{ else }}:{{ .Values.image.tag }}{{ end }}"
`,
}

// TestDeployKube: `hubctl deploy` on a kubernetes: spec against the real control
// plane (kwok makes the pods Ready), the chart and the image in a hub: --dry-run
// prints the diff, up installs with the image pinned by digest, update upgrades,
// history lists helm's revisions, rollback goes back, an update whose pods never
// become ready is rolled back by helm (exit non-zero, recorded rolled_back), down
// uninstalls. The deploys are recorded in the local history.
func TestDeployKube(t *testing.T) {
	crane := tool(t, "crane")
	c := kubetest.StartWithStages(t, kubetest.NeverReadyStage)
	if c == nil {
		return
	}
	c.Namespace(t, "shop")
	s := startServer(t)
	dir := t.TempDir()
	env := cleanEnv("HUBCTL_", "DOCKER_CONFIG=")
	hubctl := func(args ...string) string { t.Helper(); return run(t, dir, env, hubctlBin, args...) }

	// The image: one layer, no base, pushed with crane; the chart with hubctl.
	writeFiles(t, dir, map[string]string{"layer/hello.txt": "hello\n"})
	run(t, dir, nil, "tar", "-C", filepath.Join(dir, "layer"), "-cf", filepath.Join(dir, "layer.tar"), ".")
	img := s.Addr + "/acme/web:1"
	run(t, dir, nil, crane, "append", "--insecure", "-f", filepath.Join(dir, "layer.tar"), "-t", img)
	digest := strings.TrimSpace(run(t, dir, nil, crane, "digest", "--insecure", img))
	chartDir := filepath.Join(dir, "chart")
	files := map[string]string{}
	for k, v := range deployKubeChart {
		files[k] = v
	}
	writeFiles(t, chartDir, files)
	pkg := strings.TrimSpace(hubctl("chart", "package", chartDir, "-d", dir))
	hubctl("chart", "push", pkg, "oci://"+s.Addr+"/acme/charts", "--progress", "quiet")

	state := filepath.Join(dir, "state")
	spec := filepath.Join(dir, "deploy.yaml")
	writeSpec := func(replicas int, extra ...string) {
		t.Helper()
		timeout := "2m"
		if len(extra) > 0 {
			timeout = "15s"
		}
		body := fmt.Sprintf(`service:
  name: web
  image: %s
kubernetes:
  chart: oci://%s/acme/charts/web
  version: 0.1.0
  namespace: shop
  kubeconfig: %s
  timeout: %s
  values:
    replicaCount: %d
`, img, s.Addr, c.Kubeconfig, timeout, replicas) + strings.Join(extra, "")
		if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := func(verb ...string) []string {
		return append(append([]string{"deploy"}, verb...), "-f", spec, "--state-dir", state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	deployed := func() (string, int32) {
		t.Helper()
		d, err := c.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image, *d.Spec.Replicas
	}

	writeSpec(1)
	if out := hubctl(args("up", "--dry-run")...); !strings.Contains(out, "+        image: \""+s.Addr+"/acme/web@"+digest+"\"") {
		t.Fatalf("dry run:\n%s", out)
	}
	if _, err := c.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the dry run created the Deployment: %v", err)
	}
	if out := hubctl(args("up")...); !strings.Contains(out, "web: deploy 1: revision 1 deployed") {
		t.Fatalf("up: %q", out)
	}
	if im, n := deployed(); im != s.Addr+"/acme/web@"+digest || n != 1 {
		t.Fatalf("deployed %s ×%d", im, n)
	}
	writeSpec(2)
	if out := hubctl(args("update")...); !strings.Contains(out, "web: deploy 2: revision 2 deployed") {
		t.Fatalf("update: %q", out)
	}
	if _, n := deployed(); n != 2 {
		t.Fatalf("after update: %d replicas", n)
	}
	var revs []map[string]any
	if err := json.Unmarshal([]byte(hubctl(args("history")...)), &revs); err != nil || len(revs) != 2 {
		t.Fatalf("history: %v %v", revs, err)
	}
	if out := hubctl(args("rollback")...); !strings.Contains(out, "web: revision 3") {
		t.Fatalf("rollback: %q", out)
	}
	if _, n := deployed(); n != 1 {
		t.Fatalf("after rollback: %d replicas", n)
	}
	// A revision whose pods never become ready: helm puts revision 3 back, hubctl
	// exits non-zero in one line and records the deploy rolled_back.
	var ann strings.Builder
	ann.WriteString("    podAnnotations:\n")
	for k, v := range kubetest.NeverReadyAnnotations {
		fmt.Fprintf(&ann, "      %s: %q\n", k, v)
	}
	writeSpec(2, ann.String())
	_, errOut, err := runErr(t, dir, env, hubctlBin, args("update")...)
	if err == nil || !strings.Contains(errOut, "deploy 3 of web rolled_back") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("never-ready update: %v %q", err, errOut)
	}
	if _, n := deployed(); n != 1 {
		t.Fatalf("after the rolled back update: %d replicas", n)
	}
	// Without a hub the lock is a Lease in the release's namespace: held by a
	// deploy on another machine, update and down are refused in one line naming it
	// and change nothing; lock break removes it.
	other := deploy.LockHolder{By: "someone", Host: "elsewhere.example", PID: 4242, Number: 99, Acquired: time.Now(), Expires: time.Now().Add(deploy.LockTTL)}
	if err := kube.NewLeaseWith(c.Client, "shop").Lock(ctx, "web", other); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"update", "down"} {
		if _, errOut, err := runErr(t, dir, env, hubctlBin, args(verb)...); err == nil || !strings.Contains(errOut, "is locked by someone on elsewhere.example") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("%s while another holds the lease: %v %q", verb, err, errOut)
		}
	}
	if _, n := deployed(); n != 1 {
		t.Fatalf("after the refused update and down: %d replicas", n)
	}
	hubctl(args("lock", "break")...)
	if _, err := c.Client.CoordinationV1().Leases("shop").Get(ctx, kube.LeaseName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the lease after lock break: %v", err)
	}
	hubctl(args("down")...)
	if _, err := c.Client.CoordinationV1().Leases("shop").Get(ctx, kube.LeaseName("web"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("down left its lease: %v", err)
	}
	if _, err := c.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("down left the Deployment: %v", err)
	}
	// The three deploys are in the local history file.
	data, err := os.ReadFile(filepath.Join(state, "web.json"))
	if err != nil || strings.Count(string(data), `"kubernetes"`) != 3 || !strings.Contains(string(data), `"rolled_back"`) || !strings.Contains(string(data), digest) {
		t.Fatalf("local history: %v\n%s", err, data)
	}
}
