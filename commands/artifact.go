package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/artifact"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/hubctl/hubctl/internal/transfer"
	"github.com/hubctl/hubctl/tui"
)

// NewCmdArtifact returns `hubctl artifact`.
func NewCmdArtifact(f *Factory) *cobra.Command {
	return groupCommand("artifact", "Push, pull, attach and discover OCI artifacts",
		`Any files — binaries, SBOMs, signatures, build outputs — as OCI artifacts, in the layout
ORAS uses, so oras and hubctl exchange them: the artifact type in the manifest, one layer
per file named by its org.opencontainers.image.title annotation, directories as
tar+gzip layers that pull unpacks. 'attach' makes an artifact refer to an image (its
subject); 'discover' shows what refers to what, through the referrers API or, on
registries without it, the referrers tag schema.`,
		NewCmdArtifactPush(f, nil), NewCmdArtifactPull(f, nil), NewCmdArtifactAttach(f, nil), NewCmdArtifactDiscover(f, nil))
}

// ArtifactOptions are the inputs of the artifact commands.
type ArtifactOptions struct {
	IO           *iostreams.IOStreams
	Ref          string
	Files        []string
	ArtifactType string
	Annotations  []string
	Subject      string
	Dir          string
	Depth        int
	TransferFlags
	Mode tui.Mode
}

// annotations parses k=v flags.
func (o *ArtifactOptions) annotations() (map[string]string, error) {
	out := map[string]string{}
	for _, a := range o.Annotations {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--annotation %q: want key=value", a)
		}
		out[k] = v
	}
	return out, nil
}

func (o *ArtifactOptions) files() []artifact.File {
	var fs []artifact.File
	for _, f := range o.Files {
		fs = append(fs, artifact.ParseFile(f))
	}
	return fs
}

// artifactCommand wires an artifact verb that moves bytes: progress on stderr, the
// result on stdout.
func artifactCommand(f *Factory, runF func(*ArtifactOptions) error, cmd *cobra.Command, verb string,
	fill func(o *ArtifactOptions, args []string) error,
	work func(ctx context.Context, c *artifact.Client, o *ArtifactOptions, to transfer.Options) (artifact.Result, error)) *cobra.Command {
	opts := &ArtifactOptions{IO: f.IOStreams}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if verb == "pull" && opts.Output != "" && opts.Output != "json" {
			return usageErrorf(cmd, "--output must be json, not %q: the output directory is -d/--dir", opts.Output)
		}
		mode, err := opts.validate(cmd)
		if err != nil {
			return err
		}
		opts.Mode = mode
		if err := fill(opts, args); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		if _, err := opts.annotations(); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		if runF != nil {
			return runF(opts)
		}
		engine, err := newEngine(f, opts.Insecure, opts.Ref, opts.Subject)
		if err != nil {
			return err
		}
		var res artifact.Result
		summary, err := runWithProgress(cmd.Context(), renderOptions(opts.IO, opts.Mode, verb), func(ctx context.Context, sink progress.Sink) error {
			var err error
			res, err = work(ctx, &artifact.Client{Engine: engine}, opts, transfer.Options{Jobs: opts.Jobs, Progress: sink, Limiter: transfer.NewLimiter(int64(opts.Rate))})
			return err
		})
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, firstNonEmpty(opts.Ref, opts.Subject), err)
		}
		if opts.Mode == tui.ModeJSON {
			return json.NewEncoder(opts.IO.Out).Encode(map[string]any{"event": "result", "reference": res.Reference,
				"digest": res.Digest, "files": res.Files, "summary": summary})
		}
		if verb == "pull" {
			for _, p := range res.Files {
				fmt.Fprintln(opts.IO.Out, p)
			}
			return nil
		}
		_, err = fmt.Fprintln(opts.IO.Out, res.Reference)
		return err
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Jobs, "jobs", "j", 4, "Blobs moved in parallel")
	fl.Var(&opts.Rate, "rate", "Cap the bytes sent per second, like 50MiB (a `size`); 0 for no cap")
	opts.bindOutput(fl)
	if verb == "pull" {
		// -o is the output format, as everywhere in hubctl (oras pull's -o DIR is -d
		// here, as in 'hubctl chart pull -d').
		fl.StringVarP(&opts.Dir, "dir", "d", ".", "Write the files into this `directory`")
		fl.StringVar(&opts.Dir, "destination", ".", "Same as --dir, the name 'chart pull' and helm use")
		_ = fl.MarkHidden("destination")
	} else {
		fl.StringVar(&opts.ArtifactType, "artifact-type", "", "The artifact's `type`, a media type (default "+artifact.DefaultArtifactType+")")
		fl.StringArrayVarP(&opts.Annotations, "annotation", "a", nil, "Manifest annotation `key=value` (repeatable)")
	}
	return cmd
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func buildOptions(o *ArtifactOptions) artifact.BuildOptions {
	ann, _ := o.annotations()
	return artifact.BuildOptions{ArtifactType: o.ArtifactType, Annotations: ann}
}

// NewCmdArtifactPush returns `hubctl artifact push`.
func NewCmdArtifactPush(f *Factory, runF func(*ArtifactOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "push REF FILE[:MEDIATYPE]...",
		Short: "Push files (and directories) as an OCI artifact",
		Long: `Push FILEs as one artifact to REF. Each file is a layer named by its base name; a
directory becomes a tar+gzip layer that 'artifact pull' and 'oras pull' unpack. The
reference with its digest goes to stdout.`,
		Example: `  hubctl artifact push hub.example.com/team/tool:1.0 dist/tool-linux-amd64 --artifact-type application/vnd.example.tool
  hubctl artifact push hub.example.com/team/site:v2 public/ -a org.opencontainers.image.source=https://git.example.com/site`,
		Args: checkArgs(cobra.MinimumNArgs(2)),
	}
	return artifactCommand(f, runF, cmd, "push", func(o *ArtifactOptions, args []string) error {
		o.Ref, o.Files = args[0], args[1:]
		return nil
	}, func(ctx context.Context, c *artifact.Client, o *ArtifactOptions, to transfer.Options) (artifact.Result, error) {
		return c.Push(ctx, o.Ref, o.files(), buildOptions(o), to)
	})
}

// NewCmdArtifactAttach returns `hubctl artifact attach`.
func NewCmdArtifactAttach(f *Factory, runF func(*ArtifactOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attach --subject REF FILE[:MEDIATYPE]... --artifact-type TYPE",
		Short: "Attach files to an image as an artifact that refers to it",
		Long: `Push FILEs as an artifact whose subject is the manifest REF names (an SBOM, a signature,
a test report for an image). It is pushed by digest into REF's repository and found
with 'hubctl artifact discover REF' or 'oras discover'.`,
		Example: `  hubctl artifact attach --subject hub.example.com/team/app:1.0 sbom.spdx.json --artifact-type application/spdx+json`,
		Args:    checkArgs(cobra.MinimumNArgs(1)),
	}
	var subject string
	cmd.Flags().StringVar(&subject, "subject", "", "The manifest the artifact refers to (`REF`)")
	return artifactCommand(f, runF, cmd, "attach", func(o *ArtifactOptions, args []string) error {
		o.Subject, o.Files = subject, args
		if o.Subject == "" {
			return fmt.Errorf("--subject is required")
		}
		if o.ArtifactType == "" {
			return fmt.Errorf("--artifact-type is required: it is how referrers are told apart")
		}
		return nil
	}, func(ctx context.Context, c *artifact.Client, o *ArtifactOptions, to transfer.Options) (artifact.Result, error) {
		return c.Attach(ctx, o.Subject, o.files(), buildOptions(o), to)
	})
}

// NewCmdArtifactPull returns `hubctl artifact pull`.
func NewCmdArtifactPull(f *Factory, runF func(*ArtifactOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pull REF [-d DIR]",
		Short: "Pull an artifact's files",
		Long: `Write the files of the artifact REF into DIR, each under its title; directory layers
are unpacked. Layers without a title are skipped, as oras skips them. The paths written
go to stdout (with -o json, one JSON result).`,
		Example: `  hubctl artifact pull hub.example.com/team/tool:1.0 -d bin/
  hubctl artifact pull hub.example.com/team/tool:1.0 -d bin/ -o json`,
		Args: checkArgs(cobra.ExactArgs(1)),
	}
	return artifactCommand(f, runF, cmd, "pull", func(o *ArtifactOptions, args []string) error {
		o.Ref = args[0]
		return nil
	}, func(ctx context.Context, c *artifact.Client, o *ArtifactOptions, to transfer.Options) (artifact.Result, error) {
		return c.Pull(ctx, o.Ref, o.Dir, to)
	})
}

// DiscoverOptions are the inputs of `hubctl artifact discover`.
type DiscoverOptions struct {
	IO       *iostreams.IOStreams
	Ref      string
	Depth    int
	Output   string
	Insecure bool
}

// NewCmdArtifactDiscover returns `hubctl artifact discover`.
func NewCmdArtifactDiscover(f *Factory, runF func(*DiscoverOptions) error) *cobra.Command {
	opts := &DiscoverOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "discover REF",
		Short: "Show the tree of artifacts that refer to a manifest",
		Example: `  hubctl artifact discover hub.example.com/team/app:1.0
  hubctl artifact discover hub.example.com/team/app:1.0 -o json`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if opts.Output != "" && opts.Output != "json" && opts.Output != "tree" {
				return usageErrorf(cmd, "--output must be tree or json, not %q", opts.Output)
			}
			if runF != nil {
				return runF(opts)
			}
			engine, err := newEngine(f, opts.Insecure, opts.Ref)
			if err != nil {
				return err
			}
			n, err := (&artifact.Client{Engine: engine}).Discover(cmd.Context(), opts.Ref, opts.Depth)
			if err != nil {
				return fmt.Errorf("discover %s: %w", opts.Ref, err)
			}
			if opts.Output == "json" {
				return printJSON(opts.IO.Out, n)
			}
			fmt.Fprintf(opts.IO.Out, "%s@%s\n", strings.SplitN(n.Reference, "@", 2)[0], n.Digest)
			printTree(opts.IO.Out, n.Referrers, "")
			return nil
		},
	}
	cmd.Flags().IntVar(&opts.Depth, "depth", 0, "Levels of referrers to follow (0: all)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "tree", "Output format: tree or json")
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "Allow plain HTTP to the registry (loopback always is)")
	return cmd
}

func printTree(w io.Writer, ns []*artifact.Node, prefix string) {
	for i, n := range ns {
		branch, next := "├── ", "│   "
		if i == len(ns)-1 {
			branch, next = "└── ", "    "
		}
		kind := n.ArtifactType
		if kind == "" {
			kind = n.MediaType
		}
		fmt.Fprintf(w, "%s%s%s %s\n", prefix, branch, kind, n.Digest)
		printTree(w, n.Referrers, prefix+next)
	}
}
