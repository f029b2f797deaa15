package commands

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
)

// NewCmdDeploy returns `hubctl deploy`, services on Docker hosts and Kubernetes.
func NewCmdDeploy(f *Factory) *cobra.Command {
	return groupCommand("deploy", "Deploy files: services on Docker hosts (zero-downtime, behind hubctl's proxy) or Kubernetes",
		`A deploy file (deploy.yaml, docs/deploy.md) says what runs — one service's image,
pinned by digest — and where: Docker hosts (the local engine, ssh:// or tcp:// with
TLS) behind hubctl's proxy mode, or a helm release on Kubernetes. up and update
deploy with a health-gated, zero-downtime switch; each deploy is recorded (history,
rollback) and holds the service's lock while it runs. validate checks files here.`,
		NewCmdDeployUp(f, "up", nil),
		NewCmdDeployUp(f, "update", nil),
		NewCmdDeployDown(f),
		NewCmdDeployStatus(f),
		NewCmdDeployInspect(f),
		NewCmdDeployLogs(f),
		NewCmdDeployHistory(f),
		NewCmdDeployRollback(f),
		NewCmdDeployLock(f),
		NewCmdDeployValidate(f, nil),
		NewCmdDeploySchema(f))
}

// DeployValidateOptions are the inputs of `hubctl deploy validate`.
type DeployValidateOptions struct {
	IO     *iostreams.IOStreams
	Files  []string
	Output string
}

// DeployValidation is what `hubctl deploy validate -o json` prints for one file.
type DeployValidation struct {
	File    string         `json:"file"`
	OK      bool           `json:"ok"`
	Service string         `json:"service,omitempty"`
	Target  string         `json:"target,omitempty"` // docker or kubernetes
	Tasks   []HostTasks    `json:"tasks,omitempty"`
	Errors  []deploy.Error `json:"errors"`
}

// HostTasks is how many of a service's tasks a host runs.
type HostTasks struct {
	Host  string `json:"host"`
	Tasks int    `json:"tasks"`
}

var errDeployInvalid = errors.New("deploy files have errors (see above)")

// NewCmdDeployValidate returns `hubctl deploy validate`. runF receives the parsed
// options instead of validating.
func NewCmdDeployValidate(f *Factory, runF func(*DeployValidateOptions) error) *cobra.Command {
	opts := &DeployValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check deploy files and report every error with its line and column",
		Long: `Check deploy files as a deploy will: the YAML (unknown keys are errors), names and
bounds, the image reference, ports, volumes, engine addresses, replicas against
hosts and ports published on one host, the chart. Each file prints
"FILE: ok (SERVICE: N tasks on HOST, …)" or one line per error,
"FILE:LINE:COLUMN: message"; the command exits non-zero when any file has an error.
"-" reads standard input.`,
		Example: `  hubctl deploy validate deploy.yaml
  hubctl deploy validate -o json deploy.yaml`,
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
			return deployValidateRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json, one object per file (default one line per file or error)")
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return cmd
}

func deployValidateRun(opts *DeployValidateOptions) error {
	failed := false
	for _, file := range opts.Files {
		v := ValidateDeployFile(file, opts.IO.In)
		failed = failed || !v.OK
		if opts.Output == "json" {
			if err := printJSON(opts.IO.Out, v); err != nil {
				return err
			}
			continue
		}
		name := safetext.Escape(file)
		if !v.OK {
			for _, e := range v.Errors {
				fmt.Fprintf(opts.IO.Out, "%s:%d:%d: %s\n", name, e.Line, e.Col, safetext.Escape(e.Msg))
			}
			continue
		}
		if v.Target == "kubernetes" {
			fmt.Fprintf(opts.IO.Out, "%s: ok (%s: a helm release on Kubernetes)\n", name, safetext.Escape(v.Service))
			continue
		}
		fmt.Fprintf(opts.IO.Out, "%s: ok (%s:", name, safetext.Escape(v.Service))
		for i, h := range v.Tasks {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(opts.IO.Out, "%s %d on %s", sep, h.Tasks, safetext.Escape(h.Host))
		}
		fmt.Fprintln(opts.IO.Out, ")")
	}
	if failed {
		return errDeployInvalid
	}
	return nil
}

// ValidateDeployFile reads and validates one deploy file ("-" is stdin). A file that
// cannot be read is reported as an error at 1:1.
func ValidateDeployFile(file string, stdin io.Reader) DeployValidation {
	v := DeployValidation{File: file, Errors: []deploy.Error{}}
	src, err := readDeployFile(file, stdin)
	if err != nil {
		v.Errors = append(v.Errors, deploy.Error{Pos: deploy.Pos{Line: 1, Col: 1}, Msg: err.Error()})
		return v
	}
	s, err := deploy.Parse(src)
	var es deploy.Errors
	switch {
	case errors.As(err, &es):
		v.Errors = es
	case err != nil:
		v.Errors = append(v.Errors, deploy.Error{Pos: deploy.Pos{Line: 1, Col: 1}, Msg: err.Error()})
	default:
		v.OK, v.Service = true, s.Service.Name
		if s.Kubernetes != nil {
			v.Target = "kubernetes"
			break
		}
		v.Target = "docker"
		for i, n := range s.Placement() {
			v.Tasks = append(v.Tasks, HostTasks{Host: s.Hosts[i].Name, Tasks: n})
		}
	}
	return v
}

func readDeployFile(file string, stdin io.Reader) ([]byte, error) {
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
	return io.ReadAll(io.LimitReader(r, deploy.MaxFileSize+1))
}

// NewCmdDeploySchema returns `hubctl deploy schema`.
func NewCmdDeploySchema(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of deploy files, for editors",
		Long: `Print the JSON Schema (draft 2020-12) of deploy files, as published in
docs/deploy.schema.json, for an editor's YAML language server. validate checks more
than the schema can say.`,
		Example: `  hubctl deploy schema > .vscode/deploy.schema.json`,
		Args:    checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := f.IOStreams.Out.Write(deploy.Schema)
			return err
		},
	}
}
