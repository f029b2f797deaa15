package executor

import (
	"context"
	"fmt"
	"regexp"
)

// FileWriter is implemented by executors that can place a small file where a job's
// steps read it while they run: the engine keeps the job's token there
// ($HUBCTL_TOKEN_FILE), rewritten before the token expires, so a step longer than the
// token's lifetime still pushes. The engine calls WriteFile after SetupWorkflow and
// before the first step, then again whenever the content changes; an executor
// without it gives steps $HUBCTL_TOKEN only.
type FileWriter interface {
	// WriteFile replaces the job's file name (see CheckFileName) with data, for the
	// step running now and every later one. A reader never sees a mix of the old and
	// the new content (local: rename; docker: one archive extraction of a small file).
	WriteFile(ctx context.Context, job *JobSpec, name string, data []byte) error
	// FilePath is where the job's steps find the file name; valid after SetupWorkflow.
	FilePath(job *JobSpec, name string) string
}

// MaxFile bounds what WriteFile takes: these are tokens, not artifacts.
const MaxFile = 64 << 10

var fileNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// CheckFileName accepts the names WriteFile takes: a lower-case letter, then up to 31
// lower-case letters, digits, '_' or '-' (no path, no dot), and data up to MaxFile.
func CheckFileName(name string, data []byte) error {
	if !fileNameRe.MatchString(name) {
		return fmt.Errorf("executor: file name %q is not [a-z][a-z0-9_-]{0,31}", name)
	}
	if len(data) > MaxFile {
		return fmt.Errorf("executor: file %s is %d bytes, more than %d", name, len(data), MaxFile)
	}
	return nil
}
