package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWorkflowHookRateAcrossReplicas: the rate limit of a workflow's incoming URL (60
// calls a minute per workflow) is one count for two replicas on one PostgreSQL (issue
// 19): a caller alternating between them gets 60 calls in all, then 429 with
// Retry-After from both, not 60 from each. The calls are unsigned (401), as a flood
// would be: the limit comes before the signature check, so they count.
func TestWorkflowHookRateAcrossReplicas(t *testing.T) {
	rs := startReplicas(t, 2)
	cli := loginCLI(t, rs[0])
	cli.run("org", "create", "wfr")
	src := `name: hooked
on:
  webhook:
jobs:
  echo:
    image: example.invalid/none:1
    steps:
      - run: "true"
`
	file := filepath.Join(t.TempDir(), "hooked.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.run("workflow", "apply", file, "--namespace", "wfr")
	call := func(s *server) *http.Response {
		resp, _ := do(t, http.MethodPost, s.URL("/api/v1/hooks/workflows/wfr/hooked"), strings.NewReader(`{}`),
			map[string]string{"Content-Type": "application/json"})
		return resp
	}
	for i := range 60 {
		if resp := call(rs[i%2]); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("call %d on replica %d: %s, want 401 (unsigned, within the limit)", i, i%2, resp.Status)
		}
	}
	for i, s := range rs {
		resp := call(s)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("replica %d after 60 calls over both: %s (Retry-After %q), want 429 with Retry-After",
				i, resp.Status, resp.Header.Get("Retry-After"))
		}
	}
}
