package commands

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/workflow/archive"
)

// The artifact commands of `hubctl workflow` (docs/workflows.md, "Artifacts and
// caches"): artifacts lists what a run's jobs kept, download fetches one.

// maxDownloadFiles bounds what `workflow download` extracts: the hub caps an artifact
// when it is stored, this bounds a tar.gz that inflates beyond any such cap.
const maxDownloadFiles = 16 << 30

// NewCmdWorkflowArtifacts returns `hubctl workflow artifacts RUN`.
func NewCmdWorkflowArtifacts(f *Factory) *cobra.Command {
	return simpleCommand(f, &cobra.Command{
		Use: "artifacts RUN", Short: "List the artifacts a run's jobs kept", Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		id, err := parseRunID(o.Args[0])
		if err != nil {
			return err
		}
		as, err := c.ListRunArtifacts(ctx, id)
		if err != nil {
			return fmt.Errorf("artifacts of run %d: %w", id, err)
		}
		return o.Hub.print(as, []string{"NAME", "JOB", "JOB ID", "PATH", "SIZE", "DIGEST", "CREATED"}, func(row func(cells ...string)) {
			for _, a := range as {
				row(a.Name, a.Job, fmt.Sprint(a.JobID), a.Path, fmt.Sprint(a.Size), a.Digest, a.CreatedAt)
			}
		})
	})
}

// WorkflowDownloadOptions are the inputs of `hubctl workflow download`.
type WorkflowDownloadOptions struct {
	Hub  HubOptions
	Run  int64
	Name string
	Job  int64
	// Output is a directory to extract into, or a file name ending in .tar.gz or
	// .tgz to write the archive to as it is.
	Output string
}

// NewCmdWorkflowDownload returns `hubctl workflow download RUN NAME`. runF receives
// the parsed options instead of downloading.
func NewCmdWorkflowDownload(f *Factory, runF func(*WorkflowDownloadOptions) error) *cobra.Command {
	opts := &WorkflowDownloadOptions{}
	cmd := &cobra.Command{
		Use:   "download RUN NAME [-o DIR | -o FILE.tar.gz] [--job JOB_ID]",
		Short: "Download an artifact of a run (extracted, or as a .tar.gz)",
		Long: `Download artifact NAME of run RUN and extract it into DIR (default: the current
directory), at the path the job kept it under its workspace's parent ("dist/…" for an
artifact of path dist). Entries with absolute paths, "..", links leading out, devices
are refused, and nothing is written outside DIR. With -o FILE.tar.gz (or .tgz) the
archive is written as the hub stores it. Its digest is verified either way. A matrix
job keeps an artifact per combination: --job names the job run ('workflow artifacts'
lists them).`,
		Args: checkArgs(cobra.ExactArgs(2)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		var err error
		if opts.Run, err = parseRunID(args[0]); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		opts.Name = args[1]
		if opts.Name == "" {
			return usageErrorf(cmd, "artifact name is empty")
		}
		if opts.Job < 0 {
			return usageErrorf(cmd, "--job %d: want a job run id", opts.Job)
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return workflowDownloadRun(cmd.Context(), c, opts)
	}))
	// -o is the hub commands' --output, which here names where the artifact goes
	// (the output is the artifact), so it is taken before the format check.
	inner := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		opts.Output, opts.Hub.Output = opts.Hub.Output, ""
		if opts.Output == "" {
			opts.Output = "."
		}
		return inner(c, args)
	}
	cmd.Flags().Lookup("output").Usage = "Extract into `DIR` (default: the current directory), or write the archive to a file ending in .tar.gz or .tgz"
	cmd.Flags().Int64Var(&opts.Job, "job", 0, "The job run (`JOB_ID`) whose artifact to take, when several kept one of the name")
	return cmd
}

// isArchiveName says the output names an archive file rather than a directory.
func isArchiveName(s string) bool {
	return strings.HasSuffix(s, ".tar.gz") || strings.HasSuffix(s, ".tgz")
}

func workflowDownloadRun(ctx context.Context, c *hubclient.Client, opts *WorkflowDownloadOptions) error {
	rc, dg, err := c.DownloadRunArtifact(ctx, opts.Run, opts.Name, opts.Job)
	if err != nil {
		return fmt.Errorf("download artifact %s of run %d: %w", opts.Name, opts.Run, err)
	}
	defer rc.Close()
	want, err := digest.Parse(dg)
	if err != nil {
		return fmt.Errorf("download artifact %s of run %d: the hub sent no valid digest (%q)", opts.Name, opts.Run, dg)
	}
	vr := want.Verifier()
	body := io.TeeReader(rc, vr)
	if isArchiveName(opts.Output) {
		if err := writeArchive(opts.Output, body, vr.Verified); err != nil {
			return fmt.Errorf("download artifact %s of run %d: %w", opts.Name, opts.Run, err)
		}
		fmt.Fprintf(opts.Hub.IO.ErrOut, "Artifact %s of run %d written to %s (%s)\n", opts.Name, opts.Run, opts.Output, want)
		return nil
	}
	gz, err := gzip.NewReader(body)
	if err != nil {
		return fmt.Errorf("download artifact %s of run %d: not a tar.gz: %w", opts.Name, opts.Run, err)
	}
	if err := archive.Extract(gz, opts.Output, archive.Limits{Bytes: maxDownloadFiles, Entries: 1 << 20}); err != nil {
		return fmt.Errorf("extract artifact %s of run %d into %s: %w", opts.Name, opts.Run, opts.Output, err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("download artifact %s of run %d: %w", opts.Name, opts.Run, err)
	}
	if !vr.Verified() {
		return fmt.Errorf("download artifact %s of run %d: the content does not match its digest %s: what was extracted into %s is not to be trusted",
			opts.Name, opts.Run, want, opts.Output)
	}
	fmt.Fprintf(opts.Hub.IO.ErrOut, "Artifact %s of run %d extracted into %s\n", opts.Name, opts.Run, opts.Output)
	return nil
}

// writeArchive writes r to path through a temporary file in its directory, renamed
// into place only once the content is whole and verified.
func writeArchive(path string, r io.Reader, verified func() bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hubctl-download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if !verified() {
		return errors.New("the content does not match its digest")
	}
	return os.Rename(tmp.Name(), path)
}
