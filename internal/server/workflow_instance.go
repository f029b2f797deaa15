package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// workflowInstanceFile holds the hub's workflow instance id, in the data directory.
const workflowInstanceFile = "workflow-instance"

// instancePattern is what an instance id looks like: 12 lower-case hex digits, so it
// fits Docker and Kubernetes names.
var instancePattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// workflowInstance returns the id naming this hub's workflow engine, made once and
// kept in the data directory, which one serve process at a time holds (lockDataDir).
// The engine claims job runs under it, so a hub restarted on its data takes its
// running job runs back at once (engine.Options.ID); the Docker executor names what
// it makes with it, so two hubs sharing one Docker engine never meet each other's
// containers, networks or volumes.
func workflowInstance(dataDir string) (string, error) {
	path := filepath.Join(dataDir, workflowInstanceFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !instancePattern.MatchString(id) {
			return "", fmt.Errorf("workflow instance id in %s: %q is not 12 lower-case hex digits (remove the file to make a new one)", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("workflow instance id: %w", err)
	}
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	id := hex.EncodeToString(r)
	tmp, err := os.CreateTemp(dataDir, workflowInstanceFile+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("workflow instance id: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(id + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("workflow instance id: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("workflow instance id: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("workflow instance id: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("workflow instance id: %w", err)
	}
	return id, nil
}
