package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tourAddr is the address the README's quick tour uses; the test replaces it with
// 127.0.0.1:PORT of a free port.
const tourAddr = "127.0.0.1:5000"

// tourImage is the image the tour takes from the Docker engine. It cannot be pulled
// here, so the test builds one FROM scratch and names it instead.
var tourImage = regexp.MustCompile(`(^|\s)alpine:3\.20(\s|$)`)

// TestReadmeQuickTour runs the "Quick tour" section of README.md as a newcomer would:
// every ```sh block in order, in a copy of the source tree (the tour runs `go run
// ./cmd/hubctl` and `go build` there), substituting only the image and the port. The
// first block starts the hub and keeps running; the others must each exit 0. The
// Docker engine, crane and a private docker config directory take part as written.
func TestReadmeQuickTour(t *testing.T) {
	requireDocker(t)
	crane := tool(t, "crane")
	tool(t, "helm") // the chart block; it sits beside crane
	if _, err := exec.LookPath("curl"); err != nil {
		skipOrFatal(t, "curl not on PATH: the chart block uploads with it")
	}
	if _, err := exec.LookPath("go"); err != nil {
		skipOrFatal(t, "go not on PATH: the tour runs go run and go build")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := tourBlocks(t, string(readme))
	if len(blocks) < 2 || !strings.Contains(blocks[0], "go run ./cmd/hubctl serve") {
		t.Fatalf("the quick tour should start with the block that runs serve; blocks:\n%q", blocks)
	}

	work := tourDir(t)
	copySourceTree(t, "..", work)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// The image, built FROM scratch: a static binary that prints a line.
	ctxDir, _ := helloContext(t, "hubctl readme tour")
	image := fmt.Sprintf("hubctl-e2e-tour-%d:3.20", port)
	dockerEnv := os.Environ()
	if exec.Command("docker", "buildx", "version").Run() != nil {
		dockerEnv = append(dockerEnv, "DOCKER_BUILDKIT=0")
	}
	run(t, ctxDir, dockerEnv, "docker", "build", "-t", image, ".")
	t.Cleanup(func() {
		// Best effort: the engine is shared.
		_ = exec.Command("docker", "rmi", "-f", image, addr+"/admin/alpine:1", addr+"/alice/hubctl:1").Run()
	})

	subst := func(block string) string {
		block = strings.ReplaceAll(block, tourAddr, addr)
		return tourImage.ReplaceAllString(block, "${1}"+image+"${2}")
	}
	// A private docker config and helm home (the logins and repositories the tour
	// makes), crane and helm on PATH, no HUBCTL_* from the developer's shell.
	home := t.TempDir()
	env := append(cleanEnv("HUBCTL_", "DOCKER_CONFIG", "HELM_", "XDG_"),
		"DOCKER_CONFIG="+filepath.Join(home, "docker"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "helm", "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "helm", "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "helm", "data"),
		"PATH="+filepath.Dir(crane)+string(os.PathListSeparator)+os.Getenv("PATH"))

	// Block 1: the hub, in the background, in its own process group so that the
	// SIGTERM at the end reaches the binary `go run` started.
	serve := exec.Command("bash", "-c", subst(blocks[0]))
	serve.Dir, serve.Env = work, env
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var serveOut lockedBuffer
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	serve.Stdout = &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	serveDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			serveOut.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "listening on ") {
				once = true
				close(listening)
			}
		}
		serveDone <- serve.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-serve.Process.Pid, syscall.SIGTERM)
		select {
		case <-serveDone:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("hubctl serve (block 1):\n%s", serveOut.String())
		}
	})
	select {
	case <-listening:
	case err := <-serveDone:
		t.Fatalf("the tour's serve exited: %v\n%s", err, serveOut.String())
	case <-time.After(5 * time.Minute): // a cold `go run` compiles everything
		t.Fatalf("the tour's serve did not listen within 5 minutes:\n%s", serveOut.String())
	}

	var outputs []string
	for i, block := range blocks[1:] {
		script := subst(block)
		out, errOut, err := runErr(t, work, env, "bash", "-e", "-x", "-c", script)
		if err != nil {
			t.Fatalf("README quick tour, block %d failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", i+2, err, script, out, errOut)
		}
		outputs = append(outputs, out+errOut)
	}
	all := strings.Join(outputs, "\n")
	if !strings.Contains(serveOut.String(), "created the admin account with the password from HUBCTL_ADMIN_PASSWORD") {
		t.Errorf("serve did not create admin with the tour's password:\n%s", serveOut.String())
	}
	// What the tour's prose promises.
	for _, want := range []string{
		addr + "/alice/alpine:3.20@sha256:", // the push's result
		"pushed 0 blobs (0 B), 0 manifests", // the second push sent nothing
		addr + "/alice/base:1@sha256:",      // the copy
		"Reference:",                        // inspect of the layout
		"manifest.pushed",                   // events ls
		"whsec_",                            // webhook create prints its secret once
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the tour's output lacks %q:\n%s", want, all)
		}
	}
	if !regexp.MustCompile(`(?m)^1$`).MatchString(outputs[1]) {
		t.Errorf("crane ls of the public repository did not list tag 1:\n%s", outputs[1])
	}
}

// lockedBuffer is a bytes.Buffer that a process and the test may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	_, _ = l.Write([]byte(s))
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tourBlocks returns the ```sh blocks of the README section "## Quick tour".
func tourBlocks(t *testing.T, readme string) []string {
	t.Helper()
	start := strings.Index(readme, "\n## Quick tour\n")
	if start < 0 {
		t.Fatal("README.md has no \"## Quick tour\" section")
	}
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var blocks []string
	for {
		i := strings.Index(section, "```sh\n")
		if i < 0 {
			return blocks
		}
		section = section[i+len("```sh\n"):]
		j := strings.Index(section, "```")
		if j < 0 {
			t.Fatal("unterminated code block in the quick tour")
		}
		blocks = append(blocks, section[:j])
		section = section[j+3:]
	}
}

// tourDir is the directory the tour runs in: the same one for every run from this
// source tree, because the go command keys its build cache on the package directory
// and a new directory would compile the whole module again (minutes on a busy
// machine). It is emptied first.
func tourDir(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("hubctl-e2e-tour-%x", sha256.Sum256([]byte(src)))[:len("hubctl-e2e-tour-")+12])
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// copySourceTree copies the module at src to dst, without .git, so the tour's `go run`
// and `go build` work on this tree without writing into it.
func copySourceTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || rel == "hubctl-data" || rel == "tour-data" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
