package kube

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hubctl/hubctl/internal/workflow/executor"
)

// outputDir is where, under the workspace, steps write their $HUBCTL_OUTPUT files.
const outputDir = ".hubctl"

func outputPath(job *executor.JobSpec, index int) string {
	return path.Join(job.Workspace(), outputDir, "output-"+strconv.Itoa(index))
}

// stepWrapper runs a step's script ($1) with /bin/sh -e -c, SIGTERM forwarded to it,
// and copies its $HUBCTL_OUTPUT to the termination message file ($2), which the kubelet keeps
// (at most MaxOutput bytes) in the container's status. A larger output fails the step
// with a line in its log rather than being cut.
var stepWrapper = `mkdir -p "${HUBCTL_OUTPUT%/*}" && : >"$HUBCTL_OUTPUT" || exit 125
/bin/sh -e -c "$1" hubctl-step &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
while :; do
  wait "$pid"; rc=$?
  kill -0 "$pid" 2>/dev/null || break
done
size=$(wc -c <"$HUBCTL_OUTPUT" 2>/dev/null || echo 0)
if [ "$size" -gt ` + strconv.Itoa(MaxOutput) + ` ]; then
  echo "hubctl: \$HUBCTL_OUTPUT holds $size bytes: the Kubernetes executor returns at most ` + strconv.Itoa(MaxOutput) + `" >&2
  [ "$rc" -ne 0 ] || rc=1
else
  cat "$HUBCTL_OUTPUT" >"$2" 2>/dev/null
fi
exit "$rc"
`

// objects is everything the executor makes for one job run.
type objects struct {
	job  *batchv1.Job
	env  *corev1.Secret // nil when the job has no sensitive value
	pull *corev1.Secret // nil when the job has no registry credentials
}

// sensitive collects the environment values that go through the env Secret: each
// distinct value once, under a key that says nothing of it (v0, v1, …).
type sensitive struct {
	values []string
	keys   map[string]string
}

func (s *sensitive) key(v string) string {
	if k, ok := s.keys[v]; ok {
		return k
	}
	if s.keys == nil {
		s.keys = map[string]string{}
	}
	k := "v" + strconv.Itoa(len(s.values))
	s.keys[v] = k
	s.values = append(s.values, v)
	return k
}

// build makes the Job and Secrets of job, checking the spec without talking to the
// cluster.
func (e *Executor) build(job *executor.JobSpec) (*objects, error) {
	if err := checkJob(job); err != nil {
		return nil, err
	}
	if len(job.Steps) == 0 {
		return nil, fmt.Errorf("kube executor: job %s has no steps (JobSpec.Steps: the Job declares them all up front)", job.JobID)
	}
	ws := job.Workspace()
	if !path.IsAbs(ws) {
		return nil, fmt.Errorf("kube executor: workspace %q is not an absolute path", ws)
	}
	// A value is sensitive when it is one of the job's secrets or its registry token
	// (which the engine also passes as $HUBCTL_TOKEN), whatever variable carries it.
	secretValues := map[string]bool{}
	for _, v := range job.Secrets {
		secretValues[v] = true
	}
	if job.Registry != nil && job.Registry.Token != "" {
		secretValues[job.Registry.Token] = true
	}
	var sens sensitive
	envOf := func(vars []executor.EnvVar) ([]corev1.EnvVar, error) {
		if err := checkEnv(vars); err != nil {
			return nil, err
		}
		out := make([]corev1.EnvVar, 0, len(vars))
		for _, v := range vars {
			if v.Name == "HUBCTL_TOKEN" && job.Registry != nil && job.Registry.Token != "" {
				// The engine renews the job's token into Registry: the env Secret
				// carries it as it is now (refreshEnv), under the key it had.
				v.Value = job.Registry.Token
			}
			if secretValues[v.Value] || v.Name == "HUBCTL_TOKEN" {
				out = append(out, corev1.EnvVar{Name: v.Name, ValueFrom: &corev1.EnvVarSource{
					SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: envSecretName(job)},
						Key:                  sens.key(v.Value),
					},
				}})
				continue
			}
			out = append(out, corev1.EnvVar{Name: v.Name, Value: v.Value})
		}
		return out, nil
	}

	res := resources(job)
	mounts := []corev1.VolumeMount{{Name: "workspace", MountPath: ws}}
	volumes := []corev1.Volume{e.workspaceVolume(job)}
	cache := job.Agent != nil && job.Agent.Cache != ""
	if cache {
		// The agent extracts the hub's copy into it before the first step and saves
		// it after the last (when the key had none); it lives as long as the pod.
		mounts = append(mounts, corev1.VolumeMount{Name: "cache", MountPath: job.Agent.Cache})
		volumes = append(volumes, corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	var inits, mains []corev1.Container
	always := corev1.ContainerRestartPolicyAlways
	var aliases []string
	for i := range job.Services {
		svc := &job.Services[i]
		env, err := envOf(mergeEnv(job.Env, svc.Env))
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", svc.Name, err)
		}
		inits = append(inits, corev1.Container{
			Name:            serviceContainer(svc.Name),
			Image:           svc.Image,
			Args:            svc.Args,
			Env:             env,
			Resources:       res,
			RestartPolicy:   &always, // a native sidecar: runs beside the steps, ends with the pod
			ImagePullPolicy: corev1.PullIfNotPresent,
		})
		aliases = append(aliases, svc.Name)
	}
	agent := job.Agent != nil && (job.Agent.Restore || len(job.Agent.Save) > 0 || cache)
	var agentEnv []corev1.EnvVar
	if agent {
		var err error
		if agentEnv, err = e.agentEnv(job, envOf); err != nil {
			return nil, err
		}
	}
	if agent && (job.Agent.Restore || cache) {
		// Before the services and the steps: the needed artifacts are in the
		// workspace, and the cache in its path, when the first step starts.
		args := []string{"restore"}
		if cache {
			args = append(args, "--cache", job.Agent.Cache)
		}
		inits = append([]corev1.Container{e.agentContainer(restoreContainer, job, agentEnv, mounts, res, args...)}, inits...)
	}
	saving := agent && (len(job.Agent.Save) > 0 || cache)
	for i := range job.Steps {
		step := &job.Steps[i]
		if step.Index != i {
			return nil, fmt.Errorf("kube executor: step %d of the job has index %d", i, step.Index)
		}
		c, vars, err := stepContainerSpec(job, step)
		if err != nil {
			return nil, err
		}
		if c.Env, err = envOf(vars); err != nil {
			return nil, fmt.Errorf("kube executor: step %d: %w", i, err)
		}
		c.Resources = res
		c.VolumeMounts = mounts
		if i < len(job.Steps)-1 || saving {
			inits = append(inits, c)
		} else {
			mains = append(mains, c)
		}
	}
	if saving {
		// After the last step (an init container then), which must succeed first.
		args := []string{"save"}
		for _, a := range job.Agent.Save {
			args = append(args, "--artifact", a.Name+"="+a.Path)
		}
		if cache {
			args = append(args, "--cache", job.Agent.Cache)
		}
		mains = append(mains, e.agentContainer(saveContainer, job, agentEnv, mounts, res, args...))
	}

	secs := int64((job.Grace() + 999_999_999) / 1_000_000_000)
	noToken, noLinks := false, false
	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		InitContainers:                inits,
		Containers:                    mains,
		TerminationGracePeriodSeconds: &secs,
		// Steps run code from the workflow: no service account token of the
		// namespace, no service environment variables.
		AutomountServiceAccountToken: &noToken,
		EnableServiceLinks:           &noLinks,
		Volumes:                      volumes,
	}
	if len(aliases) > 0 {
		pod.HostAliases = []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: aliases}}
	}
	out := &objects{}
	if job.Registry != nil && job.Registry.Registry != "" {
		pull, err := pullSecret(job)
		if err != nil {
			return nil, err
		}
		out.pull = pull
		pod.ImagePullSecrets = []corev1.LocalObjectReference{{Name: pull.Name}}
	}
	if len(sens.values) > 0 {
		data := make(map[string][]byte, len(sens.values))
		for _, v := range sens.values {
			data[sens.keys[v]] = []byte(v)
		}
		out.env = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: envSecretName(job), Labels: labels(job, LabelRole, "env"), Annotations: annotations(job, len(job.Steps))},
			Type:       corev1.SecretTypeOpaque,
			Data:       data,
		}
	}

	backoff := int32(0)
	ttl := int32(finishedTTL / 1_000_000_000)
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: jobName(job), Labels: labels(job), Annotations: annotations(job, len(job.Steps))},
		Spec: batchv1.JobSpec{
			BackoffLimit:            &backoff,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(job), Annotations: annotations(job, len(job.Steps))},
				Spec:       pod,
			},
		},
	}
	if job.Timeout > 0 {
		d := int64((job.Timeout + deadlineSlack + 999_999_999) / 1_000_000_000)
		j.Spec.ActiveDeadlineSeconds = &d
	}
	out.job = j
	return out, nil
}

// restoreContainer and saveContainer are the containers that run `hubctl
// workflow-agent` in a job's pod (executor.AgentFiles).
const (
	restoreContainer = "hubctl-restore"
	saveContainer    = "hubctl-save"
)

// agentEnv is the agent's environment: the hub's URL and the job's token (through
// the env Secret, as the steps get it), which it signs in with.
func (e *Executor) agentEnv(job *executor.JobSpec, envOf func([]executor.EnvVar) ([]corev1.EnvVar, error)) ([]corev1.EnvVar, error) {
	if e.agentImage == "" {
		return nil, fmt.Errorf("kube executor: job %s moves artifacts or a cache, which needs an agent image: set the hub's external_url (it then publishes its own) or workflows.kube.agent_image", job.JobID)
	}
	var vars []executor.EnvVar
	for _, v := range job.Env {
		if v.Name == "HUBCTL_HUB" || v.Name == "HUBCTL_TOKEN" {
			vars = append(vars, v)
		}
	}
	if len(vars) != 2 {
		return nil, fmt.Errorf("kube executor: job %s moves artifacts or a cache, which needs $HUBCTL_HUB and $HUBCTL_TOKEN in its environment", job.JobID)
	}
	return envOf(vars)
}

// agentContainer runs `/hubctl workflow-agent VERB --run --job --workspace …` in the
// agent image on the workspace.
func (e *Executor) agentContainer(name string, job *executor.JobSpec, env []corev1.EnvVar, mounts []corev1.VolumeMount,
	res corev1.ResourceRequirements, args ...string) corev1.Container {
	cmd := []string{"/hubctl", "workflow-agent", args[0], "--run", strconv.FormatInt(job.Agent.RunID, 10),
		"--job", strconv.FormatInt(job.Agent.JobID, 10), "--workspace", job.Workspace()}
	return corev1.Container{
		Name:                     name,
		Image:                    e.agentImage,
		Command:                  append(cmd, args[1:]...),
		Env:                      env,
		VolumeMounts:             mounts,
		Resources:                res,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func (e *Executor) workspaceVolume(job *executor.JobSpec) corev1.Volume {
	v := corev1.Volume{Name: "workspace"}
	if e.workspaceSize.IsZero() {
		v.EmptyDir = &corev1.EmptyDirVolumeSource{}
		return v
	}
	claim := corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: e.workspaceSize}},
	}
	if e.workspaceClass != "" {
		class := e.workspaceClass
		claim.StorageClassName = &class
	}
	v.Ephemeral = &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(job, LabelRole, "workspace")},
		Spec:       claim,
	}}
	return v
}

// stepContainerSpec is the step's container without its environment, and the
// environment it gets (the job's, the step's own, its secrets, the HUBCTL_* paths).
func stepContainerSpec(job *executor.JobSpec, step *executor.StepSpec) (corev1.Container, []executor.EnvVar, error) {
	image := step.Image
	if image == "" {
		image = job.Image
	}
	if image == "" {
		return corev1.Container{}, nil, fmt.Errorf("kube executor: step %d (%s) has no image and the job none", step.Index, step.Name)
	}
	ws := job.Workspace()
	workdir := ws
	if step.Workdir != "" {
		if path.IsAbs(step.Workdir) {
			workdir = path.Clean(step.Workdir)
		} else {
			workdir = path.Join(ws, step.Workdir)
			if workdir != ws && !strings.HasPrefix(workdir, ws+"/") {
				return corev1.Container{}, nil, fmt.Errorf("kube executor: step %d: workdir %q leaves the workspace", step.Index, step.Workdir)
			}
		}
	}
	secrets := make([]executor.EnvVar, 0, len(step.Secrets))
	for _, name := range step.Secrets {
		v, ok := job.Secrets[name]
		if !ok {
			return corev1.Container{}, nil, fmt.Errorf("kube executor: step %d asks for secret %q, which the job does not have", step.Index, name)
		}
		secrets = append(secrets, executor.EnvVar{Name: name, Value: v})
	}
	env := mergeEnv(job.Env, step.Env, secrets, []executor.EnvVar{
		{Name: "HUBCTL_WORKSPACE", Value: ws},
		{Name: "HUBCTL_OUTPUT", Value: outputPath(job, step.Index)},
	})
	c := corev1.Container{
		Name:                     stepContainer(step.Index),
		Image:                    image,
		WorkingDir:               workdir,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
	if step.Run != "" {
		c.Command = []string{"/bin/sh", "-c", stepWrapper, "hubctl-wrapper", step.Run, corev1.TerminationMessagePathDefault}
	} else if len(step.Args) > 0 {
		c.Args = step.Args
	}
	return c, env, nil
}

func resources(job *executor.JobSpec) corev1.ResourceRequirements {
	list := corev1.ResourceList{}
	if job.Resources.MilliCPU > 0 {
		list[corev1.ResourceCPU] = *resource.NewMilliQuantity(job.Resources.MilliCPU, resource.DecimalSI)
	}
	if job.Resources.Memory > 0 {
		list[corev1.ResourceMemory] = *resource.NewQuantity(job.Resources.Memory, resource.BinarySI)
	}
	if len(list) == 0 {
		return corev1.ResourceRequirements{}
	}
	// Requests equal to limits: a step gets what it is allowed, no more, no less.
	return corev1.ResourceRequirements{Limits: list, Requests: list.DeepCopy()}
}

// pullSecret is the kubernetes.io/dockerconfigjson Secret with the job's credentials
// for its registry. A registry token (the hub's job token) is given as the password
// of the user "hubctl-job" (the kubelet passes only a user and a password to the
// container runtime) and as registrytoken for runtimes that read it.
func pullSecret(job *executor.JobSpec) (*corev1.Secret, error) {
	a := job.Registry
	if strings.ContainsAny(a.Registry, "/ \t\n") {
		return nil, fmt.Errorf("kube executor: registry %q is not a host[:port]", a.Registry)
	}
	user, pass := a.Username, a.Password
	entry := map[string]string{}
	if a.Token != "" {
		user, pass = "hubctl-job", a.Token
		entry["registrytoken"] = a.Token
	}
	if user == "" && pass == "" {
		return nil, fmt.Errorf("kube executor: credentials for %s have neither a user, a password nor a token", a.Registry)
	}
	entry["username"], entry["password"] = user, pass
	entry["auth"] = base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{a.Registry: entry}})
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: pullSecretName(job), Labels: labels(job, LabelRole, "pull"), Annotations: annotations(job, len(job.Steps))},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}, nil
}

// mergeEnv applies over on base, keeping the first position of each name.
func mergeEnv(base []executor.EnvVar, over ...[]executor.EnvVar) []executor.EnvVar {
	out := make([]executor.EnvVar, 0, len(base))
	at := map[string]int{}
	add := func(v executor.EnvVar) {
		if i, ok := at[v.Name]; ok {
			out[i].Value = v.Value
			return
		}
		at[v.Name] = len(out)
		out = append(out, v)
	}
	for _, v := range base {
		add(v)
	}
	for _, list := range over {
		for _, v := range list {
			add(v)
		}
	}
	return out
}

// checkEnv refuses names Kubernetes refuses ('=' or no printable ASCII) and NUL
// bytes. Values are never quoted in the error: they may be secrets.
func checkEnv(vars []executor.EnvVar) error {
	for _, v := range vars {
		if v.Name == "" || strings.ContainsRune(v.Name, '=') || strings.IndexFunc(v.Name, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			return fmt.Errorf("kube executor: environment variable name %q is empty or holds '=' or a character outside printable ASCII", v.Name)
		}
		if strings.ContainsRune(v.Value, 0) {
			return fmt.Errorf("kube executor: environment variable %s holds a NUL byte", v.Name)
		}
	}
	return nil
}

// ownedBy is the reference that makes an object go with the Job j.
func ownedBy(j *batchv1.Job) metav1.OwnerReference {
	no := false
	return metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: &no, BlockOwnerDeletion: &no}
}
