package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/iostreams"
)

const workflowOK = `name: demo
on: manual
jobs:
  test:
    image: alpine:3.20
    matrix: {os: [linux, darwin]}
    steps: [{run: "true"}]
  ship:
    needs: test
    image: alpine:3.20
    steps: [{run: "true"}]
`

const workflowBroken = `name: demo
on: manual
jobs:
  a:
    needs: b
    image: alpine:3.20
    steps: [{run: "true"}]
  b:
    needs: a
    imag: alpine
    steps: [{run: "true"}]
`

func writeWorkflows(t *testing.T) (ok, broken string) {
	t.Helper()
	dir := t.TempDir()
	ok, broken = filepath.Join(dir, "ok.yaml"), filepath.Join(dir, "broken.yaml")
	for f, s := range map[string]string{ok: workflowOK, broken: workflowBroken} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ok, broken
}

func TestWorkflowValidate(t *testing.T) {
	ok, broken := writeWorkflows(t)

	code, out, errOut := run(t, nil, "workflow", "validate", ok)
	if code != 0 || out != ok+": ok (2 jobs, 3 runs after matrix)\n" || errOut != "" {
		t.Errorf("ok file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	code, out, errOut = run(t, nil, "workflow", "validate", ok, broken, filepath.Join(filepath.Dir(ok), "missing.yaml"))
	if code == 0 {
		t.Error("exit 0 with broken files")
	}
	want := []string{
		ok + ": ok (2 jobs, 3 runs after matrix)",
		broken + `:9:12: job b: needs form a cycle: a → b → a`,
		broken + `:10:5: job b: unknown key "imag" (did you mean "image"?)`,
		broken + `:11:13: job b: step 1 has no image`,
		filepath.Join(filepath.Dir(ok), "missing.yaml") + ":1:1: open ",
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("stdout:\n%s\nwant %d lines", out, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want %q…", i+1, lines[i], w)
		}
	}
	if errOut != "hubctl: workflow files have errors (see above)\n" {
		t.Errorf("stderr %q", errOut)
	}
}

func TestWorkflowValidateJSON(t *testing.T) {
	ok, broken := writeWorkflows(t)
	code, out, _ := run(t, nil, "workflow", "validate", "-o", "json", ok, broken)
	if code == 0 {
		t.Error("exit 0 with a broken file")
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var got []WorkflowValidation
	for sc.Scan() {
		var v WorkflowValidation
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		got = append(got, v)
	}
	if len(got) != 2 || !got[0].OK || got[0].Jobs != 2 || got[0].Runs != 3 || len(got[0].Errors) != 0 || got[1].OK || len(got[1].Errors) != 3 {
		t.Fatalf("got %+v", got)
	}
	if e := got[1].Errors[1]; e.Line != 10 || e.Col != 5 || !strings.Contains(e.Msg, `unknown key "imag"`) {
		t.Errorf("error %+v", e)
	}
	if !strings.Contains(out, `"errors":[]`) || !strings.Contains(out, `"line":10,"column":5,"message":`) {
		t.Errorf("json shape: %s", out)
	}
}

func TestWorkflowValidateStdin(t *testing.T) {
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(workflowOK)
	code := Execute(context.Background(), NewFactory(ios, BuildInfo{}), []string{"workflow", "validate", "-"})
	if code != 0 || out.String() != "-: ok (2 jobs, 3 runs after matrix)\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestWorkflowValidateHostileFile: a file too big is refused by its size without
// being read whole, and control characters from the file never reach the terminal.
func TestWorkflowValidateHostileFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("name: w\n#"+strings.Repeat("x", 2<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	esc := filepath.Join(dir, "esc.yaml")
	if err := os.WriteFile(esc, []byte("name: w\non: manual\njobs:\n  \"\\e[31mred\":\n    image: alpine\n    steps: [{run: x}]\n    bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, nil, "workflow", "validate", big, esc, dir)
	if code == 0 {
		t.Error("exit 0")
	}
	if !strings.Contains(out, big+":1:1: the file is larger than 1048576 bytes (1 MiB)") {
		t.Errorf("big file: %s", out)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(out, esc+":7:5: job ") || !strings.Contains(out, `unknown key "bogus"`) {
		t.Errorf("escape sequence: %q", out)
	}
	if !strings.Contains(out, dir+":1:1: "+dir+" is a directory") {
		t.Errorf("directory: %s", out)
	}
}

func TestWorkflowValidateFlags(t *testing.T) {
	var got *WorkflowValidateOptions
	ios, _, _, _ := iostreams.Test()
	cmd := NewCmdWorkflowValidate(NewFactory(ios, BuildInfo{}), func(o *WorkflowValidateOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"-o", "json", "a.yaml", "b.yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Output != "json" || strings.Join(got.Files, ",") != "a.yaml,b.yaml" {
		t.Errorf("options %+v", got)
	}
	code, _, errOut := run(t, nil, "workflow", "validate", "-o", "yaml", "x.yaml")
	if code == 0 || errOut != "hubctl: invalid --output \"yaml\": want json (see 'hubctl workflow validate --help')\n" {
		t.Errorf("-o yaml: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t, nil, "workflow", "validate")
	if code == 0 || !strings.Contains(errOut, "requires at least 1 arg") {
		t.Errorf("no file: exit %d, stderr %q", code, errOut)
	}
}
