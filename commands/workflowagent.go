package commands

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/workflow/archive"
)

// `hubctl workflow-agent` is hidden: it runs inside a workflow job's pod on an
// executor that cannot move files itself (Kubernetes), as the init container that
// restores the artifacts of the jobs this one needs and the job's cache before the
// first step and as the last container that uploads the job's own artifacts, and its
// cache when the key had none, after the last step (docs/design/workflows.md,
// "Artifacts on Kubernetes"). It signs in with the job's
// $HUBCTL_TOKEN (or $HUBCTL_TOKEN_FILE) to $HUBCTL_HUB, which only lets it touch its
// own run.

// maxAgentFiles bounds what the agent extracts from one artifact: the hub caps an
// artifact when it is stored; this bounds a tar.gz that would inflate beyond any cap.
const maxAgentFiles = 16 << 30

// WorkflowAgentOptions are the inputs of `hubctl workflow-agent restore|save`.
type WorkflowAgentOptions struct {
	IO *iostreams.IOStreams
	// Hub is the hub's URL ($HUBCTL_HUB); Run and Job the job run's ids.
	Hub       string
	Run, Job  int64
	Workspace string
	// Artifacts are NAME=PATH pairs to upload (save); PATH is relative to Workspace.
	Artifacts []string
	// Cache, when set, is the job's cache directory: restore extracts the cache the
	// hub keeps under the job's key into it, save uploads it when the key has none.
	Cache string
	// Client is the hub client signed in with the job's token (set by the command).
	Client *hubclient.Client
}

// NewCmdWorkflowAgent returns the hidden `hubctl workflow-agent`.
func NewCmdWorkflowAgent(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "workflow-agent",
		Short:  "Move a workflow job's artifacts and cache between its pod and the hub (inside a job's pod)",
		Hidden: true,
		Args:   checkArgs(cobra.NoArgs),
	}
	cmd.AddCommand(agentCommand(f, "restore", "Extract the artifacts of the jobs this job needs into its workspace, and its cache", WorkflowAgentRestore),
		agentCommand(f, "save", "Upload the job's artifacts from its workspace, and its cache when the key has none", WorkflowAgentSave))
	return cmd
}

func agentCommand(f *Factory, use, short string, run func(context.Context, *WorkflowAgentOptions) error) *cobra.Command {
	opts := &WorkflowAgentOptions{}
	cmd := &cobra.Command{Use: use, Short: short, Args: checkArgs(cobra.NoArgs)}
	fl := cmd.Flags()
	fl.Int64Var(&opts.Run, "run", 0, "The workflow run's `ID`")
	fl.Int64Var(&opts.Job, "job", 0, "The job run's `ID`")
	fl.StringVar(&opts.Workspace, "workspace", "/workspace", "The job's workspace `DIR`")
	fl.StringVar(&opts.Cache, "cache", "", "The job's cache `DIR` (the hub evaluates the key)")
	if use == "save" {
		fl.StringArrayVar(&opts.Artifacts, "artifact", nil, "An artifact to upload, `NAME=PATH` (PATH relative to the workspace; repeatable)")
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if opts.Run <= 0 || opts.Job <= 0 {
			return usageErrorf(cmd, "--run and --job are required")
		}
		opts.IO = f.IOStreams
		opts.Hub, _ = f.LookupEnv(credentials.EnvHub)
		if opts.Hub == "" {
			return usageErrorf(cmd, "$%s is not set: workflow-agent runs inside a workflow job", credentials.EnvHub)
		}
		job, ok := credentials.JobTokenFromEnv(nil, f.LookupEnv).(*credentials.JobTokenResolver)
		if !ok {
			return usageErrorf(cmd, "$%s or $%s is not set: workflow-agent signs in with the job's token", credentials.EnvToken, credentials.EnvTokenFile)
		}
		u, err := url.Parse(opts.Hub)
		insecure := err == nil && u.Scheme == "http"
		// No overall timeout: an artifact may take long to stream; the pod's own
		// deadline bounds the agent.
		c, err := hubclient.New(hubclient.Options{Host: job.Hub, Insecure: insecure, Credentials: agentSource{job},
			HTTPClient: &http.Client{}, Trust: f.Trust()})
		if err != nil {
			return err
		}
		opts.Client = c
		return run(cmd.Context(), opts)
	}
	return cmd
}

// agentSource answers the job's token for every host (the client talks to its hub
// alone).
type agentSource struct{ job *credentials.JobTokenResolver }

func (s agentSource) Get(host string) (credentials.Credentials, error) { return s.job.Resolve(host) }

// WorkflowAgentRestore extracts, for each artifact of the jobs the job needs, its
// tar.gz next to the artifact's path in the workspace, the digest verified.
func WorkflowAgentRestore(ctx context.Context, o *WorkflowAgentOptions) error {
	as, err := o.Client.ListNeededArtifacts(ctx, o.Run, o.Job)
	if err != nil {
		return fmt.Errorf("list the needed artifacts: %w", err)
	}
	for _, a := range as {
		dir := path.Dir(a.Path)
		if !filepath.IsLocal(filepath.FromSlash(dir)) && dir != "." {
			return fmt.Errorf("artifact %s of job %s: path %q is not inside the workspace", a.Name, a.Job, a.Path)
		}
		rc, dg, err := o.Client.DownloadNeededArtifact(ctx, o.Run, o.Job, a.JobID, a.Name)
		if err == nil {
			err = extractVerified(rc, dg, filepath.Join(o.Workspace, filepath.FromSlash(dir)))
		}
		if err != nil {
			return fmt.Errorf("artifact %s of job %s: %w", a.Name, a.Job, err)
		}
		fmt.Fprintf(o.IO.ErrOut, "Restored artifact %s of job %s into %s\n", a.Name, a.Job, a.Path)
	}
	if o.Cache == "" {
		return nil
	}
	rc, dg, err := o.Client.DownloadJobCache(ctx, o.Run, o.Job)
	if errors.Is(err, hubclient.ErrNoCache) {
		fmt.Fprintf(o.IO.ErrOut, "No cache under the job's key yet: %s starts empty\n", o.Cache)
		return nil
	}
	if err == nil {
		err = extractVerified(rc, dg, o.Cache)
	}
	if err != nil {
		return fmt.Errorf("restore the cache into %s: %w", o.Cache, err)
	}
	fmt.Fprintf(o.IO.ErrOut, "Restored the cache (%s) into %s\n", dg, o.Cache)
	return nil
}

// extractVerified extracts the tar.gz rc into dir, checking every entry, and fails
// unless what it read matches dg; it closes rc.
func extractVerified(rc io.ReadCloser, dg, dir string) error {
	defer rc.Close()
	want, err := digest.Parse(dg)
	if err != nil {
		return fmt.Errorf("the hub sent no valid digest (%q)", dg)
	}
	vr := want.Verifier()
	body := io.TeeReader(rc, vr)
	gz, err := gzip.NewReader(body)
	if err != nil {
		return fmt.Errorf("not a tar.gz: %w", err)
	}
	if err := archive.Extract(gz, dir, archive.Limits{Bytes: maxAgentFiles, Entries: 1 << 20}); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	if !vr.Verified() {
		return fmt.Errorf("the content does not match its digest %s", want)
	}
	return nil
}

// WorkflowAgentSave uploads each NAME=PATH of o.Artifacts as a gzipped tar of PATH
// (named from its base name down), streamed as it is read from the workspace.
func WorkflowAgentSave(ctx context.Context, o *WorkflowAgentOptions) error {
	for _, spec := range o.Artifacts {
		name, rel, ok := strings.Cut(spec, "=")
		if !ok || name == "" || rel == "" {
			return fmt.Errorf("artifact %q: want NAME=PATH", spec)
		}
		pr, pw := io.Pipe()
		go func() {
			gz := gzip.NewWriter(pw)
			err := archive.Create(gz, o.Workspace, path.Clean(rel), archive.Limits{Bytes: maxAgentFiles, Entries: 1 << 20})
			if err == nil {
				err = gz.Close()
			}
			pw.CloseWithError(err)
		}()
		a, err := o.Client.UploadJobArtifact(ctx, o.Run, o.Job, name, pr)
		pr.CloseWithError(errors.New("upload ended"))
		if err != nil {
			return fmt.Errorf("artifact %s (%s): %w", name, rel, err)
		}
		fmt.Fprintf(o.IO.ErrOut, "Saved artifact %s (%s, %s bytes, %s)\n", name, rel, strconv.FormatInt(a.Size, 10), a.Digest)
	}
	if o.Cache == "" {
		return nil
	}
	return saveCache(ctx, o)
}

// saveCache uploads the cache directory when the job's key has no cache: a key's
// cache never changes, so one restored (or saved meanwhile by another run) is left.
func saveCache(ctx context.Context, o *WorkflowAgentOptions) error {
	has, err := o.Client.HasJobCache(ctx, o.Run, o.Job)
	if err != nil {
		return fmt.Errorf("the cache: %w", err)
	}
	if has {
		fmt.Fprintf(o.IO.ErrOut, "The job's key has a cache already, which never changes: %s not saved\n", o.Cache)
		return nil
	}
	if _, err := os.Lstat(o.Cache); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(o.IO.ErrOut, "No cache directory %s: nothing cached\n", o.Cache)
		return nil
	}
	pr, pw := io.Pipe()
	go func() {
		gz := gzip.NewWriter(pw)
		err := archive.Create(gz, o.Cache, ".", archive.Limits{Bytes: maxAgentFiles, Entries: 1 << 20})
		if err == nil {
			err = gz.Close()
		}
		pw.CloseWithError(err)
	}()
	c, err := o.Client.UploadJobCache(ctx, o.Run, o.Job, pr)
	pr.CloseWithError(errors.New("upload ended"))
	if errors.Is(err, hubclient.ErrCacheExists) {
		fmt.Fprintf(o.IO.ErrOut, "The job's key got a cache meanwhile, which never changes: %s not saved\n", o.Cache)
		return nil
	}
	if err != nil {
		return fmt.Errorf("save the cache %s: %w", o.Cache, err)
	}
	fmt.Fprintf(o.IO.ErrOut, "Saved the cache %s (%s bytes, %s)\n", o.Cache, strconv.FormatInt(c.Size, 10), c.Digest)
	return nil
}
