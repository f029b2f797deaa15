package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// SetupWorkflow checks that the job can be made (its spec, its steps); the Job itself
// is made by the first step's StartStep, so that the engine has marked that step
// running before anything runs (the re-attach rule).
func (e *Executor) SetupWorkflow(ctx context.Context, job *executor.JobSpec) error {
	_, err := e.build(job)
	return err
}

// StartStep of the first step makes the job's Secrets and its Job (whose pod then runs
// every step in order); a Job that exists already, made by an earlier call or by an
// engine that stopped, is found, not made again (its name is the job's id, so a create
// racing it gets AlreadyExists). StartStep of a later step finds the Job: the step
// starts by itself when the one before it has succeeded. A later step whose Job is
// gone is an error: making the Job again would run the steps before it again.
func (e *Executor) StartStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec) error {
	if err := checkStep(job, step); err != nil {
		return err
	}
	if step.Index >= len(job.Steps) {
		return fmt.Errorf("kube executor: step %d is not among the job's %d steps", step.Index, len(job.Steps))
	}
	j, err := e.getJob(ctx, job)
	if err != nil {
		return err
	}
	if j != nil && j.DeletionTimestamp != nil && step.Index == 0 {
		// The Job of an earlier attempt of this job run is going: wait it out.
		if err := e.waitGone(ctx, job); err != nil {
			return err
		}
		j = nil
	}
	if j != nil {
		if j.DeletionTimestamp != nil {
			return fmt.Errorf("kube executor: step %d: the job's Kubernetes Job %s is being deleted", step.Index, j.Name)
		}
		// Found (a later step, or a re-attach): the step's image is pulled when its
		// container's turn comes, with the job's credentials as they are now, and
		// its $HUBCTL_TOKEN read from the env Secret then.
		if err := e.refreshPull(ctx, job, j); err != nil {
			return err
		}
		return e.refreshEnv(ctx, job, j)
	}
	if step.Index > 0 {
		return fmt.Errorf("kube executor: step %d: the job's Kubernetes Job %s is gone (the steps before it would run again): %w", step.Index, jobName(job), executor.ErrNotFound)
	}
	return e.create(ctx, job)
}

// create makes the Secrets first (so the pod never waits on them), then the Job,
// then gives the Secrets to the Job.
func (e *Executor) create(ctx context.Context, job *executor.JobSpec) error {
	objs, err := e.build(job)
	if err != nil {
		return err
	}
	secrets := e.api.CoreV1().Secrets(e.namespace)
	var made []*corev1.Secret
	for _, s := range []*corev1.Secret{objs.env, objs.pull} {
		if s == nil {
			continue
		}
		got, err := secrets.Create(ctx, s, metav1.CreateOptions{})
		if isExists(err) {
			// Left by an earlier attempt or a racing call: take it over with this
			// attempt's values, if it is the job's.
			old, gerr := secrets.Get(ctx, s.Name, metav1.GetOptions{})
			if gerr != nil {
				return fmt.Errorf("kube executor: secret %s: %w", s.Name, gerr)
			}
			if old.Labels[LabelJob] != job.JobID {
				return fmt.Errorf("kube executor: secret name %s is taken by a secret that is not this job's", s.Name)
			}
			old.Data, old.Type = s.Data, s.Type
			got, err = secrets.Update(ctx, old, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("kube executor: create secret %s: %w", s.Name, err)
		}
		made = append(made, got)
	}
	jobs := e.api.BatchV1().Jobs(e.namespace)
	j, err := jobs.Create(ctx, objs.job, metav1.CreateOptions{})
	if isExists(err) {
		j, err = jobs.Get(ctx, objs.job.Name, metav1.GetOptions{})
		if err == nil && j.Labels[LabelJob] != job.JobID {
			return fmt.Errorf("kube executor: Job name %s is taken by a Job that is not this job's", objs.job.Name)
		}
	}
	if err != nil {
		return fmt.Errorf("kube executor: create Job %s: %w", objs.job.Name, err)
	}
	for _, s := range made {
		s.OwnerReferences = []metav1.OwnerReference{ownedBy(j)}
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("kube executor: give secret %s to Job %s: %w", s.Name, j.Name, err)
		}
	}
	return nil
}

// refreshPull rewrites the job's pull Secret when the job's registry credentials
// changed since it was made (the engine renews the job's token, which expires before a
// long job's later steps pull their images). A Secret that is gone is left gone.
func (e *Executor) refreshPull(ctx context.Context, job *executor.JobSpec, j *batchv1.Job) error {
	if job.Registry == nil || job.Registry.Registry == "" {
		return nil
	}
	want, err := pullSecret(job)
	if err != nil {
		return err
	}
	secrets := e.api.CoreV1().Secrets(e.namespace)
	old, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube executor: secret %s: %w", want.Name, err)
	}
	if old.Labels[LabelJob] != job.JobID {
		return fmt.Errorf("kube executor: secret name %s is taken by a secret that is not this job's", want.Name)
	}
	if bytes.Equal(old.Data[corev1.DockerConfigJsonKey], want.Data[corev1.DockerConfigJsonKey]) {
		return nil
	}
	old.Data = want.Data
	if _, err := secrets.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kube executor: renew the pull credentials of Job %s: %w", j.Name, err)
	}
	return nil
}

// getJob returns the job's Job, or nil.
func (e *Executor) getJob(ctx context.Context, job *executor.JobSpec) (*batchv1.Job, error) {
	j, err := e.api.BatchV1().Jobs(e.namespace).Get(ctx, jobName(job), metav1.GetOptions{})
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kube executor: get Job %s: %w", jobName(job), err)
	}
	if j.Labels[LabelJob] != job.JobID {
		return nil, fmt.Errorf("kube executor: Job name %s is taken by a Job that is not this job's", j.Name)
	}
	if j.Labels[LabelRun] != job.RunID {
		return nil, fmt.Errorf("kube executor: Job %s belongs to run %q, not %s", j.Name, j.Labels[LabelRun], job.RunID)
	}
	return j, nil
}

// waitGone waits until the job's Job no longer exists.
func (e *Executor) waitGone(ctx context.Context, job *executor.JobSpec) error {
	for {
		j, err := e.getJob(ctx, job)
		if err != nil || j == nil {
			return err
		}
		if err := e.sleep(ctx); err != nil {
			return err
		}
	}
}

func (e *Executor) sleep(ctx context.Context) error {
	t := time.NewTimer(e.poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pod returns the newest pod of Job j (selected by the Job's uid, so a pod left by an
// earlier Job of the same name is never taken for this one's), or nil.
func (e *Executor) pod(ctx context.Context, j *batchv1.Job) (*corev1.Pod, error) {
	list, err := e.api.CoreV1().Pods(e.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: batchv1.ControllerUidLabel + "=" + string(j.UID) + "," + LabelJob + "=" + j.Labels[LabelJob],
	})
	if err != nil {
		return nil, fmt.Errorf("kube executor: list pods of Job %s: %w", j.Name, err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	sort.Slice(list.Items, func(a, b int) bool {
		ta, tb := list.Items[a].CreationTimestamp, list.Items[b].CreationTimestamp
		if !ta.Equal(&tb) {
			return tb.Before(&ta)
		}
		return list.Items[a].Name > list.Items[b].Name
	})
	return &list.Items[0], nil
}

// view is what the executor sees of a job run: its Job and its pod (either may be nil).
type view struct {
	job *batchv1.Job
	pod *corev1.Pod
}

func (e *Executor) look(ctx context.Context, job *executor.JobSpec) (view, error) {
	j, err := e.getJob(ctx, job)
	if err != nil || j == nil {
		return view{}, err
	}
	p, err := e.pod(ctx, j)
	return view{job: j, pod: p}, err
}

// status returns the status of step i's container in the pod, or nil.
func (v view) status(i int) *corev1.ContainerStatus { return v.container(stepContainer(i)) }

// container returns the status of the named container in the pod, or nil.
func (v view) container(name string) *corev1.ContainerStatus {
	if v.pod == nil {
		return nil
	}
	for _, list := range [][]corev1.ContainerStatus{v.pod.Status.InitContainerStatuses, v.pod.Status.ContainerStatuses} {
		for k := range list {
			if list[k].Name == name {
				return &list[k]
			}
		}
	}
	return nil
}

// refreshEnv writes the job's current token into its env Secret (build gives
// $HUBCTL_TOKEN the registry token as it is now, under the same key), so that a
// container that starts later — a step, the artifact agent — gets a token still
// alive. A Secret that is gone is left gone.
func (e *Executor) refreshEnv(ctx context.Context, job *executor.JobSpec, j *batchv1.Job) error {
	objs, err := e.build(job)
	if err != nil || objs.env == nil {
		return err
	}
	secrets := e.api.CoreV1().Secrets(e.namespace)
	old, err := secrets.Get(ctx, objs.env.Name, metav1.GetOptions{})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube executor: secret %s: %w", objs.env.Name, err)
	}
	if old.Labels[LabelJob] != job.JobID {
		return fmt.Errorf("kube executor: secret name %s is taken by a secret that is not this job's", objs.env.Name)
	}
	if maps.EqualFunc(old.Data, objs.env.Data, bytes.Equal) {
		return nil
	}
	old.Data = objs.env.Data
	if _, err := secrets.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kube executor: renew the token of Job %s: %w", j.Name, err)
	}
	return nil
}

// WaitSaved waits for the job's save container (the pod's last) to end: nil when it
// exited 0, else an error with its exit code and what it said (its log's tail).
func (e *Executor) WaitSaved(ctx context.Context, job *executor.JobSpec) error {
	if err := checkJob(job); err != nil {
		return err
	}
	var stuckSince time.Time
	for first := true; ; first = false {
		v, err := e.look(ctx, job)
		if err != nil {
			return err
		}
		if v.job == nil {
			return fmt.Errorf("kube executor: job %s: Job %s: %w", job.JobID, jobName(job), executor.ErrNotFound)
		}
		cs := v.container(saveContainer)
		if first && cs == nil || first && cs.State.Waiting != nil {
			// Not started yet: it reads the token as it is now.
			if err := e.refreshEnv(ctx, job, v.job); err != nil {
				return err
			}
		}
		if cs != nil && cs.State.Terminated != nil {
			t := cs.State.Terminated
			if t.ExitCode == 0 && (t.Reason == "" || t.Reason == "Completed") {
				return nil
			}
			return fmt.Errorf("the job's agent (hubctl-save) exited %d (%s): %s", t.ExitCode, t.Reason, strings.TrimSpace(t.Message))
		}
		if cs != nil && cs.State.Waiting != nil {
			w := cs.State.Waiting
			switch {
			case w.Reason == "InvalidImageName":
				return fmt.Errorf("the job's agent (hubctl-save): %s: %s", w.Reason, w.Message)
			case fatalWaiting[w.Reason]:
				if stuckSince.IsZero() {
					stuckSince = e.now()
				} else if e.now().Sub(stuckSince) >= e.pullGrace {
					return fmt.Errorf("the job's agent (hubctl-save): %s for %s: %s", w.Reason, e.pullGrace, w.Message)
				}
			}
		}
		if cs == nil || cs.State.Running == nil {
			if done, why := v.ended(); done {
				return fmt.Errorf("the job's agent (hubctl-save) never ran: %s", why)
			}
		}
		if err := e.sleep(ctx); err != nil {
			return err
		}
	}
}

// ended says whether the pod or the Job can run no more containers, and why.
func (v view) ended() (bool, string) {
	if v.job == nil {
		return true, "the Job is gone"
	}
	for _, c := range v.job.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobFailed || c.Type == batchv1.JobComplete) {
			return true, fmt.Sprintf("the Job is %s: %s %s", c.Type, c.Reason, c.Message)
		}
	}
	if v.pod != nil {
		if v.pod.DeletionTimestamp != nil {
			return true, "the pod is being deleted"
		}
		switch v.pod.Status.Phase {
		case corev1.PodFailed, corev1.PodSucceeded:
			msg := "the pod " + string(v.pod.Status.Phase)
			if v.pod.Status.Reason != "" {
				msg += ": " + v.pod.Status.Reason + " " + v.pod.Status.Message
			}
			return true, msg
		}
	}
	return false, ""
}

// stepState maps a container status to the step's state; nil when the container has
// neither started nor ended.
func stepState(cs *corev1.ContainerStatus) *executor.StepState {
	if cs == nil {
		return nil
	}
	switch {
	case cs.State.Terminated != nil:
		t := cs.State.Terminated
		st := &executor.StepState{
			ExitCode:   int(t.ExitCode),
			OOMKilled:  t.Reason == "OOMKilled",
			StartedAt:  t.StartedAt.Time,
			FinishedAt: t.FinishedAt.Time,
		}
		if t.ExitCode == 0 && t.Reason != "" && t.Reason != "Completed" && t.Reason != "OOMKilled" {
			// Ended without its program ending (ContainerCannotRun, StartError …).
			st.Error = t.Reason
		}
		if t.Reason == "ContainerCannotRun" || t.Reason == "StartError" {
			st.Error = t.Reason + ": " + t.Message
			if st.ExitCode == 0 {
				st.ExitCode = -1
			}
			return st
		}
		if t.Message != "" {
			out := []byte(t.Message)
			if len(out) > executor.MaxOutput {
				out = out[:executor.MaxOutput]
			}
			st.Output = out
		}
		return st
	case cs.State.Running != nil:
		return &executor.StepState{Running: true, StartedAt: cs.State.Running.StartedAt.Time}
	}
	return nil
}

// fatalWaiting are the reasons a container waits that the kubelet retries for ever
// but that will not get better by themselves; they fail the step after pullGrace.
// InvalidImageName never gets better: it fails at once.
var fatalWaiting = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// WaitStep polls the step's container until it ends and returns its state, with the
// step's output (its termination message). A container that cannot start (an image
// that cannot be pulled for pullGrace, an invalid image name) or a pod or Job that
// ends before the step ran is reported in Error. A step with a Timeout still running
// that long after it started deletes the Job (the job's steps cannot go on without it)
// and is reported "timed out".
func (e *Executor) WaitStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec) (*executor.StepState, error) {
	if err := checkStep(job, step); err != nil {
		return nil, err
	}
	var stuckSince time.Time
	for {
		v, err := e.look(ctx, job)
		if err != nil {
			return nil, err
		}
		if v.job == nil {
			return nil, fmt.Errorf("kube executor: step %d of job %s: Job %s: %w", step.Index, job.JobID, jobName(job), executor.ErrNotFound)
		}
		cs := v.status(step.Index)
		st := stepState(cs)
		if st != nil && !st.Running {
			return st, nil
		}
		if st != nil && step.Timeout > 0 && !st.StartedAt.IsZero() && e.now().After(st.StartedAt.Add(step.Timeout)) {
			if err := e.deleteJob(ctx, job); err != nil {
				return nil, err
			}
			return &executor.StepState{ExitCode: -1, StartedAt: st.StartedAt, FinishedAt: e.now(),
				Error: fmt.Sprintf("timed out after %s", step.Timeout)}, nil
		}
		if cs != nil && cs.State.Waiting != nil {
			w := cs.State.Waiting
			switch {
			case w.Reason == "InvalidImageName":
				return &executor.StepState{ExitCode: -1, Error: fmt.Sprintf("%s: %s", w.Reason, w.Message)}, nil
			case fatalWaiting[w.Reason]:
				if stuckSince.IsZero() {
					stuckSince = e.now()
				} else if e.now().Sub(stuckSince) >= e.pullGrace {
					return &executor.StepState{ExitCode: -1, Error: fmt.Sprintf("%s for %s: %s", w.Reason, e.pullGrace, w.Message)}, nil
				}
			default:
				stuckSince = time.Time{}
			}
		}
		if st == nil {
			if done, why := v.ended(); done {
				return &executor.StepState{ExitCode: -1, Error: fmt.Sprintf("step %d never ran: %s", step.Index+1, why)}, nil
			}
		}
		if err := e.sleep(ctx); err != nil {
			return nil, err
		}
	}
}

// TailStep follows the step's log (the kubelet's, through the API server's pods/log)
// from byte offset. The reader is returned at once; it waits for the container to
// start, and ends at EOF when the container's log ends, or when the pod ends without
// the container having started.
func (e *Executor) TailStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec, offset int64) (io.ReadCloser, error) {
	if err := checkStep(job, step); err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("kube executor: negative log offset %d", offset)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(e.follow(ctx, job, step.Index, &skipWriter{w: pw, skip: offset}))
	}()
	return &tail{PipeReader: pr, cancel: cancel}, nil
}

// follow copies the step's log into w once its container has started; nil at the
// log's end (io.Pipe then reads EOF).
func (e *Executor) follow(ctx context.Context, job *executor.JobSpec, index int, w io.Writer) error {
	var pod string
	for pod == "" {
		v, err := e.look(ctx, job)
		if err != nil {
			return err
		}
		if v.job == nil {
			return nil
		}
		if st := stepState(v.status(index)); st != nil {
			pod = v.pod.Name
			break
		}
		if done, _ := v.ended(); done {
			return nil // never started: no log
		}
		if err := e.sleep(ctx); err != nil {
			return err
		}
	}
	rc, err := e.api.CoreV1().Pods(e.namespace).GetLogs(pod, &corev1.PodLogOptions{Container: stepContainer(index), Follow: true}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("kube executor: logs of step %d: %w", index, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

type tail struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (t *tail) Close() error {
	t.cancel()
	return t.PipeReader.Close()
}

// skipWriter drops the first skip bytes written to it.
type skipWriter struct {
	w    io.Writer
	skip int64
}

func (s *skipWriter) Write(p []byte) (int, error) {
	if s.skip >= int64(len(p)) {
		s.skip -= int64(len(p))
		return len(p), nil
	}
	n := s.skip
	s.skip = 0
	if _, err := s.w.Write(p[n:]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// DestroyStep deletes the job's Job: its steps share one pod, so a step cannot be
// stopped alone (the engine destroys a step only when the job ends with it). The pod
// gets the job's grace period between SIGTERM and SIGKILL.
func (e *Executor) DestroyStep(ctx context.Context, job *executor.JobSpec, step *executor.StepSpec) error {
	if err := checkStep(job, step); err != nil {
		return err
	}
	return e.deleteJob(ctx, job)
}

func (e *Executor) deleteJob(ctx context.Context, job *executor.JobSpec) error {
	j, err := e.getJob(ctx, job)
	if err != nil || j == nil {
		return err
	}
	bg := metav1.DeletePropagationBackground
	uid := j.UID
	err = e.api.BatchV1().Jobs(e.namespace).Delete(ctx, j.Name, metav1.DeleteOptions{
		PropagationPolicy: &bg,
		Preconditions:     &metav1.Preconditions{UID: &uid}, // this Job, not one made since
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("kube executor: delete Job %s: %w", j.Name, err)
	}
	return nil
}

// DestroyWorkflow deletes the job's Job (propagation Background: the garbage collector
// deletes its pod, which gets the grace period) and the job's Secrets.
func (e *Executor) DestroyWorkflow(ctx context.Context, job *executor.JobSpec) error {
	if err := checkJob(job); err != nil {
		return err
	}
	var errs []error
	if err := e.deleteJob(ctx, job); err != nil {
		errs = append(errs, err)
	}
	secrets := e.api.CoreV1().Secrets(e.namespace)
	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: jobSelector(job)})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("kube executor: list secrets: %w", err))...)
	}
	for _, s := range list.Items {
		if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("kube executor: delete secret %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Find reports the steps of the job's Job that started or ended, by index, and, while
// the pod can still run, the step after the last that ended (waiting for its turn,
// pulling its image or running): the one an engine that stopped may have marked
// running. Steps the pod will never run are left out.
func (e *Executor) Find(ctx context.Context, job *executor.JobSpec) (map[int]*executor.StepState, error) {
	if err := checkJob(job); err != nil {
		return nil, err
	}
	v, err := e.look(ctx, job)
	if err != nil {
		return nil, err
	}
	out := map[int]*executor.StepState{}
	if v.job == nil || v.job.DeletionTimestamp != nil {
		return out, nil
	}
	n, err := strconv.Atoi(v.job.Annotations[AnnotationSteps])
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("kube executor: Job %s has no valid %s annotation", v.job.Name, AnnotationSteps)
	}
	done, _ := v.ended()
	for i := 0; i < n; i++ {
		st := stepState(v.status(i))
		if st != nil {
			out[i] = st
			if !st.Running && st.ExitCode == 0 && st.Error == "" && !st.OOMKilled {
				continue
			}
			break
		}
		if !done {
			out[i] = &executor.StepState{Running: true}
		}
		break
	}
	return out, nil
}
