package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/hubctl/hubctl/internal/kubetest"
)

// TestWorkflowKubeReattachAfterKill9 is issue 19's Kubernetes test: a real `hubctl
// serve` runs workflows with `workflows.executor: kubernetes` against the real
// control plane of internal/kubetest (kwok as the kubelet). A run's two jobs become
// Jobs, are scheduled and complete; the first job's pod is held running (kwok's hold
// stage, kubetest.HoldEnv) while the test kill -9s the hub, restarts it on the same
// data, waits for the new hub to re-attach (a new lease under the same owner), kill -9s it again, lets the pod complete
// while no hub runs, and starts the hub a third time. The run succeeds, every step
// was started exactly once, and exactly one Kubernetes Job ever existed per job run
// (a watch on the namespace records every Job made). kwok runs no container, so no
// log is checked here: log following is tested on client-go's fake clientset
// (internal/workflow/executor/kube).
func TestWorkflowKubeReattachAfterKill9(t *testing.T) {
	c := kubetest.Start(t)
	const kns = "hubctl-wfk"
	c.Namespace(t, kns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	jobs := watchJobs(ctx, t, c, kns)

	env := []string{"HUBCTL_WORKFLOWS_EXECUTOR=kubernetes", "HUBCTL_WORKFLOWS_INTERVAL=200ms",
		"HUBCTL_WORKFLOWS_KUBE_NAMESPACE=" + kns, "HUBCTL_WORKFLOWS_KUBE_KUBECONFIG=" + c.Kubeconfig}
	s := startServerEnv(t, t.TempDir(), env)
	cli := loginCLI(t, s)
	cli.run("org", "create", "wfkube")

	// The job's image, in a private repository of the hub: what the kubelet pulls
	// with the job's pull Secret (kwok pulls nothing, so the test pulls with it).
	img := newImage(t, "amd64")
	pushImageAs(t, s, mustToken(t, s, "admin", adminPassword, "repository:wfkube/tools:pull,push"), "wfkube/tools", "1", img)
	if got := actionsFor(t, mustToken(t, s, "", "", "repository:wfkube/tools:pull"), "wfkube/tools"); len(got) != 0 {
		t.Fatalf("anonymous may %v wfkube/tools: the test needs a private repository", got)
	}

	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "kube-kill9-" + hex.EncodeToString(b)
	// The images are never pulled: kwok runs no container.
	src := fmt.Sprintf(`name: %s
on: manual
permissions:
  pull: [wfkube/tools]
jobs:
  build:
    image: %s/wfkube/tools:1
    env:
      %s: "1"
    steps:
      - name: compile
        run: echo compile
      - name: test
        run: echo test
  publish:
    needs: build
    image: %s/wfkube/tools:1
    steps:
      - run: echo publish
`, name, s.Addr, kubetest.HoldEnv, s.Addr)
	file := filepath.Join(t.TempDir(), "kube.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.run("workflow", "apply", file, "--namespace", "wfkube")
	runID, err := strconv.ParseInt(strings.TrimSpace(cli.run("workflow", "run", "wfkube/"+name)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var buildID int64
	var owner string
	db := openDB(t, s.DataDir)
	if err := db.QueryRow(`SELECT id FROM workflow_jobs WHERE run_id = ? AND job_name = 'build'`, runID).Scan(&buildID); err != nil {
		t.Fatal(err)
	}
	sel := fmt.Sprintf("hubctl.job=%d", buildID)

	// The first step runs (its pod's first init container, held by kwok): kill -9.
	waitKill(t, s, "the first step running in its pod", 3*time.Minute, func() bool {
		return jobStepState(t, s.DataDir, buildID, 0) == "running" && podStepRunning(ctx, t, c, kns, sel, "step-0")
	})
	uid := jobUID(ctx, t, c, kns, buildID)
	user, pass := pullCredentials(ctx, t, c, kns, buildID, s.Addr)
	pullWith(t, s, user, pass, img)
	s.Kill()
	// The lease the killed hub held: a later one is the restarted hub's.
	var leaseUntil int64
	if err := db.QueryRow(`SELECT owner, lease_until FROM workflow_jobs WHERE id = ?`, buildID).Scan(&owner, &leaseUntil); err != nil {
		t.Fatal(err)
	}
	s = startServerEnv(t, s.DataDir, env)

	// The restarted hub (same data directory, so the same engine id and owner,
	// internal/server/workflow_instance.go) takes the job back at once, without
	// waiting for the killed one's lease, and re-attaches to the Job: it holds a new
	// lease under the same owner, and the step still runs.
	waitKill(t, s, "the restarted hub to re-attach", 3*time.Minute, func() bool {
		var now string
		var until int64
		if err := openDB(t, s.DataDir).QueryRow(`SELECT owner, lease_until FROM workflow_jobs WHERE id = ?`, buildID).Scan(&now, &until); err != nil {
			t.Fatal(err)
		}
		if now != owner {
			t.Fatalf("the restarted hub claimed the job as %q, the killed one as %q: not the same engine", now, owner)
		}
		return until > leaseUntil
	})
	if got := jobUID(ctx, t, c, kns, buildID); got != uid {
		t.Fatalf("the Job was made again after the restart: uid %s, was %s", got, uid)
	}
	if st := jobStepState(t, s.DataDir, buildID, 0); st != "running" {
		t.Fatalf("step 1 after re-attach: %s", st)
	}
	s.Kill()

	// While no hub runs, the pod runs to its end.
	if n, err := c.Release(ctx, kns, sel); err != nil || n != 1 {
		t.Fatalf("release the held pod: %d pods, %v", n, err)
	}
	for {
		j, err := c.Client.BatchV1().Jobs(kns).Get(ctx, "hubctl-"+strconv.FormatInt(buildID, 10), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Status.Succeeded == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the released Job never completed: %+v", j.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s = startServerEnv(t, s.DataDir, env)

	waitKill(t, s, "the run finished", 4*time.Minute, func() bool {
		var state string
		if err := openDB(t, s.DataDir).QueryRow(`SELECT state FROM workflow_runs WHERE id = ?`, runID).Scan(&state); err != nil {
			t.Fatal(err)
		}
		return state != "queued" && state != "running"
	})
	db = openDB(t, s.DataDir)
	var state string
	if err := db.QueryRow(`SELECT state FROM workflow_runs WHERE id = ?`, runID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != "succeeded" {
		rows, _ := db.Query(`SELECT job_name, state, error FROM workflow_jobs WHERE run_id = ?`, runID)
		for rows != nil && rows.Next() {
			var n, st, e string
			_ = rows.Scan(&n, &st, &e)
			t.Logf("job %s: %s %s", n, st, e)
		}
		s.dumpLog(80)
		t.Fatalf("run %s", state)
	}
	rows, err := db.Query(`SELECT j.id, j.job_name, s.idx, s.starts, s.state FROM workflow_steps s JOIN workflow_jobs j ON j.id = s.job_id
		WHERE j.run_id = ? ORDER BY j.id, s.idx`, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var jobIDs []int64
	steps := 0
	for rows.Next() {
		var id int64
		var job, st string
		var idx, starts int
		if err := rows.Scan(&id, &job, &idx, &starts, &st); err != nil {
			t.Fatal(err)
		}
		steps++
		if starts != 1 || st != "succeeded" {
			t.Errorf("job %s step %d: started %d times, %s", job, idx+1, starts, st)
		}
		if len(jobIDs) == 0 || jobIDs[len(jobIDs)-1] != id {
			jobIDs = append(jobIDs, id)
		}
	}
	if steps != 3 || len(jobIDs) != 2 {
		t.Fatalf("%d steps in %d jobs, want 3 in 2", steps, len(jobIDs))
	}
	// The run has ended: its job token no longer pulls.
	if resp, body := getToken(t, s, user, pass, "repository:wfkube/tools:pull"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the pull credentials of a finished run: %s %s", resp.Status, truncate(body, 300))
	}
	// Every job run had its one Job, and the finished run's Jobs are deleted.
	for _, id := range jobIDs {
		if uids := jobs.made(id); len(uids) != 1 {
			t.Errorf("job run %d: %d Kubernetes Jobs made (%v), want exactly 1", id, len(uids), uids)
		}
	}
	for {
		l, err := c.Client.BatchV1().Jobs(kns).List(ctx, metav1.ListOptions{LabelSelector: "hubctl.run=" + strconv.FormatInt(runID, 10)})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the run's Jobs are still there: %s", l.Items[0].Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jobWatch records every Job made in a namespace, by job run id (label hubctl.job).
type jobWatch struct {
	mu   sync.Mutex
	uids map[string]map[types.UID]bool
}

func (w *jobWatch) made(jobID int64) []types.UID {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []types.UID
	for u := range w.uids[strconv.FormatInt(jobID, 10)] {
		out = append(out, u)
	}
	return out
}

// watchJobs watches the namespace's Jobs until ctx ends, from before the first is
// made, resuming from the last resource version when the API server ends a watch.
func watchJobs(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns string) *jobWatch {
	t.Helper()
	w := &jobWatch{uids: map[string]map[types.UID]bool{}}
	l, err := c.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Fatalf("namespace %s has Jobs before the test", ns)
	}
	rv := l.ResourceVersion
	record := func(j *batchv1.Job) {
		id := j.Labels["hubctl.job"]
		w.mu.Lock()
		if w.uids[id] == nil {
			w.uids[id] = map[types.UID]bool{}
		}
		w.uids[id][j.UID] = true
		w.mu.Unlock()
	}
	go func() {
		for ctx.Err() == nil {
			wi, err := c.Client.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			for ev := range wi.ResultChan() {
				j, ok := ev.Object.(*batchv1.Job)
				if ev.Type == watch.Error || !ok {
					// Most likely 410 Gone (the version was compacted): list again,
					// recording what exists, and watch from there.
					if l, err := c.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{}); err == nil {
						for i := range l.Items {
							record(&l.Items[i])
						}
						rv = l.ResourceVersion
					}
					break
				}
				rv = j.ResourceVersion
				if ev.Type != watch.Bookmark {
					record(j)
				}
			}
			wi.Stop()
		}
	}()
	return w
}

// jobUID is the uid of job run id's Job.
func jobUID(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns string, id int64) types.UID {
	t.Helper()
	j, err := c.Client.BatchV1().Jobs(ns).Get(ctx, "hubctl-"+strconv.FormatInt(id, 10), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return j.UID
}

// podStepRunning says whether a pod that selector matches runs its container name.
func podStepRunning(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns, selector, name string) bool {
	t.Helper()
	l, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Items {
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			if cs.Name == name && cs.State.Running != nil {
				return true
			}
		}
	}
	return false
}

// pullCredentials reads the user and password for hub that the job run's pull Secret
// (kubernetes.io/dockerconfigjson, named in its pod's imagePullSecrets) gives the
// kubelet.
func pullCredentials(ctx context.Context, t *testing.T, c *kubetest.Cluster, ns string, jobID int64, hub string) (string, string) {
	t.Helper()
	name := "hubctl-" + strconv.FormatInt(jobID, 10)
	j, err := c.Client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ps := j.Spec.Template.Spec.ImagePullSecrets; len(ps) != 1 || ps[0].Name != name+"-pull" {
		t.Fatalf("imagePullSecrets %v", ps)
	}
	sec, err := c.Client.CoreV1().Secrets(ns).Get(ctx, name+"-pull", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("pull secret type %s", sec.Type)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(sec.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(cfg.Auths[hub].Auth)
	if err != nil || len(cfg.Auths) != 1 {
		t.Fatalf("pull secret auths for %s: %v %v", hub, cfg.Auths, err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user != "hubctl-job" || pass == "" {
		t.Fatalf("pull secret user %q", user)
	}
	return user, pass
}

// pullWith signs in at /token as a kubelet's runtime does with the pull Secret's user
// and password (HTTP Basic on GET, and containerd's OAuth2 password grant on POST),
// pulls img's manifest from the private repository with the answer, and checks that
// the same password is nobody else's and grants nothing beyond the job's access.
func pullWith(t *testing.T, s *server, user, pass string, img image) {
	t.Helper()
	tok := mustToken(t, s, user, pass, "repository:wfkube/tools:pull")
	resp, body := do(t, http.MethodGet, s.URL("/v2/wfkube/tools/manifests/1"), nil,
		map[string]string{"Authorization": "Bearer " + tok, "Accept": mtOCIManifest})
	if resp.StatusCode != http.StatusOK || sha256Digest(body) != img.ManifestDigest {
		t.Fatalf("pull with the job's pull Secret: %s %q", resp.Status, truncate(body, 300))
	}
	resp, body = postToken(t, s, url.Values{"grant_type": {"password"}, "service": {"hubctl"}, "username": {user},
		"password": {pass}, "scope": {"repository:wfkube/tools:pull"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /token with the pull Secret: %s %q", resp.Status, truncate(body, 300))
	}
	if resp, _ := getToken(t, s, "admin", pass, "repository:wfkube/tools:pull"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the job token as admin's password: %s", resp.Status)
	}
	if got := actionsFor(t, mustToken(t, s, user, pass, "repository:wfkube/tools:pull,push,delete"), "wfkube/tools"); strings.Join(got, ",") != "pull" {
		t.Fatalf("the job token granted %v on wfkube/tools, want pull only", got)
	}
}

// jobStepState is the state of step idx of job run id (the run has two jobs, which
// stepState cannot tell apart).
func jobStepState(t *testing.T, dataDir string, jobID int64, idx int) string {
	t.Helper()
	var st string
	err := openDB(t, dataDir).QueryRow(`SELECT state FROM workflow_steps WHERE job_id = ? AND idx = ?`, jobID, idx).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "" // not made yet
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}
