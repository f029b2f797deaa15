package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"

	"github.com/hubctl/hubctl/internal/workflow"
)

// values are what the expressions of job j of run read (workflow's exprEnv, now with
// values): inputs, event, run, matrix, and the needs' results and outputs.
func values(run *Run, wf *workflow.Workflow, j *workflow.Job, jr *Job) map[string]any {
	matrix := map[string]any{}
	for k, v := range jr.Matrix {
		matrix[k] = v
	}
	needs := map[string]any{}
	for _, name := range j.Needs {
		dep := wf.Job(name)
		runs := map[string]any{}
		var single map[string]any
		for i := range run.Jobs {
			d := &run.Jobs[i]
			if d.Job != name {
				continue
			}
			outputs := map[string]any{}
			for k, v := range d.Outputs {
				outputs[k] = v
			}
			r := map[string]any{"result": d.Result(), "outputs": outputs}
			runs[d.Key] = r
			single = r
		}
		if dep != nil && dep.Matrix != nil {
			needs[name] = map[string]any{"runs": runs}
		} else if single != nil {
			needs[name] = single
		}
	}
	return map[string]any{
		"inputs": nonNil(run.Inputs),
		"event":  nonNil(run.Event),
		"run": map[string]any{"id": fmt.Sprint(run.ID), "number": int(run.Number), "attempt": jr.Attempt,
			"workflow": run.Workflow, "namespace": run.Namespace},
		"matrix": matrix,
		"needs":  needs,
	}
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// needsState sums up the job runs jr needs: all succeeded, any failed.
func needsState(run *Run, jr *Job) (allSucceeded, anyFailed bool) {
	allSucceeded = true
	for _, id := range jr.Needs {
		for i := range run.Jobs {
			if run.Jobs[i].ID != id {
				continue
			}
			switch run.Jobs[i].Result() {
			case "success":
			case "failure":
				anyFailed, allSucceeded = true, false
			default:
				allSucceeded = false
			}
		}
	}
	return allSucceeded, anyFailed
}

// decide says whether job run jr runs: "" to run it, else the state it ends in
// (skipped, cancelled, or failed with msg when its if: fails to evaluate). Without
// a status function in if:, a job runs only when every needed job succeeded.
func decide(run *Run, wf *workflow.Workflow, j *workflow.Job, jr *Job) (state, msg string) {
	ok, failed := needsState(run, jr)
	if run.CancelRequested && !j.IfStatus {
		return StateCancelled, ""
	}
	if j.If == "" {
		if !ok {
			return StateSkipped, ""
		}
		return "", ""
	}
	if !j.IfStatus && !ok {
		return StateSkipped, ""
	}
	status := map[string]bool{"success": ok, "failure": failed, "cancelled": run.CancelRequested, "always": true}
	opts := []expr.Option{expr.Env(values(run, wf, j, jr)), expr.AsBool()}
	for name, v := range status {
		opts = append(opts, expr.Function(name, func(...any) (any, error) { return v, nil }, new(func() bool)))
	}
	prog, err := expr.Compile(j.If, opts...)
	if err != nil {
		return StateFailed, "if: " + err.Error()
	}
	out, err := expr.Run(prog, values(run, wf, j, jr))
	if err != nil {
		return StateFailed, "if: " + err.Error()
	}
	if b, _ := out.(bool); !b {
		return StateSkipped, ""
	}
	return "", ""
}

// expand replaces each ${{ expression }} of s by its value in env.
func expand(s string, env map[string]any) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		k := strings.Index(s[i+3:], "}}")
		if k < 0 {
			return "", fmt.Errorf("%q: ${{ is not closed by }}", s)
		}
		b.WriteString(s[:i])
		v, err := expr.Eval(strings.TrimSpace(s[i+3:i+3+k]), env)
		if err != nil {
			return "", err
		}
		if v != nil {
			fmt.Fprint(&b, v)
		}
		s = s[i+3+k+2:]
	}
}

var (
	jobOutRe = regexp.MustCompile(`^\[JOB_OUT\]\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$`)
	outputRe = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
)

// parseOutputFile reads the KEY=VALUE lines of a step's $HUBCTL_OUTPUT into outputs.
func parseOutputFile(b []byte, outputs map[string]string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := outputRe.FindStringSubmatch(strings.TrimRight(sc.Text(), "\r")); m != nil {
			outputs[m[1]] = m[2]
		}
	}
}

// jobOutScanner finds `[JOB_OUT] KEY = VALUE` lines in a log as it streams by.
type jobOutScanner struct {
	partial []byte
	outputs map[string]string
}

func (s *jobOutScanner) Write(p []byte) {
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			if len(s.partial) > 1<<20 { // a line that long is no output line
				s.partial = s.partial[:0]
			}
			return
		}
		s.line(s.partial[:i])
		s.partial = s.partial[i+1:]
	}
}

func (s *jobOutScanner) line(l []byte) {
	if m := jobOutRe.FindSubmatch(bytes.TrimRight(l, "\r")); m != nil {
		s.outputs[string(m[1])] = string(m[2])
	}
}

// Close takes a last line without its newline.
func (s *jobOutScanner) Close() {
	if len(s.partial) > 0 {
		s.line(s.partial)
		s.partial = nil
	}
}
