package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/workflow"
)

// The commands of this file talk to a hub's workflow API (docs/workflows.md, "On a
// hub"): apply, ls, show, rm, run, runs, logs, cancel, rerun.

// logFollowWait is how long one `logs --follow` request waits on the hub for a chunk.
const logFollowWait = 20

// splitWorkflow parses NS/NAME (the name is the last segment).
func splitWorkflow(cmd *cobra.Command, s string) (ns, name string, err error) {
	i := strings.LastIndex(s, "/")
	if i <= 0 || i == len(s)-1 {
		return "", "", usageErrorf(cmd, "workflow %q: want NAMESPACE/NAME", s)
	}
	return s[:i], s[i+1:], nil
}

// parseRunID parses a run id as `hubctl workflow runs` shows it.
func parseRunID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("run %q: want the run id 'hubctl workflow runs' shows", s)
	}
	return id, nil
}

// WorkflowApplyOptions are the inputs of `hubctl workflow apply`.
type WorkflowApplyOptions struct {
	Hub       HubOptions
	File      string
	Namespace string
	Name      string
}

// NewCmdWorkflowApply returns `hubctl workflow apply FILE`. runF receives the parsed
// options instead of applying.
func NewCmdWorkflowApply(f *Factory, runF func(*WorkflowApplyOptions) error) *cobra.Command {
	opts := &WorkflowApplyOptions{}
	cmd := &cobra.Command{
		Use:   "apply FILE --namespace NS [--name NAME]",
		Short: "Store a workflow file on a hub (create or replace it)",
		Long: `Store the workflow FILE ("-" reads stdin) in namespace NS of a hub, as NAME (default:
the file's name: key). The hub checks the file as 'hubctl workflow validate' does and
refuses it with the same line:column errors. Applying needs admin rights on the
namespace; the workflow then starts runs as its applier, for what the applier may pull.`,
		Example: `  hubctl workflow apply release.yaml --namespace acme
  hubctl workflow apply ci.yaml --namespace alice --name ci-main`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		opts.File = args[0]
		if opts.Namespace == "" {
			return usageErrorf(cmd, "--namespace is required")
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return workflowApplyRun(cmd.Context(), c, opts)
	}))
	cmd.Flags().StringVar(&opts.Namespace, "namespace", "", "Namespace `NS` the workflow belongs to (required)")
	cmd.Flags().StringVar(&opts.Name, "name", "", "Store the workflow as `NAME` (default: its name: key)")
	return cmd
}

func workflowApplyRun(ctx context.Context, c *hubclient.Client, opts *WorkflowApplyOptions) error {
	src, err := readWorkflowFile(opts.File, opts.Hub.IO.In)
	if err != nil {
		return fmt.Errorf("read %s: %w", opts.File, err)
	}
	name := opts.Name
	w, err := workflow.Parse(src)
	var es workflow.Errors
	switch {
	case errors.As(err, &es):
		for _, e := range es {
			fmt.Fprintf(opts.Hub.IO.ErrOut, "%s:%d:%d: %s\n", safetext.Escape(opts.File), e.Line, e.Col, safetext.Escape(e.Msg))
		}
		return errWorkflowInvalid
	case err != nil:
		return fmt.Errorf("%s: %w", opts.File, err)
	}
	if name == "" {
		name = w.Name
	}
	got, err := c.ApplyWorkflow(ctx, opts.Namespace, name, src)
	if err != nil {
		return fmt.Errorf("apply workflow %s/%s: %w", opts.Namespace, name, err)
	}
	if err := opts.Hub.done(got, "Workflow %s applied (%s)", got.Namespace+"/"+got.Name, got.Digest); err != nil {
		return err
	}
	return printHookSecret(&opts.Hub, got)
}

// NewCmdWorkflowLs returns `hubctl workflow ls`.
func NewCmdWorkflowLs(f *Factory) *cobra.Command {
	opts := &AdminOptions{}
	var namespace string
	cmd := &cobra.Command{
		Use:   "ls [--namespace NS]",
		Short: "List the workflows of a hub you may read",
		Args:  checkArgs(cobra.NoArgs),
	}
	simpleCommand(f, cmd, opts, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		wfs, err := c.ListWorkflows(ctx, namespace)
		if err != nil {
			return fmt.Errorf("list workflows: %w", err)
		}
		return o.Hub.print(wfs, []string{"WORKFLOW", "DIGEST", "APPLIED BY", "UPDATED"}, func(row func(cells ...string)) {
			for _, w := range wfs {
				row(w.Namespace+"/"+w.Name, w.Digest, w.AppliedBy, w.UpdatedAt)
			}
		})
	})
	cmd.Flags().StringVar(&namespace, "namespace", "", "Only the workflows of namespace `NS`")
	return cmd
}

// NewCmdWorkflowShow returns `hubctl workflow show NS/NAME`.
func NewCmdWorkflowShow(f *Factory) *cobra.Command {
	var cmd *cobra.Command
	cmd = simpleCommand(f, &cobra.Command{
		Use: "show NS/NAME | RUN", Short: "Print a stored workflow's YAML, or a run's jobs and approvals (-o json: all of it)",
		Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		if id, err := strconv.ParseInt(o.Args[0], 10, 64); err == nil && id > 0 {
			return showRun(ctx, c, o, id)
		}
		ns, name, err := splitWorkflow(cmd, o.Args[0])
		if err != nil {
			return err
		}
		w, err := c.GetWorkflow(ctx, ns, name)
		if err != nil {
			return fmt.Errorf("workflow %s: %w", o.Args[0], err)
		}
		if o.Hub.Output == "json" {
			return printJSON(o.Hub.IO.Out, w)
		}
		return writeLog(o.Hub.IO.Out, w.Source, o.Hub.IO.IsStdoutTTY())
	})
	return cmd
}

// NewCmdWorkflowRm returns `hubctl workflow rm NS/NAME`.
func NewCmdWorkflowRm(f *Factory) *cobra.Command {
	var cmd *cobra.Command
	cmd = simpleCommand(f, &cobra.Command{
		Use: "rm NS/NAME", Short: "Delete a workflow with its runs and their logs", Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		ns, name, err := splitWorkflow(cmd, o.Args[0])
		if err != nil {
			return err
		}
		if err := c.DeleteWorkflow(ctx, ns, name); err != nil {
			return fmt.Errorf("delete workflow %s: %w", o.Args[0], err)
		}
		return o.Hub.done(nil, "Workflow %s deleted", o.Args[0])
	})
	return cmd
}

// WorkflowRunOptions are the inputs of `hubctl workflow run`.
type WorkflowRunOptions struct {
	Hub       HubOptions
	Namespace string
	Name      string
	// Inputs are the NAME=VALUE pairs of --input.
	Inputs []string
}

// NewCmdWorkflowRun returns `hubctl workflow run NS/NAME`. runF receives the parsed
// options instead of starting the run.
func NewCmdWorkflowRun(f *Factory, runF func(*WorkflowRunOptions) error) *cobra.Command {
	opts := &WorkflowRunOptions{}
	cmd := &cobra.Command{
		Use:   "run NS/NAME [--input NAME=VALUE]... | run --local FILE",
		Short: "Start a manual run of a workflow and print its run id (--local: run a file here)",
		Long: `Start a run of a workflow with a manual trigger. Each --input sets one of the
workflow's inputs (a boolean input takes true or false); the hub checks them against
the workflow's declarations. The run id is printed on stdout, for 'hubctl workflow
logs'. Running needs write access to the whole namespace.

With --local, run the workflow FILE once on this machine instead, with no hub: the
same engine, on a temporary SQLite store, and the Docker executor (DOCKER_HOST or the
local socket). Its logs go to stderr as they come, the jobs' outputs to stdout
(JOB.NAME=VALUE, or -o json), and the command fails when the run does not succeed.
--event push --repo R --tag T runs it as a push of R:T instead of a manual run.
--secret NAME gives the jobs the secret NAME with the value of the environment
variable NAME (never a flag value). --executor local runs the steps as processes of
this machine, without containers (image, services and resources are ignored): only
for machines without Docker, and only when asked. Ctrl-C cancels the run.`,
		Example: `  hubctl workflow run acme/deploy --input target=staging --input dry_run=true
  hubctl workflow logs --follow "$(hubctl workflow run acme/nightly)"
  hubctl workflow run --local .hubctl/release.yaml --input version=1.2.3
  API_KEY=… hubctl workflow run --local ci.yaml --event push --repo acme/app --tag v1 --secret API_KEY
  hubctl workflow run --local ci.yaml --executor local`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		var err error
		if opts.Namespace, opts.Name, err = splitWorkflow(cmd, args[0]); err != nil {
			return err
		}
		for _, in := range opts.Inputs {
			if k, _, ok := strings.Cut(in, "="); !ok || k == "" {
				return usageErrorf(cmd, "invalid --input %q: want NAME=VALUE", in)
			}
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return workflowRunRun(cmd.Context(), c, opts)
	}))
	cmd.Flags().StringArrayVar(&opts.Inputs, "input", nil, "Set the input `NAME=VALUE` (repeatable)")
	addLocalRun(f, cmd, &opts.Inputs, nil)
	return cmd
}

func workflowRunRun(ctx context.Context, c *hubclient.Client, opts *WorkflowRunOptions) error {
	inputs := map[string]any{}
	var decl []workflow.Input
	if len(opts.Inputs) > 0 {
		// The workflow's declarations say which inputs are booleans.
		w, err := c.GetWorkflow(ctx, opts.Namespace, opts.Name)
		if err != nil {
			return fmt.Errorf("workflow %s/%s: %w", opts.Namespace, opts.Name, err)
		}
		if wf, err := workflow.Parse([]byte(w.Source)); err == nil && wf.On.Manual != nil {
			decl = wf.On.Manual.Inputs
		}
	}
	for _, in := range opts.Inputs {
		k, v, _ := strings.Cut(in, "=")
		inputs[k] = v
		for _, d := range decl {
			if d.Name == k && d.Type == workflow.InputBoolean {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("input %s is a boolean: want true or false, not %q", k, v)
				}
				inputs[k] = b
			}
		}
	}
	run, err := c.RunWorkflow(ctx, opts.Namespace, opts.Name, inputs)
	if err != nil {
		return fmt.Errorf("run workflow %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	fmt.Fprintf(opts.Hub.IO.ErrOut, "Run #%d of %s/%s queued.\n", run.Number, safetext.Escape(opts.Namespace), safetext.Escape(opts.Name))
	if opts.Hub.Output == "json" {
		return printJSON(opts.Hub.IO.Out, run)
	}
	_, err = fmt.Fprintln(opts.Hub.IO.Out, run.ID)
	return err
}

// NewCmdWorkflowRuns returns `hubctl workflow runs NS/NAME`.
func NewCmdWorkflowRuns(f *Factory) *cobra.Command {
	opts := &AdminOptions{}
	var state string
	var limit int
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "runs NS/NAME [--state STATE]",
		Short: "List a workflow's newest runs",
		Args:  checkArgs(cobra.ExactArgs(1)),
	}
	simpleCommand(f, cmd, opts, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		ns, name, err := splitWorkflow(cmd, o.Args[0])
		if err != nil {
			return err
		}
		runs, err := c.ListRuns(ctx, ns, name, state, limit)
		if err != nil {
			return fmt.Errorf("runs of %s: %w", o.Args[0], err)
		}
		return o.Hub.print(runs, []string{"ID", "NUMBER", "TRIGGER", "STATE", "RESULT", "ATTEMPT", "QUEUED", "FINISHED"}, func(row func(cells ...string)) {
			for _, r := range runs {
				row(fmt.Sprint(r.ID), fmt.Sprint(r.Number), r.Trigger, r.State, r.Result, fmt.Sprint(r.Attempt), r.QueuedAt, r.FinishedAt)
			}
		})
	})
	cmd.Flags().StringVar(&state, "state", "", "Only runs in `STATE`: queued, waiting, running, succeeded, failed, cancelled")
	cmd.Flags().IntVar(&limit, "limit", 0, "At most `N` runs (default 20, up to 200)")
	return cmd
}

// WorkflowLogsOptions are the inputs of `hubctl workflow logs`.
type WorkflowLogsOptions struct {
	Hub    HubOptions
	Run    int64
	Job    string
	Follow bool
}

// NewCmdWorkflowLogs returns `hubctl workflow logs RUN`. runF receives the parsed
// options instead of reading the logs.
func NewCmdWorkflowLogs(f *Factory, runF func(*WorkflowLogsOptions) error) *cobra.Command {
	opts := &WorkflowLogsOptions{}
	cmd := &cobra.Command{
		Use:   "logs RUN [--job JOB] [--follow]",
		Short: "Print the logs of a run's jobs (--follow: until they end)",
		Long: `Print the log of each job run of run RUN, one after the other (--job: only JOB, a job
name, a matrix job's display name or a job run id). With --follow, wait for what the
jobs still write until they end.`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		var err error
		opts.Run, err = parseRunID(args[0])
		if err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return workflowLogsRun(cmd.Context(), c, opts)
	}))
	cmd.Flags().StringVar(&opts.Job, "job", "", "Only the log of `JOB`")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "Wait for more until the jobs end")
	return cmd
}

func workflowLogsRun(ctx context.Context, c *hubclient.Client, opts *WorkflowLogsOptions) error {
	jobs := []string{opts.Job}
	if opts.Job == "" {
		run, err := c.GetRun(ctx, opts.Run)
		if err != nil {
			return fmt.Errorf("run %d: %w", opts.Run, err)
		}
		jobs = nil
		for _, j := range run.Jobs {
			jobs = append(jobs, strconv.FormatInt(j.ID, 10))
		}
	}
	tty := opts.Hub.IO.IsStdoutTTY()
	for i, job := range jobs {
		if len(jobs) > 1 {
			fmt.Fprintf(opts.Hub.IO.ErrOut, "==> job %d of %d (job run %s) <==\n", i+1, len(jobs), job)
		}
		var after int64
		for {
			wait := 0
			if opts.Follow {
				wait = logFollowWait
			}
			page, err := c.RunLogs(ctx, opts.Run, job, after, wait)
			if err != nil {
				return fmt.Errorf("logs of run %d: %w", opts.Run, err)
			}
			for _, ch := range page.Chunks {
				if err := writeLog(opts.Hub.IO.Out, ch.Data, tty); err != nil {
					return err
				}
			}
			after = page.Next
			if page.Done || (!opts.Follow && len(page.Chunks) == 0) {
				break
			}
		}
	}
	return nil
}

// writeLog writes text from a hub; on a terminal, control sequences other than
// newlines and tabs are escaped so a log cannot drive the terminal.
func writeLog(w io.Writer, text string, tty bool) error {
	if tty {
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			parts := strings.Split(l, "\t")
			for j, p := range parts {
				parts[j] = safetext.Escape(p)
			}
			lines[i] = strings.Join(parts, "\t")
		}
		text = strings.Join(lines, "\n")
	}
	_, err := io.WriteString(w, text)
	return err
}

// NewCmdWorkflowCancel returns `hubctl workflow cancel RUN`.
func NewCmdWorkflowCancel(f *Factory) *cobra.Command {
	return simpleCommand(f, &cobra.Command{
		Use: "cancel RUN", Short: "Stop a run: jobs not started are cancelled, running ones stopped", Args: checkArgs(cobra.ExactArgs(1)),
	}, &AdminOptions{}, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		id, err := parseRunID(o.Args[0])
		if err != nil {
			return err
		}
		run, err := c.CancelRun(ctx, id)
		if err != nil {
			return fmt.Errorf("cancel run %d: %w", id, err)
		}
		return o.Hub.done(run, "Run %s of %s asked to stop (%s)", fmt.Sprint(run.ID), run.Namespace+"/"+run.Workflow, run.State)
	})
}

// NewCmdWorkflowRerun returns `hubctl workflow rerun RUN`.
func NewCmdWorkflowRerun(f *Factory) *cobra.Command {
	opts := &AdminOptions{}
	var failed bool
	cmd := &cobra.Command{
		Use: "rerun RUN [--failed]", Short: "Run a finished run again (--failed: only the jobs that did not succeed)",
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	simpleCommand(f, cmd, opts, nil, func(ctx context.Context, c *hubclient.Client, o *AdminOptions) error {
		id, err := parseRunID(o.Args[0])
		if err != nil {
			return err
		}
		run, err := c.RerunRun(ctx, id, failed)
		if err != nil {
			return fmt.Errorf("rerun run %d: %w", id, err)
		}
		return o.Hub.done(run, "Run %s of %s queued again (attempt %s)", fmt.Sprint(run.ID), run.Namespace+"/"+run.Workflow, fmt.Sprint(run.Attempt))
	})
	cmd.Flags().BoolVar(&failed, "failed", false, "Only the jobs that failed, timed out, were cancelled or skipped")
	return cmd
}
