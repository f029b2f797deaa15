package commands

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/credentials"
	"github.com/hubctl/hubctl/internal/doctor"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// DoctorOptions are the inputs of `hubctl doctor`.
type DoctorOptions struct {
	IO       *iostreams.IOStreams
	Host     string
	Repo     string
	Insecure bool
	Output   string
	// ConfigDir is docker's configuration directory, where logins are stored.
	ConfigDir string
	Trust     *tlsconf.Trust
}

// errDoctorFailed is the exit status of a check with a failed step; the steps said why.
var errDoctorFailed = errors.New("some checks failed (see above)")

// NewCmdDoctor returns `hubctl doctor`.
func NewCmdDoctor(f *Factory, runF func(*DoctorOptions) error) *cobra.Command {
	o := &DoctorOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "doctor HOST",
		Short: "Check that a registry can be reached, trusted, logged in to and pushed to",
		Long: `Check a registry from this machine, one line per step: the name resolves, the port
answers, TLS and the certificate chain (with the CAs of certs.d and --ca-file), /v2/ and
its token realm, the stored login, and push, pull and delete of a tiny image in a
scratch repository (--repo; by default USER/hubctl-doctor when logged in). A failed step
says what is wrong and what to do; the command exits non-zero when one failed.`,
		Example: `  hubctl doctor hub.example.com
  hubctl doctor 127.0.0.1:5000 --repo team/scratch`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Output != "" && o.Output != "json" {
				return usageErrorf(cmd, "--output must be json, not %q", o.Output)
			}
			o.Host = args[0]
			o.ConfigDir, _ = f.LookupEnv("DOCKER_CONFIG")
			o.Trust = f.Trust()
			if runF != nil {
				return runF(o)
			}
			return doctorRun(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Repo, "repo", "", "Scratch `repository` for the push test (default USER/hubctl-doctor)")
	cmd.Flags().BoolVar(&o.Insecure, "insecure", false, "Talk plain HTTP to a registry that is not on loopback")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "Output `format`: json")
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	return cmd
}

func doctorRun(ctx context.Context, o *DoctorOptions) error {
	store, err := credentials.Load(o.ConfigDir)
	if err != nil {
		return err
	}
	host := credentials.RegistryHost(o.Host)
	repo := o.Repo
	if repo == "" {
		if c, err := store.Get(host); err == nil && c.Username != "" {
			repo = c.Username + "/hubctl-doctor"
		}
	}
	steps := doctor.Run(ctx, doctor.Options{Host: o.Host, Trust: o.Trust, Insecure: o.Insecure, Credentials: store, Repository: repo})
	if o.Output == "json" {
		if err := printJSON(o.IO.Out, steps); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
		for _, s := range steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Status, s.Name, safetext.Escape(s.Detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, s := range steps {
		if s.Status == doctor.Fail {
			return errDoctorFailed
		}
	}
	return nil
}
