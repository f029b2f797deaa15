package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/safetext"
)

// WorkflowDecideOptions are the inputs of `hubctl workflow approve|reject`.
type WorkflowDecideOptions struct {
	Hub     HubOptions
	Run     int64
	Job     string
	Comment string
	Approve bool
}

// NewCmdWorkflowApprove returns `hubctl workflow approve RUN`; runF receives the
// parsed options instead of deciding.
func NewCmdWorkflowApprove(f *Factory, runF func(*WorkflowDecideOptions) error) *cobra.Command {
	return newCmdWorkflowDecide(f, runF, true)
}

// NewCmdWorkflowReject returns `hubctl workflow reject RUN`.
func NewCmdWorkflowReject(f *Factory, runF func(*WorkflowDecideOptions) error) *cobra.Command {
	return newCmdWorkflowDecide(f, runF, false)
}

func newCmdWorkflowDecide(f *Factory, runF func(*WorkflowDecideOptions) error, approve bool) *cobra.Command {
	opts := &WorkflowDecideOptions{Approve: approve}
	verb, short := "approve", "Approve a job of a run that waits for approval"
	long := `Approve a job run waiting for approval (its environment names approvers): once
the number of approvals its environment requires is reached, it runs. Only the
approvers the workflow names may approve, and the account that started the run only
when no one else is named; each approval is audited. Without --job, the run's one
job waiting for approval.`
	example := `  hubctl workflow approve 42
  hubctl workflow approve 42 --job deploy --comment "release notes checked"`
	if !approve {
		verb, short = "reject", "Reject a job of a run that waits for approval: the job fails"
		long = `Reject a job run waiting for approval: it fails at once, with your name and
comment as its error, and the jobs that need it are skipped. The same rules as
'hubctl workflow approve' say who may.`
		example = `  hubctl workflow reject 42 --comment "not during the freeze"`
	}
	cmd := &cobra.Command{
		Use:     verb + " RUN [--job NAME] [--comment TEXT]",
		Short:   short,
		Long:    long,
		Example: example,
		Args:    checkArgs(cobra.ExactArgs(1)),
	}
	hubCommand(f, cmd, &opts.Hub, func(args []string) error {
		var err error
		if opts.Run, err = parseRunID(args[0]); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		if len(opts.Comment) > 1024 {
			return usageErrorf(cmd, "--comment: at most 1024 bytes")
		}
		return nil
	}, hubRun(&opts.Hub, opts, runF, func(c *hubclient.Client) error {
		return workflowDecideRun(cmd.Context(), c, opts)
	}))
	cmd.Flags().StringVar(&opts.Job, "job", "", "The job `NAME` (or job run id) to decide on; default: the run's one job waiting for approval")
	cmd.Flags().StringVar(&opts.Comment, "comment", "", "A `TEXT` recorded with the decision")
	return cmd
}

func workflowDecideRun(ctx context.Context, c *hubclient.Client, opts *WorkflowDecideOptions) error {
	verb := "reject"
	if opts.Approve {
		verb = "approve"
	}
	job := opts.Job
	if job == "" {
		run, err := c.GetRun(ctx, opts.Run)
		if err != nil {
			return fmt.Errorf("%s run %d: %w", verb, opts.Run, err)
		}
		var waiting []string
		for _, j := range run.Jobs {
			if j.State == "waiting_approval" {
				waiting = append(waiting, fmt.Sprint(j.ID))
				job = fmt.Sprint(j.ID)
			}
		}
		switch len(waiting) {
		case 0:
			return fmt.Errorf("%s run %d: no job of the run waits for approval", verb, opts.Run)
		case 1:
		default:
			return fmt.Errorf("%s run %d: %d jobs wait for approval (job run ids %s): choose one with --job", verb, opts.Run,
				len(waiting), strings.Join(waiting, ", "))
		}
	}
	run, err := c.DecideJob(ctx, opts.Run, job, opts.Approve, opts.Comment)
	if err != nil {
		return fmt.Errorf("%s job %s of run %d: %w", verb, job, opts.Run, err)
	}
	if opts.Hub.Output == "json" {
		return printJSON(opts.Hub.IO.Out, run)
	}
	for _, j := range run.Jobs {
		if fmt.Sprint(j.ID) == job || j.Display == job || j.Job == job {
			fmt.Fprintf(opts.Hub.IO.ErrOut, "Job %s of run %d: %s%s.\n", safetext.Escape(j.Display), run.ID, j.State, approvalSummary(j.Approval))
			return nil
		}
	}
	return nil
}

// approvalSummary is ", 1 of 2 approvals" for a job run that waited for approval.
func approvalSummary(a *hubtypes.WorkflowApproval) string {
	if a == nil {
		return ""
	}
	n := 0
	for _, d := range a.Decisions {
		if d.Decision == "approve" {
			n++
		}
	}
	return fmt.Sprintf(", %d of %d approvals", n, a.Required)
}

// showRun prints run id: its jobs, their states and approvals.
func showRun(ctx context.Context, c *hubclient.Client, o *AdminOptions, id int64) error {
	run, err := c.GetRun(ctx, id)
	if err != nil {
		return fmt.Errorf("run %d: %w", id, err)
	}
	if o.Hub.Output == "json" {
		return printJSON(o.Hub.IO.Out, run)
	}
	return writeRun(o.Hub.IO.Out, run)
}

// writeRun is the human view of a run: a line for it, one per job run, and the
// approvals of those that waited for approval.
func writeRun(w io.Writer, run hubtypes.WorkflowRun) error {
	e := safetext.Escape
	state := run.State
	if run.Result != "" {
		state += " (" + run.Result + ")"
	}
	fmt.Fprintf(w, "Run %d: %s #%d, %s, %s, attempt %d\n", run.ID, e(run.Namespace+"/"+run.Workflow), run.Number, e(run.Trigger),
		e(state), run.Attempt)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tID\tSTATE\tSTEPS\tAPPROVALS\tERROR")
	for _, j := range run.Jobs {
		approvals := ""
		if a := j.Approval; a != nil {
			var who []string
			for _, d := range a.Decisions {
				who = append(who, d.Account+" "+d.Decision+"d")
			}
			approvals = strings.TrimPrefix(approvalSummary(a), ", ")
			if len(who) > 0 {
				approvals += ": " + strings.Join(who, ", ")
			}
			if j.State == "waiting_approval" {
				approvals += " (approvers " + strings.Join(a.Approvers, ", ") + "; until " + a.Deadline + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", e(j.Display), j.ID, e(j.State), e(stepsSummary(j.Steps)), e(approvals), e(j.Error))
	}
	return tw.Flush()
}

// stepsSummary is a job run's steps in one cell: each step's state in order
// ("succeeded, timed_out, skipped"), with how many times it was started when that is
// more than once (a retried job restarts its steps; a re-attached one must not).
func stepsSummary(steps []hubtypes.WorkflowStep) string {
	parts := make([]string, 0, len(steps))
	for _, st := range steps {
		p := st.State
		if st.Starts > 1 {
			p += fmt.Sprintf(" (started %d times)", st.Starts)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
