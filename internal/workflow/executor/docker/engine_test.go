package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/server/servertest"
	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// These tests drive the real Docker engine (DOCKER_HOST or the local socket). They skip
// when none answers, and fail instead when CI=true.

func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

var (
	imageOnce sync.Once
	imageRef  string
	imageErr  error
)

// newEngine returns an executor on the engine and the test image (busybox FROM
// scratch, built once).
func newEngine(t *testing.T) (*Executor, string) {
	t.Helper()
	e, err := New()
	if err != nil {
		missing(t, "docker engine client: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Ping(ctx); err != nil {
		missing(t, "no Docker engine reachable (set DOCKER_HOST or start dockerd): %v", err)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		missing(t, "busybox not found (apt-get install -y busybox-static): %v", err)
	}
	imageOnce.Do(func() { imageRef, imageErr = buildImage(e, bb) })
	if imageErr != nil {
		t.Fatalf("build test image: %v", imageErr)
	}
	return e, imageRef
}

const dockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
`

// buildImage builds hubctl-test/busybox:<hash of busybox and Dockerfile> with the
// classic builder, unless the engine has it.
func buildImage(e *Executor, busybox string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return "", errors.New(busybox + " is not an ELF binary")
	}
	sum := sha256.New()
	sum.Write(bin)
	sum.Write([]byte(dockerfile))
	ref := "hubctl-test/busybox:" + hex.EncodeToString(sum.Sum(nil))[:16]
	if _, err := e.api.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"busybox", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := e.api.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{ref}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
		Labels: map[string]string{"hubctl.test": "busybox"},
	})
	if err != nil {
		return "", err
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
			return "", err
		}
		if m.Error != "" {
			return "", errors.New(m.Error)
		}
	}
	return ref, nil
}

func randomID(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// newJob returns a job run whose everything is destroyed when the test ends.
func newJob(t *testing.T, e *Executor, image string) *executor.JobSpec {
	job := &executor.JobSpec{
		RunID: randomID(t), JobID: randomID(t), Name: t.Name(),
		Image: image, StopGrace: 2 * time.Second,
		Labels: map[string]string{"hubctl.test": "executor"},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.DestroyWorkflow(ctx, job); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return job
}

// removeCacheAtEnd removes the cache volume of key when the test ends, after the jobs
// registered later are cleaned up (cleanups run last registered first), so no container
// holds it. Not with t.Context(): it is cancelled before cleanups run. A volume the test
// never made is no error; one it cannot remove is, so a leak is seen.
func removeCacheAtEnd(t *testing.T, e *Executor, key string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// An archive helper container the job's cleanup removed may still hold the
		// volume for a moment (the engine answers 409, in use).
		for {
			_, err := e.api.VolumeRemove(ctx, cacheName(key), client.VolumeRemoveOptions{Force: true})
			if err == nil || isNotFound(err) {
				return
			}
			if !isConflict(err) || ctx.Err() != nil {
				t.Errorf("remove cache volume %s: %v", cacheName(key), err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runStep starts step and waits for it.
func runStep(t *testing.T, e *Executor, job *executor.JobSpec, step *executor.StepSpec) *executor.StepState {
	t.Helper()
	ctx := ctxT(t)
	if err := e.StartStep(ctx, job, step); err != nil {
		t.Fatalf("start step %d: %v", step.Index, err)
	}
	st, err := e.WaitStep(ctx, job, step)
	if err != nil {
		t.Fatalf("wait step %d: %v", step.Index, err)
	}
	if st.Running {
		t.Fatalf("step %d still running after WaitStep", step.Index)
	}
	return st
}

func logsOf(t *testing.T, e *Executor, job *executor.JobSpec, step *executor.StepSpec, offset int64) string {
	t.Helper()
	r, err := e.TailStep(ctxT(t), job, step, offset)
	if err != nil {
		t.Fatalf("tail step %d: %v", step.Index, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read log of step %d: %v", step.Index, err)
	}
	return string(b)
}

func TestStepsShareWorkspaceEnvSecretsOutputs(t *testing.T) {
	e, img := newEngine(t)
	// The cache outlives the job: removed after the job's cleanup (cleanups run last
	// registered first), once no container uses it.
	cacheKey := "test-" + randomID(t)
	removeCacheAtEnd(t, e, cacheKey)
	job := newJob(t, e, img)
	job.Env = []executor.EnvVar{{Name: "A", Value: "job"}, {Name: "B", Value: "job"}}
	job.Secrets = map[string]string{"TOKEN": "s3cr3t-value", "OTHER": "not-for-you"}
	job.CacheKey, job.CachePath = cacheKey, "/cache"
	job.Namespace, job.Workflow = "acme", "ci"
	job.Resources = executor.Resources{MilliCPU: 500, Memory: 64 << 20}
	ctx := ctxT(t)
	if err := e.SetupWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := e.SetupWorkflow(ctx, job); err != nil { // after a restart: finds what exists
		t.Fatalf("second SetupWorkflow: %v", err)
	}

	write := &executor.StepSpec{Index: 0, Name: "write",
		Env:     []executor.EnvVar{{Name: "B", Value: "step"}},
		Secrets: []string{"TOKEN"},
		Run: `test "$(pwd)" = /workspace
echo hello > shared.txt
echo cached > /cache/c
echo "ab=$A-$B" >> "$HUBCTL_OUTPUT"
test "$TOKEN" = s3cr3t-value
test -z "$OTHER"
echo "token-len=${#TOKEN}" >> "$HUBCTL_OUTPUT"`}
	st := runStep(t, e, job, write)
	if st.ExitCode != 0 || st.Error != "" {
		t.Fatalf("step 0: exit %d, error %q, log:\n%s", st.ExitCode, st.Error, logsOf(t, e, job, write, 0))
	}
	if got, want := string(st.Output), "ab=job-step\ntoken-len=12\n"; got != want {
		t.Errorf("step 0 output = %q, want %q", got, want)
	}
	// The engine stamps StartedAt when runc reports the start, FinishedAt when the
	// exit is reaped; a step that exits at once can be reaped a few milliseconds
	// "before" it was reported started (seen: 3 ms), so only order beyond that is wrong.
	if st.StartedAt.IsZero() || st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt.Add(-time.Second)) {
		t.Errorf("step 0 times: started %v, finished %v", st.StartedAt, st.FinishedAt)
	}

	read := &executor.StepSpec{Index: 1, Name: "read", Workdir: "sub",
		Run: `test "$(pwd)" = /workspace/sub
echo "seen=$(cat ../shared.txt) $(cat /cache/c)" >> "$HUBCTL_OUTPUT"`}
	// The workdir does not exist yet: the engine makes it.
	st = runStep(t, e, job, read)
	if st.ExitCode != 0 {
		t.Fatalf("step 1: exit %d, log:\n%s", st.ExitCode, logsOf(t, e, job, read, 0))
	}
	if got, want := string(st.Output), "seen=hello cached\n"; got != want {
		t.Errorf("step 1 output = %q, want %q", got, want)
	}

	fail := &executor.StepSpec{Index: 2, Name: "fail", Run: "echo about to fail >&2\nfalse\necho not reached"}
	st = runStep(t, e, job, fail)
	if st.ExitCode != 1 {
		t.Errorf("failing step: exit %d, want 1", st.ExitCode)
	}
	if log := logsOf(t, e, job, fail, 0); log != "about to fail\n" {
		t.Errorf("failing step log = %q", log)
	}
	code := &executor.StepSpec{Index: 3, Name: "args", Args: []string{"/bin/sh", "-c", "exit 7"}}
	if st = runStep(t, e, job, code); st.ExitCode != 7 || len(st.Output) != 0 {
		t.Errorf("entrypoint step: exit %d output %q, want 7 and none", st.ExitCode, st.Output)
	}

	// Secrets travel as environment only: no label carries a value.
	c, err := e.findStep(ctx, job, 0)
	if err != nil || c == nil {
		t.Fatalf("find step 0: %v", err)
	}
	ins, err := e.api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lbl := ins.Container.Config.Labels
	if lbl[LabelJob] != job.JobID || lbl[LabelRun] != job.RunID || lbl[LabelStep] != "0" ||
		lbl[LabelNamespace] != "acme" || lbl[LabelWorkflow] != "ci" || lbl["hubctl.test"] != "executor" {
		t.Errorf("step labels = %v", lbl)
	}
	for k, v := range ins.Container.Config.Labels {
		if strings.Contains(v, "s3cr3t") || strings.Contains(k, "s3cr3t") {
			t.Errorf("label %s=%s holds a secret", k, v)
		}
	}
	if hc := ins.Container.HostConfig; hc.NanoCPUs != 500_000_000 || hc.Memory != 64<<20 {
		t.Errorf("resources: NanoCPUs %d Memory %d", hc.NanoCPUs, hc.Memory)
	}
	for _, m := range ins.Container.Mounts {
		if strings.Contains(m.Source, "docker.sock") || m.Type == "bind" {
			t.Errorf("step has a bind mount: %+v", m)
		}
	}
}

func TestServiceReachableByName(t *testing.T) {
	e, img := newEngine(t)
	job := newJob(t, e, img)
	job.Services = []executor.Service{{Name: "web", Image: img,
		Env:  []executor.EnvVar{{Name: "GREETING", Value: "hi-from-web"}},
		Args: []string{"/bin/sh", "-c", `mkdir -p /www && echo "$GREETING" > /www/index.html && exec httpd -f -p 8080 -h /www`}}}
	if err := e.SetupWorkflow(ctxT(t), job); err != nil {
		t.Fatal(err)
	}
	step := &executor.StepSpec{Index: 0, Run: `for i in $(seq 1 100); do wget -q -O got http://web:8080/ && break; sleep 0.1; done
grep -q hi-from-web got`}
	if err := e.SetupWorkflow(ctxT(t), job); err != nil { // again, as after a restart
		t.Fatalf("second SetupWorkflow with a running service: %v", err)
	}
	if st := runStep(t, e, job, step); st.ExitCode != 0 {
		t.Fatalf("step could not reach the service: exit %d, log:\n%s", st.ExitCode, logsOf(t, e, job, step, 0))
	}
	// Find reports steps only, not services.
	found, err := e.Find(ctxT(t), job)
	if err != nil || len(found) != 1 || found[0] == nil {
		t.Fatalf("Find = %v, %v; want step 0 only", found, err)
	}
}

func TestTailFromOffset(t *testing.T) {
	e, img := newEngine(t)
	job := newJob(t, e, img)
	step := &executor.StepSpec{Index: 0, Run: "echo one; sleep 1; echo two; echo three"}
	ctx := ctxT(t)
	if err := e.StartStep(ctx, job, step); err != nil {
		t.Fatal(err)
	}
	// Following while the step runs ends when the step ends.
	if got := logsOf(t, e, job, step, 0); got != "one\ntwo\nthree\n" {
		t.Errorf("log from 0 = %q", got)
	}
	if got := logsOf(t, e, job, step, 4); got != "two\nthree\n" {
		t.Errorf("log from 4 = %q", got)
	}
	if got := logsOf(t, e, job, step, 6); got != "o\nthree\n" {
		t.Errorf("log from 6 = %q", got)
	}
	if got := logsOf(t, e, job, step, 100); got != "" {
		t.Errorf("log from past the end = %q", got)
	}
	if _, err := e.TailStep(ctx, job, step, -1); err == nil {
		t.Error("negative offset accepted")
	}
	if _, err := e.TailStep(ctx, job, &executor.StepSpec{Index: 9}, 0); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("tail of a step that never started: %v, want ErrNotFound", err)
	}
}

func TestStartTwiceAndFindAfterRestart(t *testing.T) {
	e, img := newEngine(t)
	job := newJob(t, e, img)
	step := &executor.StepSpec{Index: 0, Run: `echo started >> /workspace/starts; echo "n=$(wc -l < /workspace/starts)" >> "$HUBCTL_OUTPUT"; sleep 1`}
	ctx := ctxT(t)
	// Two engines racing (or one retrying after a crash) start one container.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.StartStep(ctx, job, step) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("StartStep: %v", err)
		}
	}
	if err := e.StartStep(ctx, job, step); err != nil {
		t.Fatalf("StartStep again: %v", err)
	}
	list, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: jobFilter(job)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("%d containers for one step, want 1", len(list.Items))
	}

	// A new executor value (the engine restarted) finds the step and waits for it.
	e2, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	found, err := e2.Find(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0] == nil || !found[0].Running {
		t.Fatalf("Find after restart = %+v, want step 0 running", found)
	}
	st, err := e2.WaitStep(ctx, job, step)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 0 || string(st.Output) != "n=1\n" {
		t.Errorf("after restart: exit %d output %q, want 0 and n=1 (one start)", st.ExitCode, st.Output)
	}
	found, err = e2.Find(ctx, job)
	if err != nil || found[0] == nil || found[0].Running || string(found[0].Output) != "n=1\n" {
		t.Errorf("Find after the end = %+v, %v", found[0], err)
	}
	// Starting an ended step again is still "found": only the engine restarts a step.
	if err := e2.StartStep(ctx, job, step); err != nil {
		t.Fatal(err)
	}
	if st, err := e2.WaitStep(ctx, job, step); err != nil || string(st.Output) != "n=1\n" {
		t.Errorf("ended step started again: %+v, %v", st, err)
	}
}

func TestCancelWithinGrace(t *testing.T) {
	e, img := newEngine(t)
	job := newJob(t, e, img)
	step := &executor.StepSpec{Index: 0, Run: "sleep 600"}
	ctx := ctxT(t)
	if err := e.StartStep(ctx, job, step); err != nil {
		t.Fatal(err)
	}
	waited := make(chan *executor.StepState, 1)
	go func() {
		st, err := e.WaitStep(ctx, job, step)
		if err != nil {
			t.Errorf("WaitStep: %v", err)
		}
		waited <- st
	}()
	start := time.Now()
	if err := e.DestroyStep(ctx, job, step); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > job.StopGrace+3*time.Second {
		t.Errorf("DestroyStep took %v, grace is %v", d, job.StopGrace)
	}
	select {
	case st := <-waited:
		if st != nil && !st.Running && st.ExitCode == 0 {
			t.Errorf("a cancelled step reported success: %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Error("WaitStep did not return after DestroyStep")
	}
	found, err := e.Find(ctx, job)
	if err != nil || len(found) != 0 {
		t.Errorf("Find after DestroyStep = %v, %v; want nothing", found, err)
	}
	if err := e.DestroyStep(ctx, job, step); err != nil {
		t.Errorf("destroying a destroyed step: %v", err)
	}
}

func TestDestroyWorkflowLeavesNothing(t *testing.T) {
	e, img := newEngine(t)
	job := newJob(t, e, img)
	job.Services = []executor.Service{{Name: "idle", Image: img, Args: []string{"sleep", "600"}}}
	ctx := ctxT(t)
	if err := e.SetupWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	runStep(t, e, job, &executor.StepSpec{Index: 0, Run: "true"})
	if err := e.StartStep(ctx, job, &executor.StepSpec{Index: 1, Run: "sleep 600"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.DestroyWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*job.StopGrace+5*time.Second {
		t.Errorf("DestroyWorkflow took %v", d)
	}
	assertNothingLeft(t, e, job)
	if err := e.DestroyWorkflow(ctx, job); err != nil {
		t.Errorf("second DestroyWorkflow: %v", err)
	}
}

func assertNothingLeft(t *testing.T, e *Executor, job *executor.JobSpec) {
	t.Helper()
	ctx := ctxT(t)
	cs, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: jobFilter(job)})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := e.api.VolumeList(ctx, client.VolumeListOptions{Filters: jobFilter(job)})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: jobFilter(job)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items)+len(vs.Items)+len(ns.Items) != 0 {
		t.Errorf("left behind: %d containers, %d volumes, %d networks", len(cs.Items), len(vs.Items), len(ns.Items))
	}
}

// A container that is not the executor's, squatting a step's name, is neither reused
// nor removed.
func TestForeignContainerUntouched(t *testing.T) {
	e, img := newEngine(t)
	job := newJob(t, e, img)
	ctx := ctxT(t)
	res, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   stepName(job, 0),
		Config: &container.Config{Image: img, Cmd: []string{"true"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.api.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
	})
	err = e.StartStep(ctx, job, &executor.StepSpec{Index: 0, Run: "true"})
	if err == nil || !strings.Contains(err.Error(), "not this job's") {
		t.Fatalf("StartStep over a foreign container: %v", err)
	}
	if err := e.DestroyWorkflow(ctx, job); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("the foreign container was removed: %v", err)
	}
}

// A step's image the engine lacks is pulled from the hub (`hubctl serve`, token auth,
// on 127.0.0.1, which the engine treats as insecure) with the job's credentials; wrong
// credentials fail the start with the registry's refusal.
func TestPullFromHubWithJobCredentials(t *testing.T) {
	e, img := newEngine(t)
	const password = "executor-test-admin"
	hub := servertest.Start(t, "token", password)
	ctx := ctxT(t)
	remote := hub + "/wf/busybox:" + randomID(t)
	if _, err := e.api.ImageTag(ctx, client.ImageTagOptions{Source: img, Target: remote}); err != nil {
		t.Fatal(err)
	}
	untag := func() {
		_, _ = e.api.ImageRemove(context.Background(), remote, client.ImageRemoveOptions{})
	}
	t.Cleanup(untag)
	auth, err := registryAuth(remote, &executor.RegistryAuth{Registry: hub, Username: "admin", Password: password})
	if err != nil || auth == "" {
		t.Fatalf("registryAuth: %q, %v", auth, err)
	}
	push, err := e.api.ImagePush(ctx, remote, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := push.Wait(ctx); err != nil {
		t.Fatalf("push to the hub: %v", err)
	}
	untag() // the engine lacks it now: StartStep must pull it

	bad := newJob(t, e, remote)
	bad.Registry = &executor.RegistryAuth{Registry: hub, Username: "admin", Password: "wrong"}
	if err := e.StartStep(ctx, bad, &executor.StepSpec{Index: 0, Run: "true"}); err == nil {
		t.Fatal("pulled with a wrong password")
	} else if !strings.Contains(err.Error(), "pull") {
		t.Errorf("wrong password: %v", err)
	} else {
		t.Logf("wrong password: %v", err)
	}

	job := newJob(t, e, remote)
	job.Registry = &executor.RegistryAuth{Registry: hub, Username: "admin", Password: password}
	if st := runStep(t, e, job, &executor.StepSpec{Index: 0, Run: "echo pulled >> $HUBCTL_OUTPUT"}); st.ExitCode != 0 || string(st.Output) != "pulled\n" {
		t.Errorf("step of a pulled image: exit %d output %q", st.ExitCode, st.Output)
	}

	// With a registry token (the hub's job token is one): the daemon sends it as it is.
	untag()
	badToken := newJob(t, e, remote)
	badToken.Registry = &executor.RegistryAuth{Registry: hub, Token: "not.a.token"}
	if err := e.StartStep(ctx, badToken, &executor.StepSpec{Index: 0, Run: "true"}); err == nil {
		t.Fatal("pulled with a bad token")
	}
	withToken := newJob(t, e, remote)
	withToken.Registry = &executor.RegistryAuth{Registry: hub, Token: hubToken(t, hub, "admin", password, "repository:wf/busybox:pull")}
	if st := runStep(t, e, withToken, &executor.StepSpec{Index: 0, Run: "echo pulled >> $HUBCTL_OUTPUT"}); st.ExitCode != 0 || string(st.Output) != "pulled\n" {
		t.Errorf("step of an image pulled with a registry token: exit %d output %q error %q", st.ExitCode, st.Output, st.Error)
	}
}

// hubToken gets a registry token for scope from the hub's token service, as a client
// does after the registry's challenge.
func hubToken(t *testing.T, hub, user, password, scope string) string {
	t.Helper()
	resp, err := http.Get("http://" + hub + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer "), ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = strings.Trim(v, `"`)
	}
	if params["realm"] == "" {
		t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest(http.MethodGet, params["realm"]+"?"+url.Values{"service": {params["service"]}, "scope": {scope}}.Encode(), nil)
	req.SetBasicAuth(user, password)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return body.Token
}

func TestStepTimeoutAndOOM(t *testing.T) {
	e, img := newEngine(t)
	job := newJob(t, e, img)
	job.StopGrace = time.Second
	step := &executor.StepSpec{Index: 0, Run: "echo started; sleep 600", Timeout: 1500 * time.Millisecond}
	start := time.Now()
	st := runStep(t, e, job, step)
	// The step sleeps 600 s: ending well before that proves the timeout stopped it.
	// The bound is not a speed claim (a loaded CI machine took 8.9 s).
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("a 1.5 s timeout took %v: the step was not stopped", d)
	}
	if !st.TimedOut || !strings.Contains(st.Error, "timed out after 1.5s") || st.ExitCode == 0 {
		t.Errorf("timed-out step: %+v", st)
	}

	oom := newJob(t, e, img)
	oom.Resources.Memory = 16 << 20
	// dd holds its whole block in memory: 64 MiB cannot fit under a 16 MiB limit.
	st = runStep(t, e, oom, &executor.StepSpec{Index: 0, Run: "dd if=/dev/zero of=/dev/null bs=64M count=1"})
	if !st.OOMKilled || st.ExitCode == 0 {
		t.Errorf("a step over its memory limit: %+v", st)
	}
}

// TestHostNetwork: with WithHostNetwork a step is in the host's network namespace (it
// sees the host's interfaces, not one bridge address), and a job with services is
// refused.
func TestHostNetwork(t *testing.T) {
	e, img := newEngine(t)
	x, err := New(WithClient(e.api), WithHostNetwork())
	if err != nil {
		t.Fatal(err)
	}
	job := newJob(t, x, img)
	if err := x.SetupWorkflow(ctxT(t), job); err != nil {
		t.Fatal(err)
	}
	step := &executor.StepSpec{Index: 0, Run: `hostname > "$HUBCTL_OUTPUT"`}
	host, _ := os.Hostname()
	if st := runStep(t, x, job, step); st.ExitCode != 0 || strings.TrimSpace(string(st.Output)) != host {
		t.Fatalf("step on the host network: exit %d output %q, want the host's name %q", st.ExitCode, st.Output, host)
	}
	svc := newJob(t, x, img)
	svc.Services = []executor.Service{{Name: "web", Image: img}}
	if err := x.SetupWorkflow(ctxT(t), svc); err == nil || !strings.Contains(err.Error(), "services") {
		t.Fatalf("a job with services on the host network: %v", err)
	}
}

// TestIdentityIsTheEngineID: the executor's identity is the engine's ID, the same
// through two clients of one engine.
func TestIdentityIsTheEngineID(t *testing.T) {
	e, _ := newEngine(t)
	id, err := e.Identity(ctxT(t))
	if err != nil || id == "" {
		t.Fatalf("identity %q, %v", id, err)
	}
	x, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if id2, err := x.Identity(ctxT(t)); err != nil || id2 != id {
		t.Fatalf("second client: %q, %v; want %q", id2, err, id)
	}
	out, err := exec.Command("docker", "info", "--format", "{{.ID}}").Output()
	if err == nil && strings.TrimSpace(string(out)) != id {
		t.Fatalf("docker info says %q, the executor %q", strings.TrimSpace(string(out)), id)
	}
}
