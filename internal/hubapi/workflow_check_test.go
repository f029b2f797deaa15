package hubapi_test

import (
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/workflow"
	"github.com/hubctl/hubctl/internal/workflow/executor/kube"
)

// TestWorkflowApplyExecutorCheck: a hub whose executor is kubernetes (serve sets
// Options.CheckWorkflow to kube.CheckWorkflow) refuses at apply a workflow with a
// cache or artifacts, naming the line and why, and stores nothing; one without them
// applies.
func TestWorkflowApplyExecutorCheck(t *testing.T) {
	f := newFixture(t, func(o *hubapi.Options) { o.CheckWorkflow = kube.CheckWorkflow })
	src := `name: cached
on: manual
jobs:
  build:
    image: alpine
    cache:
      key: deps
      path: /cache
    artifacts:
      - name: dist
        path: dist
    steps:
      - run: "true"
`
	bad := f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/cached", src), 400, "INVALID_REQUEST")
	body := string(bad.body)
	if !strings.Contains(body, `"line":7`) || !strings.Contains(body, `"line":10`) || !strings.Contains(body, "Kubernetes") ||
		!strings.Contains(body, "cannot keep caches") || !strings.Contains(body, "without an agent image") {
		t.Fatalf("refusal: %s", body)
	}
	// With an agent image, artifacts apply; caches are still refused.
	withAgent := kube.CheckWorkflowWith("registry.example.com/hubctl:1")
	wf, err := workflow.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := withAgent(wf); err == nil || strings.Contains(err.Error(), "artifact") || !strings.Contains(err.Error(), "cannot keep caches") {
		t.Fatalf("with an agent image: %v", err)
	}
	f.want(f.do(asAlice, "GET", "/api/v1/workflows/alice/cached", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 200, "")
}
