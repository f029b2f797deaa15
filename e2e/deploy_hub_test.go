package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy/loadtest"
)

// dockerLogin logs the docker CLI in to s as user in a config directory of its own
// (never the machine's ~/.docker), which hubctl then reads as DOCKER_CONFIG.
func dockerLogin(t *testing.T, s *server, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	if _, errOut, err := runErrStdin(t, os.Environ(), pass, "docker", "--config", dir, "login", s.Addr, "-u", user, "--password-stdin"); err != nil {
		t.Fatalf("docker login %s as %s: %v\n%s", s.Addr, user, err, errOut)
	}
	return dir
}

// TestDeployDockerHub: deploys recorded and locked in a hub with auth. alice's
// images live in her namespace; the engine pulls them with the pull token the hub
// mints for the deploy (the image is not on the engine before), her spec's secret
// comes from the hub's secret store, history is read from another "laptop" (a state
// directory that never saw the deploy), rollback re-deploys the record the hub
// keeps, and bob, without write on alice's namespace, can neither read the history
// nor deploy.
func TestDeployDockerHub(t *testing.T) {
	requireDocker(t)
	s := startAuthServer(t)
	const alicePW, bobPW = "alice-password-1", "bob-password-1"
	createUser(t, s, "alice", alicePW)
	createUser(t, s, "bob", bobPW)
	e := newDeployEnvOn(t, s, "alice", dockerLogin(t, s, "alice", alicePW))
	ver := func(v string) string { return v + "-" + e.id }

	const secret = "hub-secret-value-7f3a"
	if resp, body := apiCall(t, s, http.MethodPut, "/api/v1/namespaces/alice/secrets/WEB_TOKEN", "alice", alicePW,
		map[string]string{"value": secret}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("set secret: %s %q", resp.Status, truncate(body, 300))
	}
	writeSpec := func(v string) {
		t.Helper()
		file := e.writeSpec(v)
		data, _ := os.ReadFile(file)
		data = []byte(strings.Replace(string(data), "  replicas: 2\n", "  replicas: 2\n  secrets: [WEB_TOKEN]\n", 1))
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hubArgs := func(args []string) []string { return append(args, "--hub", s.Addr) }

	// The engine must pull v1 from the hub: drop the copy the build left.
	run(t, e.dir, nil, "docker", "rmi", e.images["v1"])
	if out := e.docker("image", "inspect", "-f", "{{.Id}}", e.digests["v1"]); out != "" {
		t.Fatalf("v1 still on the engine: %s", out)
	}

	writeSpec("v1")
	// Without --proxy-image: hubctl builds the proxy image from its own binary,
	// pushes it to the hub in alice's namespace, and the engine pulls it by digest.
	e.mustHubctl(hubArgs(append(e.args("up"), "--proxy-publish", "127.0.0.1:0"))...)
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("tasks after up = %v", got)
	}
	proxyImage := e.docker("inspect", "-f", "{{.Config.Image}}", "hubctl-proxy-"+e.service)
	e.extraImages = append(e.extraImages, proxyImage)
	if !strings.HasPrefix(proxyImage, s.Addr+"/alice/hubctl-proxy@sha256:") {
		t.Fatalf("the proxy runs %q; want the image hubctl pushed to the hub, by digest", proxyImage)
	}
	// The engine knows it by the hub's digest: it was pulled from there, not loaded.
	if rd := e.docker("image", "inspect", "-f", "{{json .RepoDigests}}", proxyImage); !strings.Contains(rd, proxyImage) {
		t.Fatalf("the proxy image's repo digests %s; want %s (pulled from the hub)", rd, proxyImage)
	}
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v1") {
		t.Fatalf("through the proxy: %q %v", body, err)
	}
	// The secret reached the tasks, from the hub; the hub record holds its name only.
	ids := strings.Fields(e.docker("ps", "-q", "--filter", "label=dev.hubctl.service="+e.service, "--filter", "label=dev.hubctl.role=task"))
	if len(ids) != 2 {
		t.Fatalf("task containers %v", ids)
	}
	if env := e.docker("inspect", "-f", "{{json .Config.Env}}", ids[0]); !strings.Contains(env, `"WEB_TOKEN=`+secret+`"`) {
		t.Fatalf("task env lacks the hub's secret: %s", env)
	}
	// The engine pulled with a token the hub minted for the deploy.
	resp, body := apiCall(t, s, http.MethodGet, "/api/v1/audit?action=token.machine", "admin", adminPassword, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "deploy") {
		t.Fatalf("no machine token minted for the deploy: %s %q", resp.Status, truncate(body, 400))
	}

	// Another laptop: a state directory that never saw the deploy reads it from the hub,
	// and the local history (--hub=) is empty there.
	other := filepath.Join(t.TempDir(), "other-laptop")
	histArgs := []string{"deploy", "history", "-o", "json", "-f", filepath.Join(e.dir, "deploy.yaml"), "--state-dir", other}
	var recs []deployRecord
	if err := json.Unmarshal([]byte(e.mustHubctl(hubArgs(histArgs)...)), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Number != 1 || recs[0].Outcome != "succeeded" || recs[0].Digests["service"] != e.digests["v1"] {
		t.Fatalf("hub history from another laptop = %+v", recs)
	}
	if out := e.mustHubctl(append(histArgs, "--hub=")...); strings.TrimSpace(out) != "[]" {
		t.Fatalf("local history of the other laptop = %s", out)
	}
	if strings.Contains(e.mustHubctl(hubArgs(histArgs)...), secret) {
		t.Fatal("the history holds the secret's value")
	}

	// bob may not write alice's namespace: no history, no deploy, nothing changed.
	bob := &deployEnv{t: t, id: e.id, service: e.service, hub: s, dir: e.dir, stateDir: e.stateDir, proxy: e.proxy,
		images: e.images, digests: e.digests, dockerConfig: dockerLogin(t, s, "bob", bobPW)}
	if out, errOut, err := bob.hubctl(hubArgs(histArgs)...); err == nil || strings.Contains(out, e.digests["v1"]) {
		t.Fatalf("bob read alice's deploy history: %v %q %q", err, out, errOut)
	}
	writeSpec("v2")
	if _, errOut, err := bob.hubctl(hubArgs(bob.deployArgs("update"))...); err == nil || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("bob deployed to alice's service: %v %q", err, errOut)
	}
	if got := e.tasks(); !slices.Equal(got, []string{"1:running:true", "1:running:true"}) {
		t.Fatalf("tasks after bob's refused update = %v", got)
	}

	// alice: v2, then rollback (to v1, whose spec the hub's record holds).
	e.mustHubctl(hubArgs(e.deployArgs("update"))...)
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v2") {
		t.Fatalf("after update: %q %v", body, err)
	}
	e.mustHubctl(hubArgs(e.deployArgs("rollback"))...)
	if body, err := loadtest.Get(http.DefaultClient, e.proxyURL()); err != nil || body != ver("v1") {
		t.Fatalf("after rollback: %q %v", body, err)
	}
	recs = nil
	if err := json.Unmarshal([]byte(e.mustHubctl(hubArgs(histArgs)...)), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Number != 3 || recs[0].RollbackOf != 1 || recs[0].Outcome != "succeeded" ||
		recs[0].Digests["service"] != e.digests["v1"] || recs[1].Digests["service"] != e.digests["v2"] {
		t.Fatalf("history after rollback = %+v", recs)
	}

	// lock break goes to the hub: nobody holds the lock now.
	if _, errOut, err := e.hubctl(hubArgs(e.args("lock", "break"))...); err == nil || !strings.Contains(errOut, "no deploy holds the lock") {
		t.Fatalf("lock break of a free lock: %v %q", err, errOut)
	}

	// down takes the hub's lock too: refused while a deploy elsewhere holds it
	// (its lock taken through the API), nothing removed; then it goes through and
	// leaves the lock free.
	lockPath := "/api/v1/deploys/alice/" + e.service + "/lock"
	if resp, body := apiCall(t, s, http.MethodPost, lockPath, "alice", alicePW, map[string]any{"host": "elsewhere.example", "pid": 4242}); resp.StatusCode != http.StatusOK {
		t.Fatalf("take the lock: %s %q", resp.Status, truncate(body, 300))
	}
	before := e.tasks()
	if _, errOut, err := e.hubctl(hubArgs(e.args("down"))...); err == nil || !strings.Contains(errOut, "is locked by alice on elsewhere.example") {
		t.Fatalf("down --hub while another holds the lock: %v %q", err, errOut)
	}
	if after := e.tasks(); !slices.Equal(before, after) {
		t.Fatalf("the refused down changed tasks: %v → %v", before, after)
	}
	if resp, _ := apiCall(t, s, http.MethodPost, lockPath+"/release", "alice", alicePW, map[string]any{"host": "elsewhere.example", "pid": 4242}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("release the lock: %s", resp.Status)
	}
	e.mustHubctl(hubArgs(e.args("down"))...)
	if left := e.docker("ps", "-aq", "--filter", "label=dev.hubctl.service="+e.service); left != "" {
		t.Fatalf("down left containers: %s", left)
	}
	if resp, _ := apiCall(t, s, http.MethodGet, lockPath, "alice", alicePW, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the lock after down: %s; want it released", resp.Status)
	}
}
