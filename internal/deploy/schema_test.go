package deploy

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
	schemaFile = "../../docs/deploy.schema.json"
	docFile    = "../../docs/deploy.md"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		t.Fatalf("deploy.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("deploy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("deploy.schema.json")
	if err != nil {
		t.Fatalf("deploy.schema.json: %v", err)
	}
	return s
}

// TestSchemaPublished: the embedded schema is the one docs/ publishes.
func TestSchemaPublished(t *testing.T) {
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Schema) {
		t.Fatal("docs/deploy.schema.json differs from internal/deploy/deploy.schema.json: copy one onto the other")
	}
}

// schemaValidate checks a YAML deploy file against the schema as an editor would.
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
	yamlBlockRe = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")
	// heredocRe is a deploy file written by a step: `cat > deploy.yaml <<EOF` … `EOF`,
	// indented as the step's run: is.
	heredocRe = regexp.MustCompile("(?m)^( *)cat > deploy.yaml <<EOF\n((?s:.*?))^ *EOF$")
)

// examples are the ```yaml blocks of docs/deploy.md that start a line (each a whole
// deploy file; an indented block inside a list is a fragment, such as chart values,
// and a ```yaml workflow block is a workflow file) and testdata/*.yaml.
func examples(t *testing.T) map[string][]byte {
	t.Helper()
	md, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range yamlBlockRe.FindAllSubmatchIndex(md, -1) {
		line := bytes.Count(md[:m[0]], []byte("\n")) + 1
		out["deploy.md:"+strconv.Itoa(line)] = md[m[2]:m[3]]
	}
	if len(out) < 3 {
		t.Fatalf("%s: %d yaml examples, want at least 3", docFile, len(out))
	}
	// The deploy file the workflow example's step writes (a heredoc in its run:),
	// with the tag it deploys filled in.
	for _, m := range heredocRe.FindAllSubmatchIndex(md, -1) {
		line := bytes.Count(md[:m[0]], []byte("\n")) + 1
		body := string(md[m[4]:m[5]])
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			lines = append(lines, strings.TrimPrefix(l, string(md[m[2]:m[3]])))
		}
		out["deploy.md:"+strconv.Itoa(line)+" (heredoc)"] = []byte(strings.ReplaceAll(strings.Join(lines, "\n"), "$HUBCTL_TAG", "v2"))
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 3 {
		t.Fatalf("testdata: %d examples", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

// TestDeployDocExamples: every example of docs/deploy.md and testdata is valid for
// the parser and for the JSON Schema.
func TestDeployDocExamples(t *testing.T) {
	s := compileSchema(t)
	for name, src := range examples(t) {
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

// TestDeploySchemaRejectsUnknownKeys: an unknown key anywhere the parser refuses one
// is refused by the schema too, so an editor flags what validate will.
func TestDeploySchemaRejectsUnknownKeys(t *testing.T) {
	s := compileSchema(t)
	docker, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kube, err := os.ReadFile("testdata/kube.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		base     []byte
		old, new string
	}{
		{"top", docker, "service:\n", "servce: {}\nservice:\n"},
		{"service", docker, "  replicas: 3\n", "  replicas: 3\n  scale: 2\n"},
		{"resources", docker, "    cpu: \"0.5\"\n", "    cpu: \"0.5\"\n    gpu: 1\n"},
		{"proxy", docker, "    port: 8080\n", "    port: 8080\n    path: /\n"},
		{"proxy tls", docker, "      key: /etc/hubctl/web.key\n", "      key: /etc/hubctl/web.key\n      verify: false\n"},
		{"healthcheck", docker, "    threshold: 3\n", "    threshold: 3\n    retries: 3\n"},
		{"host", docker, "  - name: local\n", "  - name: local\n    weight: 2\n"},
		{"host tls", docker, "      ca: /etc/hubctl/docker/ca.pem\n", "      ca: /etc/hubctl/docker/ca.pem\n      verify: false\n"},
		{"accessory", docker, "    host: local\n", "    host: local\n    restart: always\n"},
		{"kubernetes", kube, "  namespace: shop\n", "  namespace: shop\n  wait: true\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(tt.base, []byte(tt.old)) {
				t.Fatalf("base lacks %q", tt.old)
			}
			src := bytes.Replace(tt.base, []byte(tt.old), []byte(tt.new), 1)
			_, perr := Parse(src)
			if perr == nil || !strings.Contains(perr.Error(), "unknown key") {
				t.Errorf("parser accepted it: %v", perr)
			}
			if err := schemaValidate(s, src); err == nil {
				t.Error("schema accepted it")
			}
		})
	}
}
