package kubetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"sigs.k8s.io/yaml"
)

// TestNeverReadyStage checks the stage without a control plane: it is one kwok Stage
// selecting pods by the annotation NeverReadyAnnotations carries, and its status
// template, rendered for a pod of two containers with the functions kwok gives it
// (Now, Quote), says Running and not Ready. (TestStart and the deploy/kube tests run
// it in kwok.)
func TestNeverReadyStage(t *testing.T) {
	var st struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Selector struct {
				MatchAnnotations map[string]string `json:"matchAnnotations"`
			} `json:"selector"`
			Next struct {
				StatusTemplate string `json:"statusTemplate"`
			} `json:"next"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(NeverReadyStage), &st); err != nil {
		t.Fatal(err)
	}
	if st.Kind != "Stage" || st.APIVersion != "kwok.x-k8s.io/v1alpha1" {
		t.Fatalf("not a kwok Stage: %s %s", st.APIVersion, st.Kind)
	}
	for k, v := range st.Spec.Selector.MatchAnnotations {
		if NeverReadyAnnotations[k] != v {
			t.Errorf("the stage selects %s=%s, which NeverReadyAnnotations does not set", k, v)
		}
	}
	if NeverReadyAnnotations["pod-ready.stage.kwok.x-k8s.io/weight"] != "0" {
		t.Error("NeverReadyAnnotations leaves kwok's pod-ready stage on")
	}
	quote := func(s any) string {
		b, err := json.Marshal(s)
		if err != nil || len(b) == 0 || b[0] != '"' {
			return strconv.Quote(string(b))
		}
		return string(b)
	}
	tpl, err := template.New("status").Funcs(template.FuncMap{"Now": func() string { return time.Now().Format(time.RFC3339Nano) }, "Quote": quote}).Parse(st.Spec.Next.StatusTemplate)
	if err != nil {
		t.Fatal(err)
	}
	pod := map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "a", "image": "x@sha256:1"}, map[string]any{"name": "b", "image": "y"}}}}
	var out strings.Builder
	if err := tpl.Execute(&out, pod); err != nil {
		t.Fatal(err)
	}
	var status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type, Status string
		} `json:"conditions"`
		ContainerStatuses []struct {
			Name  string `json:"name"`
			Ready bool   `json:"ready"`
			State struct {
				Running *struct {
					StartedAt string `json:"startedAt"`
				} `json:"running"`
			} `json:"state"`
		} `json:"containerStatuses"`
	}
	if err := yaml.Unmarshal([]byte(out.String()), &status); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if status.Phase != "Running" || len(status.ContainerStatuses) != 2 {
		t.Fatalf("status: %+v", status)
	}
	for _, c := range status.Conditions {
		if (c.Type == "Ready" || c.Type == "ContainersReady") && c.Status != "False" {
			t.Errorf("%s is %s", c.Type, c.Status)
		}
	}
	for _, c := range status.ContainerStatuses {
		if c.Ready || c.State.Running == nil || c.State.Running.StartedAt == "" {
			t.Errorf("container %s: %+v", c.Name, c)
		}
	}
}

// TestJoinStages: the installed stages come first, then each extra one as its own
// YAML document.
func TestJoinStages(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte("kind: Stage\nmetadata:\n  name: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := joinStages(base, dir, []string{NeverReadyStage})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")
	if len(docs) != 2 || !strings.Contains(docs[0], "name: a") || !strings.Contains(docs[1], "name: pod-never-ready") {
		t.Errorf("joined:\n%s", b)
	}
	if _, err := joinStages(filepath.Join(dir, "missing.yaml"), dir, []string{NeverReadyStage}); err == nil {
		t.Error("a missing stages file was joined")
	}
}
