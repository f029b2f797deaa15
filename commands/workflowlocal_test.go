package commands

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const localWorkflow = `name: local-demo
on:
  manual:
    inputs:
      version: {type: string, required: true}
  push:
    repositories: [team/app]
jobs:
  build:
    image: alpine
    outputs: [version, tag]
    env:
      VERSION: "${{ inputs.version }}"
    steps:
      - run: |
          echo "building $VERSION for [$HUBCTL_TAG]"
          echo "the key is $API_KEY"
          echo "version=$VERSION" >> "$HUBCTL_OUTPUT"
          echo "tag=$HUBCTL_TAG" >> "$HUBCTL_OUTPUT"
        secrets: [API_KEY]
  check:
    needs: build
    image: alpine
    env:
      BUILT: "${{ needs.build.outputs.version }}"
    steps:
      - run: test -n "$BUILT" && echo checked
`

// TestWorkflowRunLocal: `workflow run --local FILE --executor local` runs the file
// here with no hub: the logs on stderr (the secret, read from the environment variable
// --secret names, masked), the outputs on stdout, exit 0; as a push with --event push;
// a failing step fails the command with the job's reason.
func TestWorkflowRunLocal(t *testing.T) {
	file := writeFile(t, "wf.yaml", localWorkflow)
	env := map[string]string{"API_KEY": "s3cr3t-value"}
	code, out, errOut := run(t, env, "workflow", "run", "--local", file, "--executor", "local", "--input", "version=1.2.3", "--secret", "API_KEY")
	if code != 0 || out != "build.tag=\nbuild.version=1.2.3\n" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"==> build <==\nbuilding 1.2.3 for []\nthe key is ***\n", "==> check <==\nchecked\n", "Run succeeded.\n"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out+errOut, "s3cr3t-value") {
		t.Errorf("the secret's value was printed:\n%s%s", out, errOut)
	}

	code, out, errOut = run(t, env, "workflow", "run", "--local", file, "--executor", "local", "--secret", "API_KEY",
		"--event", "push", "--repo", "team/app", "--tag", "v7", "-o", "json")
	var res localRun
	if err := json.Unmarshal([]byte(out), &res); err != nil || code == 0 || res.State != "failed" {
		// inputs.version is empty in a push run: check fails.
		t.Fatalf("push run: exit %d, %+v %v, stderr:\n%s", code, res, err, errOut)
	}
	if len(res.Jobs) != 2 || res.Jobs[0].Outputs["tag"] != "v7" || res.Jobs[1].State != "failed" ||
		!strings.Contains(errOut, "job check: failed: step 1 exited with code 1") {
		t.Fatalf("push run: %+v, stderr:\n%s", res, errOut)
	}
}

// TestWorkflowRunLocalRefuses: bad combinations and inputs are refused with one line
// before anything runs.
func TestWorkflowRunLocalRefuses(t *testing.T) {
	file := writeFile(t, "wf.yaml", localWorkflow)
	manualOnly := writeFile(t, "push.yaml", strings.Replace(localWorkflow, "  push:\n    repositories: [team/app]\n", "", 1))
	noManual := writeFile(t, "nomanual.yaml", `name: x
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    steps: [{run: "true"}]
`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--secret", "API_KEY", "acme/x"}, "--secret needs --local"},
		{[]string{"--local", file, "--executor", "podman"}, `invalid --executor "podman"`},
		{[]string{"--local", file, "--executor", "local", "--secret", "API_KEY"}, "the environment variable API_KEY is not set"},
		{[]string{"--local", file, "--executor", "local", "--secret", "A=b"}, `invalid --secret "A=b"`},
		{[]string{"--local", file, "--event", "tag"}, `invalid --event "tag"`},
		{[]string{"--local", file, "--event", "push"}, "--event push needs --repo"},
		{[]string{"--local", file, "--tag", "v1"}, "--repo, --tag and --digest are for --event push"},
		{[]string{"--local", manualOnly, "--executor", "local", "--event", "push", "--repo", "team/app"}, "its push trigger does not match"},
		{[]string{"--local", noManual, "--executor", "local"}, "has no manual trigger"},
		{[]string{"--local", file, "--executor", "local", "--input", "nope=1"}, "nope"},
		{[]string{"--local", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
	} {
		code, out, errOut := run(t, map[string]string{}, append([]string{"workflow", "run"}, c.args...)...)
		if code == 0 || out != "" || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 2 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", c.args, code, out, errOut, c.want)
		}
	}
}

// TestWorkflowRunLocalDocker: the default executor runs the steps as containers of
// the Docker engine; a step past its timeout: fails the command as timed_out, with
// the log line saying so.
func TestWorkflowRunLocalDocker(t *testing.T) {
	img := localTestImage(t)
	file := writeFile(t, "wf.yaml", `name: docker-demo
on: manual
jobs:
  build:
    image: `+img+`
    outputs: [kernel]
    steps:
      - run: |
          echo "in a container: $(cat /proc/1/cgroup | wc -l) cgroups"
          echo "kernel=$(uname -s)" >> "$HUBCTL_OUTPUT"
`)
	code, out, errOut := run(t, nil, "workflow", "run", "--local", file)
	if code != 0 || out != "build.kernel=Linux\n" || !strings.Contains(errOut, "in a container:") {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}

	slow := writeFile(t, "slow.yaml", `name: slow
on: manual
jobs:
  slow:
    image: `+img+`
    steps:
      - run: echo started; sleep 60; echo never
        timeout: 2s
`)
	code, out, errOut = run(t, nil, "workflow", "run", "--local", slow)
	if code == 0 || out != "" || !strings.Contains(errOut, "[hubctl] step 1 timed out after 2s: stopped") ||
		!strings.Contains(errOut, "job slow: timed_out: step 1 timed out after 2s") || strings.Contains(errOut, "never") {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
}

// localTestImage builds busybox FROM scratch into the Docker engine (nothing can be
// pulled here) and returns its name; without an engine the test skips (fails when
// CI=true).
func localTestImage(t *testing.T) string {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ID}}").CombinedOutput(); err != nil {
		skip("no Docker engine: %v: %s", err, out)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		skip("busybox not found (apt-get install -y busybox-static): %v", err)
	}
	dir := t.TempDir()
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := "hubctl-test/commands-busybox:1"
	cmd := exec.Command("docker", "build", "-q", "-t", ref, ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v: %s", err, out)
	}
	return ref
}
