// Package agentimagetest gives tests a small static Linux executable to build the
// agent image from: what the image holds at /hubctl need not be hubctl for the
// stores, the registry or the Kubernetes Job, and a test binary is not static.
package agentimagetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	path string
	err  error
)

// StaticBinary builds, once per test binary, a static Linux executable
// (CGO_ENABLED=0) that prints "agent", and returns its path. Cleanup removes it.
func StaticBinary(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if dir, err = os.MkdirTemp("", "agentimage-bin-"); err != nil {
			return
		}
		src := filepath.Join(dir, "main.go")
		if err = os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"agent\") }\n"), 0o600); err != nil {
			return
		}
		path = filepath.Join(dir, "hubctl")
		cmd := exec.Command("go", "build", "-o", path, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GO111MODULE=off")
		cmd.Dir = dir
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("go build a static binary: %v\n%s", berr, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Cleanup removes the binary; TestMain calls it after the tests.
func Cleanup() {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
