package commands

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/workflow"
)

// NewCmdWorkflow returns `hubctl workflow`, workflow files and their runs on a hub.
func NewCmdWorkflow(f *Factory) *cobra.Command {
	return groupCommand("workflow", "Workflows: YAML pipelines of container steps that a hub runs",
		`Workflows are YAML files of jobs, each a series of container steps, started by what
happens in a hub: a push, a deleted tag, a schedule, a webhook call, a person, or
another workflow (docs/workflows.md). validate checks files here; apply stores one on
a hub, whose engine runs it (hubctl serve with workflows.executor: docker); run, runs,
show RUN, logs, approve, reject, cancel and rerun follow its runs; artifacts and
download fetch what its jobs kept.`,
		NewCmdWorkflowValidate(f, nil),
		NewCmdWorkflowApply(f, nil),
		NewCmdWorkflowLs(f),
		NewCmdWorkflowShow(f),
		NewCmdWorkflowRm(f),
		NewCmdWorkflowRun(f, nil),
		NewCmdWorkflowRuns(f),
		NewCmdWorkflowLogs(f, nil),
		NewCmdWorkflowCancel(f),
		NewCmdWorkflowRerun(f),
		NewCmdWorkflowApprove(f, nil),
		NewCmdWorkflowReject(f, nil),
		NewCmdWorkflowSecret(f),
		NewCmdWorkflowHookSecret(f),
		NewCmdWorkflowArtifacts(f),
		NewCmdWorkflowDownload(f, nil))
}

// WorkflowValidateOptions are the inputs of `hubctl workflow validate`.
type WorkflowValidateOptions struct {
	IO     *iostreams.IOStreams
	Files  []string
	Output string
}

// WorkflowValidation is what `hubctl workflow validate -o json` prints for one file.
type WorkflowValidation struct {
	File   string           `json:"file"`
	OK     bool             `json:"ok"`
	Jobs   int              `json:"jobs"`
	Runs   int              `json:"runs"`
	Errors []workflow.Error `json:"errors"`
}

// errWorkflowInvalid is the exit status of a validation that found errors; the
// lines above said which.
var errWorkflowInvalid = errors.New("workflow files have errors (see above)")

// NewCmdWorkflowValidate returns `hubctl workflow validate`. runF receives the
// parsed options instead of validating.
func NewCmdWorkflowValidate(f *Factory, runF func(*WorkflowValidateOptions) error) *cobra.Command {
	opts := &WorkflowValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check workflow files and report every error with its line and column",
		Long: `Check workflow files as the hub will: the YAML (unknown keys are errors), names and
bounds, triggers (patterns, cron entries, inputs), the needs graph (unknown jobs and
cycles), matrices, and every if: and ${{ … }} expression against the names it may
read. Each file prints "FILE: ok (N jobs, M runs after matrix)" or one line per error,
"FILE:LINE:COLUMN: message"; the command exits non-zero when any file has an error.
"-" reads standard input.`,
		Example: `  hubctl workflow validate .hubctl/*.yaml
  hubctl workflow validate -o json release.yaml
  cat release.yaml | hubctl workflow validate -`,
		Args: checkArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output != "" && opts.Output != "json" {
				return usageErrorf(cmd, "invalid --output %q: want json", opts.Output)
			}
			opts.IO = f.IOStreams
			opts.Files = args
			if runF != nil {
				return runF(opts)
			}
			return workflowValidateRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json, one object per file (default one line per file or error)")
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return cmd
}

func workflowValidateRun(opts *WorkflowValidateOptions) error {
	failed := false
	for _, file := range opts.Files {
		v := ValidateWorkflowFile(file, opts.IO.In)
		failed = failed || !v.OK
		if opts.Output == "json" {
			if err := printJSON(opts.IO.Out, v); err != nil {
				return err
			}
			continue
		}
		name := safetext.Escape(file)
		if v.OK {
			fmt.Fprintf(opts.IO.Out, "%s: ok (%d jobs, %d runs after matrix)\n", name, v.Jobs, v.Runs)
			continue
		}
		for _, e := range v.Errors {
			fmt.Fprintf(opts.IO.Out, "%s:%d:%d: %s\n", name, e.Line, e.Col, safetext.Escape(e.Msg))
		}
	}
	if failed {
		return errWorkflowInvalid
	}
	return nil
}

// ValidateWorkflowFile reads and validates one workflow file ("-" is stdin). A file
// that cannot be read is reported as an error at 1:1.
func ValidateWorkflowFile(file string, stdin io.Reader) WorkflowValidation {
	v := WorkflowValidation{File: file, Errors: []workflow.Error{}}
	src, err := readWorkflowFile(file, stdin)
	if err != nil {
		v.Errors = append(v.Errors, workflow.Error{Pos: workflow.Pos{Line: 1, Col: 1}, Msg: err.Error()})
		return v
	}
	w, err := workflow.Parse(src)
	var es workflow.Errors
	switch {
	case errors.As(err, &es):
		v.Errors = es
	case err != nil:
		v.Errors = append(v.Errors, workflow.Error{Pos: workflow.Pos{Line: 1, Col: 1}, Msg: err.Error()})
	default:
		v.OK, v.Jobs, v.Runs = true, len(w.Jobs), w.Runs()
	}
	return v
}

// readWorkflowFile reads at most one byte more than a workflow may hold, so a huge
// file (or /dev/zero) is refused by size without being read whole.
func readWorkflowFile(file string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, fmt.Errorf("%s is a directory", file)
		}
		r = f
	}
	if r == nil {
		return nil, errors.New("no standard input")
	}
	return io.ReadAll(io.LimitReader(r, workflow.MaxFileSize+1))
}
