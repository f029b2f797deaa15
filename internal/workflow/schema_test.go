package workflow

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const (
	schemaFile = "../../docs/workflow.schema.json"
	docFile    = "../../docs/workflows.md"
	// deployDocFile shows a workflow that deploys (hubctl deploy in a step).
	deployDocFile = "../../docs/deploy.md"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("workflow.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("workflow.schema.json")
	if err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	return s
}

// schemaValidate checks a YAML workflow against the schema as an editor would: the
// YAML read as data and seen as JSON.
func schemaValidate(s *jsonschema.Schema, src []byte) error {
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

var (
	yamlBlockRe      = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	deployWorkflowRe = regexp.MustCompile("(?s)```yaml workflow\n(.*?)```")
)

// docExamples are the ```yaml blocks of docs/workflows.md: each is a whole workflow.
func docExamples(t *testing.T) map[string][]byte {
	t.Helper()
	md, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range yamlBlockRe.FindAllSubmatchIndex(md, -1) {
		line := bytes.Count(md[:m[0]], []byte("\n")) + 1
		out["workflows.md:"+strconv.Itoa(line)] = md[m[2]:m[3]]
	}
	if len(out) < 4 {
		t.Fatalf("%s: %d yaml examples, want at least 4", docFile, len(out))
	}
	// docs/deploy.md's push → workflow → deploy example (```yaml workflow).
	dmd, err := os.ReadFile(deployDocFile)
	if err != nil {
		t.Fatal(err)
	}
	n := len(out)
	for _, m := range deployWorkflowRe.FindAllSubmatchIndex(dmd, -1) {
		line := bytes.Count(dmd[:m[0]], []byte("\n")) + 1
		out["deploy.md:"+strconv.Itoa(line)] = dmd[m[2]:m[3]]
	}
	if len(out) == n {
		t.Fatalf("%s: no ```yaml workflow example", deployDocFile)
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

// TestDocExamples: every example of docs/workflows.md and testdata is valid for the
// parser and for the JSON Schema.
func TestWorkflowDocExamples(t *testing.T) {
	s := compileSchema(t)
	for name, src := range docExamples(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(src); err != nil {
				t.Errorf("parser:\n%v", err)
			}
			if err := schemaValidate(s, src); err != nil {
				t.Errorf("schema: %v", err)
			}
		})
	}
}

// TestSchemaRejectsUnknownKeys: an unknown key anywhere the parser refuses one is
// refused by the schema too, so an editor flags what validate will.
func TestWorkflowSchemaRejectsUnknownKeys(t *testing.T) {
	s := compileSchema(t)
	base := `name: w
on:
  push: {tags: "v*"}
  schedule: [{cron: "0 3 * * *"}]
  webhook: {secret: S}
  manual: {inputs: {x: {type: string}}}
  workflow: {workflows: [other]}
permissions: {push: ["acme/*"]}
concurrency: {group: g}
jobs:
  a:
    image: alpine
    matrix: {os: [a, b]}
    environment: {name: prod, approvers: [alice]}
    resources: {cpu: 1}
    services: {db: {image: postgres}}
    artifacts: [{name: d, path: dist}]
    cache: {key: k}
    concurrency: {group: g}
    steps:
      - run: "true"
`
	if _, err := Parse([]byte(base)); err != nil {
		t.Fatalf("base: %v", err)
	}
	if err := schemaValidate(s, []byte(base)); err != nil {
		t.Fatalf("base: schema: %v", err)
	}
	for _, tt := range []struct{ name, old, new string }{
		{"top", "name: w\n", "name: w\nnmae: x\n"},
		{"on", "  push: {", "  pushed: {}\n  push: {"},
		{"push", `{tags: "v*"}`, `{tag: "v*"}`},
		{"schedule", `{cron: "0 3 * * *"}`, `{cron: "0 3 * * *", tz: UTC}`},
		{"webhook", "{secret: S}", "{secret: S, url: x}"},
		{"manual", "{inputs:", "{input: {}, inputs:"},
		{"input", "{type: string}", "{type: string, label: x}"},
		{"workflow trigger", "{workflows: [other]}", "{workflows: [other], branches: [x]}"},
		{"permissions", `{push: ["acme/*"]}`, `{push: ["acme/*"], delete: [x]}`},
		{"concurrency", "concurrency: {group: g}\njobs", "concurrency: {group: g, cancel: true}\njobs"},
		{"job", "    image: alpine\n", "    image: alpine\n    runs-on: linux\n"},
		{"environment", "{name: prod, approvers: [alice]}", "{name: prod, approvers: [alice], url: x}"},
		{"resources", "{cpu: 1}", "{cpu: 1, gpu: 1}"},
		{"service", "{db: {image: postgres}}", "{db: {image: postgres, ports: [5432]}}"},
		{"artifact", "{name: d, path: dist}", "{name: d, path: dist, retention: 1}"},
		{"cache", "{key: k}", "{key: k, restore-keys: [x]}"},
		{"step", `- run: "true"`, `- run: "true"` + "\n        shell: bash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("base lacks %q", tt.old)
			}
			src := []byte(strings.Replace(base, tt.old, tt.new, 1))
			_, perr := Parse(src)
			serr := schemaValidate(s, src)
			if perr == nil || !strings.Contains(perr.Error(), "unknown") {
				t.Errorf("parser accepted it: %v", perr)
			}
			if serr == nil {
				t.Error("schema accepted it")
			}
		})
	}
}
