package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// TestWorkflowManualGateSecret covers what issue 19's CI list names beyond the push
// test, on a real `hubctl serve` with the Docker executor: a manual run with typed
// inputs (`hubctl workflow run NS/NAME --input k=v`; a choice outside its options, a
// boolean that is not one and an undeclared input are refused with their reasons,
// and no run is made of them), a secret set with `hubctl workflow secret set` that a
// step prints whole, in two pieces and into its outputs, and that appears in no log
// (the CLI's, the API's, the stored chunks, the hub's own), and an approval gate that
// holds a job in waiting_approval until `hubctl workflow approve`. The cron trigger is
// proven at engine level on the real store (internal/workflow/engine
// TestWorkflowSchedule, a clock the test controls): serve has no test clock.
func TestWorkflowManualGateSecret(t *testing.T) {
	requireDocker(t)
	img := killImage(t)
	s := startServerEnv(t, t.TempDir(), []string{"HUBCTL_WORKFLOWS_EXECUTOR=docker", "HUBCTL_WORKFLOWS_INTERVAL=200ms"})
	cli := loginCLI(t, s)
	cli.run("org", "create", "wfg")

	b := make([]byte, 12)
	_, _ = rand.Read(b)
	name := "gate-" + hex.EncodeToString(b[:4])
	// The secret's random part is all a leak could show of it, whole or in pieces.
	secret := "s3cret-" + hex.EncodeToString(b[4:])
	t.Cleanup(func() { removeJobObjects(name) })
	runStdin(t, "", cli.env, secret, hubctlBin, "workflow", "secret", "set", "wfg/API_TOKEN", "--registry", cli.registry)

	src := fmt.Sprintf(`name: %s
on:
  manual:
    inputs:
      channel:
        type: choice
        options: [stable, edge]
      dry:
        type: boolean
      note:
        required: true
jobs:
  check:
    image: %s
    outputs: [channel, leak]
    steps:
      - secrets: [API_TOKEN]
        env:
          CH: ${{ inputs.channel }}
          DRY: ${{ inputs.dry }}
          NOTE: ${{ inputs.note }}
        run: |
          echo "channel=$CH dry=$DRY note=$NOTE"
          echo "whole: $API_TOKEN"
          printf 'pieces: %%s' "$(echo "$API_TOKEN" | cut -c1-9)"; sleep 1; echo "$API_TOKEN" | cut -c10-
          echo "channel=$CH" >> "$HUBCTL_OUTPUT"
          echo "leak=$API_TOKEN" >> "$HUBCTL_OUTPUT"
  deploy:
    needs: check
    environment:
      name: production
      approvers: [admin]
    image: %s
    steps:
      - env:
          CH: ${{ needs.check.outputs.channel }}
        run: echo "deployed $CH"
`, name, img, img)
	file := filepath.Join(t.TempDir(), "gate.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.run("workflow", "apply", file, "--namespace", "wfg")
	wf := "wfg/" + name

	// Bad inputs: each refused with its reason, no run made.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--input", "channel=nightly", "--input", "note=x"}, "input channel must be one of stable, edge"},
		{[]string{"--input", "dry=maybe", "--input", "note=x"}, "input dry is a boolean"},
		{[]string{"--input", "colour=red", "--input", "note=x"}, `unknown input "colour"`},
		{[]string{"--input", "channel=edge"}, "input note is required"},
	} {
		out, errOut, err := runErr(t, "", cli.env, hubctlBin, append([]string{"workflow", "run", wf, "--registry", cli.registry}, bad.args...)...)
		if err == nil || !strings.Contains(errOut, bad.want) {
			t.Fatalf("workflow run %v: err %v, want a refusal naming %q\nstdout: %s\nstderr: %s", bad.args, err, bad.want, out, errOut)
		}
	}
	if n := count(t, s.DataDir, `SELECT COUNT(*) FROM workflow_runs`); n != 0 {
		t.Fatalf("%d runs made of refused inputs", n)
	}

	runID, err := strconv.ParseInt(strings.TrimSpace(cli.run("workflow", "run", wf, "--input", "channel=edge",
		"--input", "dry=true", "--input", "note=hello world")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(runID, 10)
	show := func() hubtypes.WorkflowRun {
		var r hubtypes.WorkflowRun
		if err := json.Unmarshal([]byte(cli.run("workflow", "show", id, "-o", "json")), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	jobState := func(r hubtypes.WorkflowRun, job string) string {
		for _, j := range r.Jobs {
			if j.Job == job {
				return j.State
			}
		}
		return ""
	}
	// The gate holds deploy once check succeeded; it stays held (a few more rounds).
	waitKill(t, s, "deploy waiting for approval", 2*time.Minute, func() bool {
		return jobState(show(), "deploy") == "waiting_approval"
	})
	time.Sleep(time.Second)
	r := show()
	if jobState(r, "check") != "succeeded" || jobState(r, "deploy") != "waiting_approval" || r.State != "running" {
		t.Fatalf("before the approval: %+v", r)
	}
	cli.run("workflow", "approve", id, "--comment", "looks good")
	waitKill(t, s, "the run finished", 2*time.Minute, func() bool {
		r = show()
		return r.State != "running" && r.State != "queued"
	})
	if r.State != "succeeded" {
		s.dumpLog(60)
		t.Fatalf("run after the approval: %+v\n%s", r, cli.run("workflow", "logs", id))
	}

	logs := cli.run("workflow", "logs", id)
	for _, want := range []string{"channel=edge dry=true note=hello world", "whole: ***", "pieces: ***", "deployed edge"} {
		if !strings.Contains(logs, want) {
			t.Errorf("workflow logs lack %q:\n%s", want, logs)
		}
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminPassword))
	resp, body := do(t, "GET", s.URL("/api/v1/runs/"+id), nil, map[string]string{"Authorization": basic})
	if resp.StatusCode != 200 {
		t.Fatalf("GET run: %s %s", resp.Status, body)
	}
	var full hubtypes.WorkflowRun
	if err := json.Unmarshal(body, &full); err != nil {
		t.Fatal(err)
	}
	for _, j := range full.Jobs {
		if j.Job == "check" && (j.Outputs["channel"] != "edge" || j.Outputs["leak"] != "***") {
			t.Errorf("check's outputs: %v", j.Outputs)
		}
	}
	serveLog, _ := os.ReadFile(s.logPath)
	for what, text := range map[string]string{"workflow logs": logs, "the run's API JSON": string(body),
		"the stored log": storedLog(t, s.DataDir, runID), "the hub's log": string(serveLog),
		"workflow show": cli.run("workflow", "show", id, "-o", "json")} {
		if strings.Contains(text, secret[9:]) { // the tail, printed alone too
			t.Errorf("the secret shows in %s", what)
		}
	}
	if !strings.Contains(cli.run("workflow", "show", id), "admin") {
		t.Errorf("workflow show does not name the approver")
	}
}
