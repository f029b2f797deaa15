package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/workflow"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor"
	"github.com/hubctl/hubctl/internal/workflow/executor/docker"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

// WorkflowLocalOptions are the inputs of `hubctl workflow run --local FILE`.
type WorkflowLocalOptions struct {
	IO   *iostreams.IOStreams
	File string
	// Executor is docker (the default) or local (steps as host processes).
	Executor string
	Inputs   []string
	// Secrets are names: each value is read from the environment variable of that name.
	Secrets []string
	// Event is manual (the default) or push, with Repo, Tag and Digest.
	Event  string
	Repo   string
	Tag    string
	Digest string
	Output string
	// LookupEnv reads the secrets' variables.
	LookupEnv func(string) (string, bool)
	// Grace is how long a run interrupted by Ctrl-C gets to stop its steps.
	Grace time.Duration
}

// errLocalRunFailed is the exit status of a local run that did not succeed; the lines
// above said why.
var errLocalRunFailed = errors.New("the run did not succeed (see above)")

// localNamespace is the namespace a local run's workflow is applied under.
const localNamespace = "local"

// zeroDigest is the digest of a local push event when --digest is not given.
const zeroDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

var secretNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// addLocalRun makes `hubctl workflow run` take --local FILE: the flags of a local run
// and a RunE that runs it here instead of on a hub.
func addLocalRun(f *Factory, cmd *cobra.Command, inputs *[]string, runF func(*WorkflowLocalOptions) error) {
	opts := &WorkflowLocalOptions{Grace: 15 * time.Second}
	var isLocal bool
	fl := cmd.Flags()
	fl.BoolVar(&isLocal, "local", false, "Run the workflow FILE here, not on a hub (an engine with a temporary store and the Docker executor)")
	fl.StringVar(&opts.Executor, "executor", "docker", "With --local: run steps with `EXECUTOR`: docker, or local (as host processes, without containers)")
	fl.StringArrayVar(&opts.Secrets, "secret", nil, "With --local: give the job the secret `NAME`, read from the environment variable NAME (repeatable)")
	fl.StringVar(&opts.Event, "event", "manual", "With --local: the trigger to run as, `manual` or push")
	fl.StringVar(&opts.Repo, "repo", "", "With --local --event push: the pushed `repository`")
	fl.StringVar(&opts.Tag, "tag", "", "With --local --event push: the pushed `tag`")
	fl.StringVar(&opts.Digest, "digest", "", "With --local --event push: the pushed `digest` (default sha256:0…0)")
	hubRunE := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if !isLocal {
			for _, name := range []string{"executor", "secret", "event", "repo", "tag", "digest"} {
				if c.Flags().Changed(name) {
					return usageErrorf(c, "--%s needs --local", name)
				}
			}
			return hubRunE(c, args)
		}
		if c.Flags().Changed("registry") {
			return usageErrorf(c, "--local runs here: it takes no --registry")
		}
		opts.IO, opts.File, opts.Inputs, opts.LookupEnv = f.IOStreams, args[0], *inputs, f.LookupEnv
		opts.Output, _ = c.Flags().GetString("output")
		if opts.Output != "" && opts.Output != "json" {
			return usageErrorf(c, "invalid --output %q: want json", opts.Output)
		}
		if opts.Executor != "docker" && opts.Executor != "local" {
			return usageErrorf(c, "invalid --executor %q: want docker or local", opts.Executor)
		}
		for _, in := range opts.Inputs {
			if k, _, ok := strings.Cut(in, "="); !ok || k == "" {
				return usageErrorf(c, "invalid --input %q: want NAME=VALUE", in)
			}
		}
		for _, name := range opts.Secrets {
			if !secretNamePattern.MatchString(name) {
				return usageErrorf(c, "invalid --secret %q: want the NAME of an environment variable holding the value", name)
			}
		}
		switch opts.Event {
		case "manual":
			if opts.Repo != "" || opts.Tag != "" || opts.Digest != "" {
				return usageErrorf(c, "--repo, --tag and --digest are for --event push")
			}
		case "push":
			if opts.Repo == "" {
				return usageErrorf(c, "--event push needs --repo (and usually --tag)")
			}
			if opts.Digest == "" {
				opts.Digest = zeroDigest
			}
		default:
			return usageErrorf(c, "invalid --event %q: want manual or push", opts.Event)
		}
		if runF != nil {
			return runF(opts)
		}
		return workflowLocalRun(c.Context(), opts)
	}
}

// workflowLocalRun runs the workflow file once, here: an engine on a SQLite store in
// a temporary directory (the hub's own store code) and the chosen executor. Job logs
// go to stderr as they come; the jobs' outputs to stdout (or the run as JSON).
func workflowLocalRun(ctx context.Context, opts *WorkflowLocalOptions) error {
	src, err := readWorkflowFile(opts.File, opts.IO.In)
	if err != nil {
		return fmt.Errorf("workflow %s: %w", opts.File, err)
	}
	wf, err := workflow.Parse(src)
	if err != nil {
		var es workflow.Errors
		if errors.As(err, &es) && len(es) > 0 {
			return fmt.Errorf("%s:%d:%d: %s (hubctl workflow validate %s lists every error)", opts.File, es[0].Line, es[0].Col, es[0].Msg, opts.File)
		}
		return fmt.Errorf("workflow %s: %w", opts.File, err)
	}
	secrets := map[string]string{}
	for _, name := range opts.Secrets {
		v, ok := opts.LookupEnv(name)
		if !ok {
			return fmt.Errorf("secret %s: the environment variable %s is not set", name, name)
		}
		if err := engine.CheckSecret(name, v); err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		secrets[name] = v
	}

	dir, err := os.MkdirTemp("", "hubctl-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var x executor.Executor
	switch opts.Executor {
	case "local":
		if x, err = local.New(filepath.Join(dir, "steps")); err != nil {
			return err
		}
	default:
		d, err := docker.New()
		if err != nil {
			return err
		}
		defer d.Close()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = d.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%w (start Docker, set DOCKER_HOST, or run steps as host processes with --executor local)", err)
		}
		x = d
	}
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "hubctl.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	w, err := store.ApplyWorkflow(ctx, localNamespace, wf.Name, src, 0, "local")
	if err != nil {
		return err
	}
	pr, err := planLocal(w, wf, opts)
	if err != nil {
		return err
	}
	runID, err := store.CreateWorkflowRun(ctx, w.ID, pr)
	if err != nil {
		return err
	}

	e, err := engine.New(engine.Options{Store: store, Executor: x, JobIDPrefix: "local-" + filepath.Base(dir) + "-",
		MayPull: func(context.Context, int64, string) (bool, error) { return true, nil },
		Secrets: func(_ context.Context, _ string, names []string) (map[string]string, error) {
			out := map[string]string{}
			for _, n := range names {
				if v, ok := secrets[n]; ok {
					out[n] = v
				}
			}
			return out, nil
		},
		Interval: 100 * time.Millisecond, Lease: 5 * time.Second, Renew: 500 * time.Millisecond})
	if err != nil {
		return err
	}
	ectx, stop := context.WithCancel(context.WithoutCancel(ctx))
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		_ = e.Run(ectx)
	}()
	defer func() {
		stop()
		<-engineDone
	}()

	run, err := followLocalRun(ctx, store, runID, opts)
	if err != nil {
		return err
	}
	return reportLocalRun(opts, run)
}

// planLocal plans the run of the file as --event says.
func planLocal(w engine.Workflow, wf *workflow.Workflow, opts *WorkflowLocalOptions) (*engine.PlannedRun, error) {
	if opts.Event == "push" {
		ev := events.Event{ID: "local-push", Type: events.ManifestPushed, Time: time.Now(), Repository: opts.Repo, Tag: opts.Tag,
			Digest: opts.Digest, Kind: events.KindImage}
		pr, err := engine.Plan(w, ev)
		if err != nil {
			return nil, err
		}
		if pr == nil {
			return nil, fmt.Errorf("workflow %s: its push trigger does not match a push of %s:%s", opts.File, opts.Repo, opts.Tag)
		}
		return pr, nil
	}
	if wf.On.Manual == nil {
		return nil, fmt.Errorf("workflow %s has no manual trigger: add 'manual:' to its on:, or run it as a push with --event push --repo REPO --tag TAG", opts.File)
	}
	inputs := map[string]any{}
	for _, in := range opts.Inputs {
		k, v, _ := strings.Cut(in, "=")
		inputs[k] = v
		for _, d := range wf.On.Manual.Inputs {
			if d.Name == k && d.Type == workflow.InputBoolean {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("input %s is a boolean: want true or false, not %q", k, v)
				}
				inputs[k] = b
			}
		}
	}
	return engine.PlanManual(w, "local-manual", inputs, "local")
}

// followLocalRun copies the run's logs to stderr until it ends; on Ctrl-C (ctx) it
// cancels the run and waits, up to the grace period, for its steps to stop.
func followLocalRun(ctx context.Context, store *sqlstore.Store, runID int64, opts *WorkflowLocalOptions) (engine.Run, error) {
	bg := context.WithoutCancel(ctx)
	after := map[int64]int64{}
	lastJob := int64(-1)
	var deadline time.Time
	tty := opts.IO.IsStderrTTY()
	for {
		run, err := store.GetWorkflowRun(bg, runID)
		if err != nil {
			return engine.Run{}, err
		}
		for _, j := range run.Jobs {
			chunks, err := store.ReadWorkflowLogs(bg, j.ID, after[j.ID], 0)
			if err != nil {
				return engine.Run{}, err
			}
			for _, ch := range chunks {
				if j.ID != lastJob {
					fmt.Fprintf(opts.IO.ErrOut, "==> %s <==\n", safetext.Escape(j.Display))
					lastJob = j.ID
				}
				if err := writeLog(opts.IO.ErrOut, string(ch.Data), tty); err != nil {
					return engine.Run{}, err
				}
				after[j.ID] = ch.Seq
			}
		}
		if engine.Terminal(run.State) {
			return run, nil
		}
		if ctx.Err() != nil {
			if deadline.IsZero() {
				fmt.Fprintln(opts.IO.ErrOut, "hubctl: interrupted: cancelling the run")
				if err := store.CancelWorkflowRun(bg, runID); err != nil {
					return engine.Run{}, err
				}
				deadline = time.Now().Add(opts.Grace)
			} else if time.Now().After(deadline) {
				return engine.Run{}, errors.New("interrupted: the run's steps did not stop in time")
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reportLocalRun prints the jobs' outputs (or the run as JSON) and each failed job's
// reason, and fails unless the run succeeded.
func reportLocalRun(opts *WorkflowLocalOptions, run engine.Run) error {
	if opts.Output == "json" {
		if err := printJSON(opts.IO.Out, localRunJSON(run)); err != nil {
			return err
		}
	} else {
		for _, j := range run.Jobs {
			keys := make([]string, 0, len(j.Outputs))
			for k := range j.Outputs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(opts.IO.Out, "%s.%s=%s\n", safetext.Escape(j.Display), safetext.Escape(k), safetext.Escape(j.Outputs[k]))
			}
		}
	}
	for _, j := range run.Jobs {
		if j.State != engine.StateSucceeded && j.State != engine.StateSkipped {
			fmt.Fprintf(opts.IO.ErrOut, "job %s: %s", safetext.Escape(j.Display), j.State)
			if j.Error != "" {
				fmt.Fprintf(opts.IO.ErrOut, ": %s", safetext.Escape(j.Error))
			}
			fmt.Fprintln(opts.IO.ErrOut)
		}
	}
	fmt.Fprintf(opts.IO.ErrOut, "Run %s.\n", run.State)
	if run.State != engine.StateSucceeded {
		return errLocalRunFailed
	}
	return nil
}

// localRunJob and localRun are what -o json prints of a local run.
type localRunJob struct {
	Name    string            `json:"name"`
	State   string            `json:"state"`
	Error   string            `json:"error,omitempty"`
	Outputs map[string]string `json:"outputs"`
}

type localRun struct {
	State string        `json:"state"`
	Jobs  []localRunJob `json:"jobs"`
}

func localRunJSON(run engine.Run) localRun {
	out := localRun{State: run.State, Jobs: []localRunJob{}}
	for _, j := range run.Jobs {
		o := j.Outputs
		if o == nil {
			o = map[string]string{}
		}
		out.Jobs = append(out.Jobs, localRunJob{Name: j.Display, State: j.State, Error: j.Error, Outputs: o})
	}
	return out
}
