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
// cache or artifacts when it has no agent image, naming the line and why, and stores
// nothing; with an agent image both apply; one without them applies.
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
		!strings.Contains(body, "restore and save caches") || !strings.Contains(body, "move artifacts") ||
		!strings.Contains(body, "without an agent image") {
		t.Fatalf("refusal: %s", body)
	}
	wf, err := workflow.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	// With an agent image, artifacts and caches apply: its pods move both.
	if err := kube.CheckWorkflowWith("registry.example.com/hubctl:1")(wf); err != nil {
		t.Fatalf("with an agent image: %v", err)
	}
	f.want(f.do(asAlice, "GET", "/api/v1/workflows/alice/cached", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(asAlice, "PUT", "/api/v1/workflows/alice/greet", manualWorkflow), 200, "")
	g := newFixture(t, func(o *hubapi.Options) { o.CheckWorkflow = kube.CheckWorkflowWith("registry.example.com/hubctl:1") })
	g.want(g.do(asAlice, "PUT", "/api/v1/workflows/alice/cached", src), 200, "")
}
