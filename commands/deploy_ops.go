package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/safetext"
)

// The verbs around a deployed service: down, status, inspect, logs, history,
// rollback, lock break.

// deployVerb binds the deploy options onto cmd (deploys: the flags of the verbs that
// deploy too) and makes its RunE check them and call run: the shape every verb of
// a deployed service shares.
func deployVerb(f *Factory, cmd *cobra.Command, deploys bool, run func(cmd *cobra.Command, o *DeployOptions, args []string) error) *DeployOptions {
	opts := &DeployOptions{}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := opts.check(cmd, f); err != nil {
			return err
		}
		return run(cmd, opts, args)
	}
	opts.bind(cmd, deploys)
	return opts
}

// NewCmdDeployDown returns `hubctl deploy down`.
func NewCmdDeployDown(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the service from its hosts: tasks, accessories, proxy, network",
		Long: `Remove every container the deploys of the service made on its hosts (tasks,
accessories, the proxy), its network and the proxy's state volume, under the
service's lock. Named volumes of the tasks and accessories are kept unless
--volumes. Nothing without the service's labels is touched.`,
		Args: checkArgs(cobra.NoArgs),
	}
	opts := deployVerb(f, cmd, false, func(cmd *cobra.Command, o *DeployOptions, _ []string) error {
		return deployDownRun(cmd.Context(), f, o)
	})
	cmd.Flags().BoolVar(&opts.Volumes, "volumes", false, "Remove the named volumes the deploys made too")
	return cmd
}

func deployDownRun(ctx context.Context, f *Factory, o *DeployOptions) error {
	s, _, err := loadDeploySpec(o)
	if err != nil {
		return err
	}
	hub, err := openDeployHub(f, o, s)
	if err != nil {
		return err
	}
	if s.Kubernetes != nil {
		rel, err := deployRelease(f, o, s)
		if err != nil {
			return err
		}
		var locks []deploy.HostLock
		if hub == nil {
			if locks, err = kubeLocks(s); err != nil {
				return err
			}
		}
		unlock, err := lockForDown(ctx, o, s, hub, locks)
		if err != nil {
			return err
		}
		defer unlock()
		return rel.Uninstall(ctx, s)
	}
	hosts, err := dialHosts(ctx, f, o, s)
	if err != nil {
		return err
	}
	defer closeHosts(hosts)
	var locks []deploy.HostLock
	if hub == nil {
		locks = hostLocks(hosts)
	}
	unlock, err := lockForDown(ctx, o, s, hub, locks)
	if err != nil {
		return err
	}
	defer unlock()
	d := &deploy.Deployer{Log: o.IO.ErrOut, Targets: deployTargets(hosts)}
	if err := d.Down(ctx, s.Service.Name, o.Volumes); err != nil {
		return err
	}
	fmt.Fprintf(o.IO.ErrOut, "%s: removed from %d hosts\n", safetext.Escape(s.Service.Name), len(hosts))
	return nil
}

// lockForDown takes the lock a deploy of s would take, for down: the hub's when a
// hub is used, else locks (each host's, or the release's lease); it renews it
// while down runs and answers the function that releases it.
func lockForDown(ctx context.Context, o *DeployOptions, s *deploy.Spec, hub *deployHub, locks []deploy.HostLock) (func(), error) {
	service := s.Service.Name
	holder := deployHolder()
	holder.Acquired = time.Now()
	holder.Expires = holder.Acquired.Add(deploy.LockTTL)
	var renew func(context.Context) error
	var release func(context.Context)
	if hub != nil {
		if err := hub.hist.TakeLock(ctx, service, holder); err != nil {
			return nil, err
		}
		renew = func(ctx context.Context) error { return hub.hist.TakeLock(ctx, service, holder) }
		release = func(ctx context.Context) { _ = hub.hist.ReleaseLock(ctx, service, holder) }
	} else {
		var taken []deploy.HostLock
		release = func(ctx context.Context) {
			for _, l := range taken {
				_ = l.Unlock(ctx, service, holder)
			}
		}
		for _, l := range locks {
			if err := l.Lock(ctx, service, holder); err != nil {
				release(context.WithoutCancel(ctx))
				return nil, err
			}
			taken = append(taken, l)
		}
		renew = func(ctx context.Context) error {
			var errs []error
			for _, l := range taken {
				errs = append(errs, l.Renew(ctx, service, holder))
			}
			return errors.Join(errs...)
		}
	}
	stop := renewEvery(ctx, deploy.LockRenew, o.IO.ErrOut, renew)
	return func() {
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		release(rctx)
	}, nil
}

// NewCmdDeployStatus returns `hubctl deploy status`.
func NewCmdDeployStatus(f *Factory) *cobra.Command {
	cmd, opts := newDeployViewCmd(f, "status", "Show the service's containers on each host: version, state, routed by the proxy", false)
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json")
	return cmd
}

// NewCmdDeployInspect returns `hubctl deploy inspect`.
func NewCmdDeployInspect(f *Factory) *cobra.Command {
	cmd, _ := newDeployViewCmd(f, "inspect", "Print the service's last deploy record and its containers on each host, as JSON", true)
	return cmd
}

// newDeployViewCmd builds the two read-only views of a service, status and inspect.
func newDeployViewCmd(f *Factory, use, short string, inspect bool) (*cobra.Command, *DeployOptions) {
	cmd := &cobra.Command{Use: use, Short: short, Args: checkArgs(cobra.NoArgs)}
	opts := deployVerb(f, cmd, false, func(cmd *cobra.Command, o *DeployOptions, _ []string) error {
		return deployStatusRun(cmd.Context(), f, o, inspect)
	})
	return cmd, opts
}

// DeployInspection is what `hubctl deploy inspect` prints.
type DeployInspection struct {
	Service string             `json:"service"`
	Last    *deploy.Record     `json:"last,omitempty"`
	Hosts   []deploy.HostState `json:"hosts"`
}

func deployStatusRun(ctx context.Context, f *Factory, o *DeployOptions, inspect bool) error {
	s, _, err := loadDeploySpec(o)
	if err != nil {
		return err
	}
	if s.Kubernetes != nil {
		return deployKubeHistory(ctx, f, o, s)
	}
	hosts, err := dialHosts(ctx, f, o, s)
	if err != nil {
		return err
	}
	defer closeHosts(hosts)
	d := &deploy.Deployer{Targets: deployTargets(hosts)}
	states, err := d.Observe(ctx, s.Service.Name)
	if err != nil {
		return err
	}
	if inspect {
		out := DeployInspection{Service: s.Service.Name, Hosts: states}
		hub, err := openDeployHub(f, o, s)
		if err != nil {
			return err
		}
		hist, err := deployHistory(o, hub, nil)
		if err != nil {
			return err
		}
		if recs, err := hist.List(ctx, s.Service.Name); err != nil {
			return err
		} else if len(recs) > 0 {
			out.Last = &recs[0]
		}
		return printJSON(o.IO.Out, out)
	}
	if o.Output == "json" {
		return printJSON(o.IO.Out, states)
	}
	tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tCONTAINER\tROLE\tVERSION\tSTATE\tROUTED\tPUBLISHED")
	for _, st := range states {
		for _, c := range st.Containers {
			ver := "-"
			if c.Version > 0 {
				ver = strconv.Itoa(c.Version)
			}
			routed := "-"
			if c.Role == deploy.RoleTask {
				routed = yesNo(c.Routed)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safetext.Escape(st.Host), safetext.Escape(c.Name), c.Role, ver,
				safetext.Escape(c.State), routed, safetext.Escape(strings.Join(c.Published, ",")))
		}
	}
	return tw.Flush()
}

func deployKubeHistory(ctx context.Context, f *Factory, o *DeployOptions, s *deploy.Spec) error {
	rel, err := deployRelease(f, o, s)
	if err != nil {
		return err
	}
	revs, err := rel.History(ctx, s)
	if err != nil {
		return err
	}
	return printJSON(o.IO.Out, revs)
}

// NewCmdDeployLogs returns `hubctl deploy logs`.
func NewCmdDeployLogs(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs [CONTAINER]",
		Short: "Print the logs of the service's tasks (or one container of it)",
		Long: `Print the last lines of the logs of every task of the service on its hosts (or of
one container of it, a task, an accessory or the proxy). With --follow, stream them
until interrupted, each line prefixed with HOST/TASK; a task a deploy starts while
following (replacing an old one) is picked up and shown from its first line.`,
		Example: `  hubctl deploy logs --tail 20
  hubctl deploy logs --follow`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
	}
	opts := deployVerb(f, cmd, false, func(cmd *cobra.Command, o *DeployOptions, args []string) error {
		if len(args) == 1 {
			o.Task = args[0]
		}
		return deployLogsRun(cmd.Context(), f, o)
	})
	cmd.Flags().StringVar(&opts.Tail, "tail", "100", "Lines from the end of each log (`N` or all)")
	cmd.Flags().BoolVar(&opts.Follow, "follow", false, "Stream the logs until interrupted, picking up tasks started meanwhile")
	return cmd
}

func deployLogsRun(ctx context.Context, f *Factory, o *DeployOptions) error {
	s, _, err := loadDeploySpec(o)
	if err != nil {
		return err
	}
	if s.Kubernetes != nil {
		return errors.New("logs of a Kubernetes release: use kubectl logs")
	}
	if o.Follow {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	hosts, err := dialHosts(ctx, f, o, s)
	if err != nil {
		return err
	}
	defer closeHosts(hosts)
	if o.Follow && o.Task == "" {
		srcs := make([]deploy.LogSource, len(hosts))
		for i, h := range hosts {
			srcs[i] = h
		}
		return deploy.FollowLogs(ctx, srcs, s.Service.Name, o.Tail, o.IO.Out, deploy.FollowPoll)
	}
	found := false
	for _, h := range hosts {
		st, err := h.Observe(ctx, s.Service.Name)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name(), err)
		}
		for _, c := range st.Containers {
			if o.Task != "" && c.Name != o.Task || o.Task == "" && c.Role != deploy.RoleTask {
				continue
			}
			found = true
			fmt.Fprintf(o.IO.ErrOut, "==> %s/%s <==\n", safetext.Escape(h.Name()), safetext.Escape(c.Name))
			if err := h.Logs(ctx, c.ID, o.Tail, o.Follow, o.IO.Out, o.IO.Out); err != nil {
				return err
			}
		}
	}
	if !found && o.Task != "" {
		return fmt.Errorf("no container %s of %s on its hosts", o.Task, s.Service.Name)
	}
	return nil
}

// NewCmdDeployHistory returns `hubctl deploy history`.
func NewCmdDeployHistory(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the service's deploys, newest first: number, outcome, image, who, when",
		Args:  checkArgs(cobra.NoArgs),
	}
	opts := deployVerb(f, cmd, false, func(cmd *cobra.Command, o *DeployOptions, _ []string) error {
		return deployHistoryRun(cmd.Context(), f, o)
	})
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json")
	return cmd
}

func deployHistoryRun(ctx context.Context, f *Factory, o *DeployOptions) error {
	s, _, err := loadDeploySpec(o)
	if err != nil {
		return err
	}
	if s.Kubernetes != nil {
		return deployKubeHistory(ctx, f, o, s)
	}
	hub, err := openDeployHub(f, o, s)
	if err != nil {
		return err
	}
	hist, err := deployHistory(o, hub, nil)
	if err != nil {
		return err
	}
	recs, err := hist.List(ctx, s.Service.Name)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		if recs == nil {
			recs = []deploy.Record{}
		}
		return printJSON(o.IO.Out, recs)
	}
	tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tOUTCOME\tSTARTED\tBY\tIMAGE\tNOTE")
	for _, r := range recs {
		note := r.Error
		if r.RollbackOf > 0 {
			note = strings.TrimSpace(fmt.Sprintf("rollback to %d %s", r.RollbackOf, note))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Number, r.Outcome, r.Started.Local().Format(time.DateTime),
			safetext.Escape(r.By), safetext.Escape(r.Digests[deploy.DigestKey]), safetext.Escape(clipNote(note)))
	}
	return tw.Flush()
}

func clipNote(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// NewCmdDeployRollback returns `hubctl deploy rollback`.
func NewCmdDeployRollback(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback [VERSION]",
		Short: "Re-deploy an earlier deploy's spec and pinned images (default: the previous succeeded one)",
		Long: `Re-deploy the spec and pinned digests recorded for deploy VERSION (see history),
through the same health-gated, zero-downtime sequence as update; with the image
still on the hosts it takes seconds. Without VERSION, the succeeded deploy before
the last succeeded one. The rollback is recorded as a deploy of its own.`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
	}
	opts := deployVerb(f, cmd, true, func(cmd *cobra.Command, o *DeployOptions, args []string) error {
		if len(args) == 1 {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return usageErrorf(cmd, "VERSION %q: want a deploy number from hubctl deploy history", args[0])
			}
			o.Version = n
		}
		return deployRollbackRun(cmd.Context(), f, o)
	})
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output `format`: json")
	return cmd
}

func deployRollbackRun(ctx context.Context, f *Factory, o *DeployOptions) error {
	s, _, err := loadDeploySpec(o)
	if err != nil {
		return err
	}
	if s.Kubernetes != nil {
		rel, err := deployRelease(f, o, s)
		if err != nil {
			return err
		}
		rev, err := rel.Rollback(ctx, s, o.Version)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.IO.Out, "%s: revision %d %s\n", safetext.Escape(s.Service.Name), rev.Revision, safetext.Escape(rev.Status))
		return nil
	}
	hub, err := openDeployHub(f, o, s)
	if err != nil {
		return err
	}
	hist, err := deployHistory(o, hub, nil)
	if err != nil {
		return err
	}
	var rec deploy.Record
	if o.Version > 0 {
		if rec, err = hist.Get(ctx, s.Service.Name, o.Version); err != nil {
			return err
		}
	} else {
		recs, err := hist.List(ctx, s.Service.Name)
		if err != nil {
			return err
		}
		seen := 0
		for _, r := range recs {
			if r.Outcome == deploy.OutcomeSucceeded {
				if seen++; seen == 2 {
					rec = r
					break
				}
			}
		}
		if rec.Number == 0 {
			return fmt.Errorf("%s has no succeeded deploy before its last one to roll back to", s.Service.Name)
		}
		// A hub's listing carries no specs: the record itself does.
		if rec.SpecYAML == "" {
			if rec, err = hist.Get(ctx, s.Service.Name, rec.Number); err != nil {
				return err
			}
		}
	}
	if rec.Target != "docker" || rec.Digests[deploy.DigestKey] == "" {
		return fmt.Errorf("deploy %d of %s holds no Docker deploy to re-deploy", rec.Number, s.Service.Name)
	}
	old, err := deploy.Parse([]byte(rec.SpecYAML))
	if err != nil {
		return fmt.Errorf("the spec recorded with deploy %d: %w", rec.Number, err)
	}
	if old.Service.Name != s.Service.Name {
		return fmt.Errorf("deploy %d is of service %s, not %s", rec.Number, old.Service.Name, s.Service.Name)
	}
	fmt.Fprintf(o.IO.ErrOut, "%s: rolling back to deploy %d (%s)\n", safetext.Escape(s.Service.Name), rec.Number, safetext.Escape(rec.Digests[deploy.DigestKey]))
	return deployDocker(ctx, f, o, old, rec.SpecYAML, rec.Digests, rec.Number)
}

// NewCmdDeployLock returns `hubctl deploy lock`.
func NewCmdDeployLock(f *Factory) *cobra.Command {
	brk := &cobra.Command{
		Use:   "break",
		Short: "Remove the service's deploy lock, whoever holds it (a deploy that died)",
		Long: `Remove the service's deploy lock on its hosts whoever holds it. A lock whose holder
stopped renewing it (60 s), or whose holder was a hubctl of this machine that has
ended, is taken over by the next deploy anyway; break is for the others.`,
		Args: checkArgs(cobra.NoArgs),
	}
	deployVerb(f, brk, false, func(cmd *cobra.Command, o *DeployOptions, _ []string) error {
		return deployLockBreakRun(cmd.Context(), f, o)
	})
	return groupCommand("lock", "The service's deploy lock", "A deploy holds its service's lock while it runs, so two never run at once.", brk)
}

func deployLockBreakRun(ctx context.Context, f *Factory, o *DeployOptions) error {
	s, _, err := loadDeploySpec(o)
	if err != nil {
		return err
	}
	hub, err := openDeployHub(f, o, s)
	if err != nil {
		return err
	}
	var locks []deploy.HostLock
	switch {
	case hub != nil:
	case s.Kubernetes != nil:
		if locks, err = kubeLocks(s); err != nil {
			return err
		}
	default:
		hosts, err := dialHosts(ctx, f, o, s)
		if err != nil {
			return err
		}
		defer closeHosts(hosts)
		locks = hostLocks(hosts)
	}
	hist, err := deployHistory(o, hub, locks)
	if err != nil {
		return err
	}
	if err := hist.BreakLock(ctx, s.Service.Name); err != nil {
		return err
	}
	fmt.Fprintf(o.IO.ErrOut, "%s: lock removed\n", safetext.Escape(s.Service.Name))
	return nil
}

// renewEvery is deploy.RenewEvery with failures printed to errOut.
func renewEvery(ctx context.Context, period time.Duration, errOut io.Writer, renew func(context.Context) error) (stop func()) {
	return deploy.RenewEvery(ctx, period, func(err error) { fmt.Fprintf(errOut, "renew lock: %v\n", err) }, renew)
}
