package kubetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// HoldEnv and ReleaseAnnotation let a test hold a pod in the middle of its run: kwok
// never ends the containers of a pod any of whose containers (init or main) has the
// environment variable HoldEnv, so its first container keeps running, until the pod
// carries the annotation ReleaseAnnotation (Cluster.Release); then kwok's own stages
// carry it on to the end as for any other pod. A workflow job sets the variable with
// `env:`, so a test decides which pods wait without touching what makes them.
const (
	HoldEnv           = "KUBETEST_HOLD"
	ReleaseAnnotation = "kubetest.hubctl.dev/release"
)

// heldStages are the kwok stages that end a pod's containers: an init container
// (pod-init-container-completed) or the main ones (pod-complete).
var heldStages = map[string]bool{"pod-init-container-completed": true, "pod-complete": true}

// holdQuery yields the name of every HoldEnv variable of the pod's containers (none
// when it has no such variable; `[]?` skips a container without env).
var holdQuery = `.spec.initContainers[]?, .spec.containers[]? | .env[]? | select(.name == "` + HoldEnv + `") | .name`

// holdStages rewrites kwok's stage stream src: each stage of heldStages gets the
// condition "no container has HoldEnv", and a copy of it, named NAME-released, the
// condition "the pod carries ReleaseAnnotation" instead. Every other stage is kept
// as it is.
func holdStages(src []byte) ([]byte, error) {
	var out bytes.Buffer
	found := map[string]bool{}
	for _, doc := range splitYAML(src) {
		var st map[string]any
		if err := yaml.Unmarshal(doc, &st); err != nil {
			return nil, fmt.Errorf("kwok stages: %w", err)
		}
		if st == nil {
			continue
		}
		name, _ := nested(st, "metadata")["name"].(string)
		if !heldStages[name] {
			writeDoc(&out, doc)
			continue
		}
		found[name] = true
		held, err := withExpression(st, name, map[string]any{"key": holdQuery, "operator": "DoesNotExist"})
		if err != nil {
			return nil, err
		}
		released, err := withExpression(st, name+"-released", map[string]any{
			"key": `.metadata.annotations["` + ReleaseAnnotation + `"]`, "operator": "Exists"})
		if err != nil {
			return nil, err
		}
		writeDoc(&out, held)
		writeDoc(&out, released)
	}
	for name := range heldStages {
		if !found[name] {
			return nil, fmt.Errorf("kwok stages: no stage %s to hold pods with (is the stages file kwok's pod/general?)", name)
		}
	}
	return out.Bytes(), nil
}

// withExpression is a copy of stage st named name, with expr added to its selector.
func withExpression(st map[string]any, name string, expr map[string]any) ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	var cp map[string]any
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, err
	}
	meta := nested(cp, "metadata")
	meta["name"] = name
	sel := nested(nested(cp, "spec"), "selector")
	exprs, _ := sel["matchExpressions"].([]any)
	sel["matchExpressions"] = append(exprs, expr)
	return yaml.Marshal(cp)
}

// nested returns m[key] as a map, making it when missing.
func nested(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[key] = v
	return v
}

func splitYAML(src []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range strings.SplitAfter(string(src), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			if strings.TrimSpace(cur.String()) != "" {
				docs = append(docs, bytes.Clone(cur.Bytes()))
			}
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	if strings.TrimSpace(cur.String()) != "" {
		docs = append(docs, cur.Bytes())
	}
	return docs
}

func writeDoc(w *bytes.Buffer, doc []byte) {
	w.WriteString("---\n")
	w.Write(doc)
	if len(doc) > 0 && doc[len(doc)-1] != '\n' {
		w.WriteByte('\n')
	}
}

// writeStages writes the stages Start gives kwok into dir: the installed ones with
// the hold of HoldEnv added.
func writeStages(installed, dir string) (string, error) {
	src, err := os.ReadFile(installed)
	if err != nil {
		return "", err
	}
	out, err := holdStages(src)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "kwok-stages.yaml")
	return p, os.WriteFile(p, out, 0o644)
}

// Release annotates the pods of namespace that selector (a label selector) matches
// with ReleaseAnnotation, so kwok ends the containers that HoldEnv held. It returns
// how many pods it annotated.
func (c *Cluster) Release(ctx context.Context, namespace, selector string) (int, error) {
	pods, err := c.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, fmt.Errorf("kubetest: list pods %s: %w", selector, err)
	}
	patch := []byte(`{"metadata":{"annotations":{"` + ReleaseAnnotation + `":"true"}}}`)
	for _, p := range pods.Items {
		if _, err := c.Client.CoreV1().Pods(namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return 0, fmt.Errorf("kubetest: release pod %s: %w", p.Name, err)
		}
	}
	return len(pods.Items), nil
}
