package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestDockerBuildPushPullRun builds a FROM-scratch image holding a static Go binary,
// pushes it to hubctl with the Docker engine, removes it locally, pulls it back and runs
// it. The binary prints a nonce unique to this run, so the output proves the image that
// ran is the one this run pushed, not a leftover in the engine's cache.
func TestDockerBuildPushPullRun(t *testing.T) {
	requireDocker(t)
	s := startServer(t)

	dir, want := helloContext(t, "hello from hubctl e2e")

	// The tag the issue names; the registry's random port makes the reference unique to
	// this run on the shared engine.
	ref := s.Addr + "/demo/hello:1"
	dockerEnv := os.Environ()
	if exec.Command("docker", "buildx", "version").Run() != nil {
		// Without the buildx plugin the CLI needs the classic builder selected explicitly.
		dockerEnv = append(dockerEnv, "DOCKER_BUILDKIT=0")
	}
	t.Cleanup(func() {
		// Best effort: the engine is shared, leave no image behind.
		_ = exec.Command("docker", "rmi", "-f", ref).Run()
	})

	run(t, dir, dockerEnv, "docker", "build", "-t", ref, ".")
	run(t, dir, nil, "docker", "push", ref)

	// The registry has the tag.
	resp, body := do(t, http.MethodGet, s.URL("/v2/demo/hello/tags/list"), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tags list: %s %s", resp.Status, body)
	}
	var tl struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &tl); err != nil {
		t.Fatalf("tags list body %q: %v", body, err)
	}
	if tl.Name != "demo/hello" || !slices.Contains(tl.Tags, "1") {
		t.Fatalf("tags list = %+v, want demo/hello with tag 1", tl)
	}

	run(t, dir, nil, "docker", "rmi", ref)
	if _, _, err := runErr(t, dir, nil, "docker", "image", "inspect", ref); err == nil {
		t.Fatalf("%s still present locally after docker rmi", ref)
	}

	run(t, dir, nil, "docker", "pull", ref)
	out := run(t, dir, nil, "docker", "run", "--rm", ref)
	if strings.TrimSpace(out) != want {
		t.Fatalf("docker run output = %q, want %q", out, want)
	}
}

// helloContext writes a docker build context holding a static Go binary that prints a
// line unique to the run (prefix and a nonce), and returns the directory and the line.
func helloContext(t testing.TB, prefix string) (dir, want string) {
	t.Helper()
	nb := make([]byte, 8)
	_, _ = rand.Read(nb)
	want = prefix + " " + hex.EncodeToString(nb)
	dir = t.TempDir()
	for name, body := range map[string]string{
		"go.mod":     "module hello\n\ngo 1.22\n",
		"main.go":    "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"" + want + "\") }\n",
		"Dockerfile": "FROM scratch\nCOPY hello /hello\nENTRYPOINT [\"/hello\"]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Static binary for the engine's platform (the engine is local, so the host's arch);
	// the Go build keeps the developer's HOME (its build cache).
	env := append(cleanEnv("GOFLAGS=", "GOWORK=", "CGO_ENABLED=", "GOOS=", "GOARCH="),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOWORK=off", "GOFLAGS=-trimpath")
	run(t, dir, env, "go", "build", "-o", "hello", ".")
	return dir, want
}
