package kubetest

import (
	"os"
	"path/filepath"
	"strings"
)

// NeverReadyAnnotations, set on a pod (its template's annotations), make kwok run
// it but never mark it Ready, with StartWithStages(t, NeverReadyStage): a rollout
// that waits for readiness hangs until its timeout. The first turns off kwok's own
// pod-ready stage for the pod, the second selects NeverReadyStage.
var NeverReadyAnnotations = map[string]string{
	"pod-ready.stage.kwok.x-k8s.io/weight": "0",
	"kubetest.hubctl.dev/never-ready":      "true",
}

// NeverReadyStage is a kwok stage for pods carrying NeverReadyAnnotations: where
// kwok's pod-ready stage would start the containers and set Ready, it starts them
// with Ready and ContainersReady False, and nothing later changes that.
const NeverReadyStage = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-never-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchAnnotations:
      kubetest.hubctl.dev/never-ready: "true"
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '.status.conditions.[] | select( .type == "Initialized" ) | .status'
      operator: 'In'
      values:
      - 'True'
    - key: '.status.containerStatuses.[].state.running.startedAt'
      operator: 'DoesNotExist'
  weight: 1
  delay:
    durationMilliseconds: 500
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        message: 'held by kubetest'
        reason: 'NeverReady'
        status: "False"
        type: Ready
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        message: 'held by kubetest'
        reason: 'NeverReady'
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
`

// joinStages writes the installed stages file followed by extra into dir and
// answers the new file's path.
func joinStages(base, dir string, extra []string) (string, error) {
	b, err := os.ReadFile(base)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Write(b)
	for _, e := range extra {
		sb.WriteString("\n---\n")
		sb.WriteString(strings.TrimSpace(e))
		sb.WriteString("\n")
	}
	p := filepath.Join(dir, StagesFile)
	return p, os.WriteFile(p, []byte(sb.String()), 0o644)
}
