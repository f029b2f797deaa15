package dockerhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/deploy/proxy"
)

// maxExecOutput bounds what an exec's output may hold in memory.
const maxExecOutput = 1 << 20

// exec runs cmd in the container and answers its stdout, stderr and exit code.
func (h *Host) exec(ctx context.Context, id string, cmd []string) (string, string, int, error) {
	ex, err := h.api.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", "", -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	att, err := h.api.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return "", "", -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	var out, errOut limited
	out.n, errOut.n = maxExecOutput, maxExecOutput
	stop := context.AfterFunc(ctx, func() { att.Close() })
	_, err = stdcopy.StdCopy(&out, &errOut, att.Reader)
	stop()
	att.Close()
	if ctx.Err() != nil {
		return "", "", -1, ctx.Err()
	}
	if err != nil {
		return "", "", -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	ins, err := h.api.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return "", "", -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	return out.String(), errOut.String(), ins.ExitCode, nil
}

// limited keeps the first n bytes written and drops the rest.
type limited struct {
	bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Check runs cmd in the container: nil when it exits 0.
func (h *Host) Check(ctx context.Context, container string, cmd []string) error {
	_, stderr, code, err := h.exec(ctx, container, cmd)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("health command exited %d: %s", code, clip(stderr))
	}
	return nil
}

// Switch runs `hubctl proxy deploy` in the service's proxy container.
func (h *Host) Switch(ctx context.Context, service string, req proxy.DeployRequest) (proxy.DeployResult, error) {
	var res proxy.DeployResult
	args := []string{"/hubctl", "proxy", "deploy", service, "-o", "json",
		"--health-path", req.Health.Path,
		"--health-interval", req.Health.Interval.D().String(),
		"--health-timeout", req.Health.Timeout.D().String(),
		"--health-threshold", fmt.Sprint(req.Health.Threshold),
		"--deploy-timeout", req.DeployTimeout.D().String(),
		"--drain-timeout", req.DrainTimeout.D().String(),
	}
	for _, t := range req.Targets {
		args = append(args, "--target", t)
	}
	for _, host := range req.Hosts {
		args = append(args, "--host", host)
	}
	out, stderr, code, err := h.exec(ctx, deploy.ProxyName(service), args)
	if err != nil {
		return res, err
	}
	if code != 0 {
		msg := clip(strings.TrimPrefix(strings.TrimSpace(stderr), "hubctl: "))
		if strings.Contains(msg, proxy.ErrBusy.Error()) {
			return res, fmt.Errorf("%s: %w", msg, proxy.ErrBusy)
		}
		return res, errors.New(msg)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return res, fmt.Errorf("proxy deploy answered %q: %w", clip(out), err)
	}
	return res, nil
}

// proxyStatus answers the proxy's routing of the service (zero when it routes none).
func (h *Host) proxyStatus(ctx context.Context, proxyID, service string) (proxy.Status, error) {
	out, stderr, code, err := h.exec(ctx, proxyID, []string{"/hubctl", "proxy", "status", "-o", "json"})
	if err != nil {
		return proxy.Status{}, err
	}
	if code != 0 {
		return proxy.Status{}, fmt.Errorf("proxy status: %s", clip(strings.TrimSpace(stderr)))
	}
	var sts []proxy.Status
	if err := json.Unmarshal([]byte(out), &sts); err != nil {
		return proxy.Status{}, fmt.Errorf("proxy status answered %q: %w", clip(out), err)
	}
	h.setAnswered(proxyID)
	for _, st := range sts {
		if st.Service == service {
			return st, nil
		}
	}
	return proxy.Status{}, nil
}

// routed answers the task names the proxy routes the service to.
func (h *Host) routed(ctx context.Context, proxyID, service string) (map[string]bool, error) {
	st, err := h.proxyStatus(ctx, proxyID, service)
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, t := range st.Targets {
		name, _, _ := strings.Cut(t.Address, ":")
		m[name] = true
	}
	return m, nil
}

// maxIdleWait bounds WaitIdle: a switch ends within its deploy and drain timeouts,
// each at most an hour by the spec, but a deploy should not hang on a stuck proxy.
const maxIdleWait = 5 * time.Minute

// WaitIdle waits until the service's proxy (if it runs) runs no switch of it.
func (h *Host) WaitIdle(ctx context.Context, service string) error {
	ins, err := h.api.ContainerInspect(ctx, deploy.ProxyName(service), client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect proxy: %w", err)
	}
	if ins.Container.State == nil || !ins.Container.State.Running {
		return nil
	}
	deadline := time.Now().Add(maxIdleWait)
	for {
		st, err := h.proxyStatus(ctx, ins.Container.ID, service)
		if err != nil || !st.Deploying {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the proxy has been switching %s for %s: see hubctl deploy logs %s", service, maxIdleWait, deploy.ProxyName(service))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Logs copies a container's logs (stdout and stderr, the last tail lines; "" or
// "all" for every line) to w, following them when follow.
func (h *Host) Logs(ctx context.Context, container, tail string, follow bool, stdout, stderr io.Writer) error {
	r, err := h.api.ContainerLogs(ctx, container, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail, Follow: follow})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("no container %s", container)
		}
		return fmt.Errorf("logs of %s: %w", container, err)
	}
	defer r.Close()
	_, err = stdcopy.StdCopy(stdout, stderr, r)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: %w", container, err)
	}
	return nil
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
