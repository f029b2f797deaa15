package workflow

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/events"
)

// minimal is the smallest valid workflow; cases below change one thing in it.
const minimal = `name: w
on: manual
jobs:
  a:
    image: alpine:3.20
    steps:
      - run: "true"
`

func TestWorkflowParseExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(src); err != nil {
				t.Fatalf("%s:\n%v", f, err)
			}
		})
	}
}

func TestWorkflowParseRelease(t *testing.T) {
	src, err := os.ReadFile("testdata/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "release" || len(w.Jobs) != 5 || w.Runs() != 8 {
		t.Errorf("name %q, %d jobs, %d runs", w.Name, len(w.Jobs), w.Runs())
	}
	if want := []string{"inspect", "test", "scan", "deploy", "notify"}; !slices.Equal(w.Order, want) {
		t.Errorf("order %v, want %v", w.Order, want)
	}
	test := w.Job("test")
	var names []string
	for _, r := range test.Runs {
		names = append(names, r.Name)
	}
	if want := []string{"test (linux, amd64)", "test (linux, arm64)", "test (windows, amd64)", "test (darwin, arm64)"}; !slices.Equal(names, want) {
		t.Errorf("runs %q, want %q", names, want)
	}
	if test.Timeout != 20*time.Minute || test.Retries != 1 || test.Resources.MilliCPU != 1500 || test.Resources.Memory != 1<<30 {
		t.Errorf("test: timeout %v retries %d resources %+v", test.Timeout, test.Retries, test.Resources)
	}
	if test.Cache == nil || test.Cache.Path != DefaultCachePath || len(test.Services) != 1 || test.Services[0].Name != "db" {
		t.Errorf("test: cache %+v services %+v", test.Cache, test.Services)
	}
	deploy := w.Job("deploy")
	if e := deploy.Environment; e == nil || e.Name != "production" || e.Required != 2 || len(e.Approvers) != 3 || e.Timeout != 12*time.Hour {
		t.Errorf("deploy environment %+v", deploy.Environment)
	}
	if c := deploy.Concurrency; c == nil || c.Group != "deploy-production" || c.Queue != DefaultQueue || c.CancelInProgress {
		t.Errorf("deploy concurrency %+v", deploy.Concurrency)
	}
	if deploy.IfStatus || !w.Job("notify").IfStatus {
		t.Error("IfStatus: deploy calls no status function, notify calls always()")
	}
	if in := w.On.Manual.Inputs; len(in) != 3 || in[0].Default != "staging" || in[1].Default != true || in[2].Type != InputString || in[2].Default != "" {
		t.Errorf("inputs %+v", in)
	}
	if w.Concurrency.Queue != 5 || w.Permissions.Push[0] != "acme/*" || !slices.Equal(w.Permissions.Deploy, []string{"web", "api-*"}) {
		t.Errorf("concurrency %+v permissions %+v", w.Concurrency, w.Permissions)
	}
	if s := deploy.Steps[0]; s.Name != "deploy" || !slices.Equal(s.Secrets, []string{"KUBECONFIG_DATA"}) {
		t.Errorf("deploy step %+v", s)
	}
}

func TestWorkflowPushTriggerMatches(t *testing.T) {
	src, _ := os.ReadFile("testdata/release.yaml")
	w, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	push := w.On.Push
	ev := func(repo, tag, kind string) events.Event {
		return events.Event{Type: events.ManifestPushed, Repository: repo, Tag: tag, Kind: kind}
	}
	tests := []struct {
		e    events.Event
		want bool
	}{
		{ev("acme/api", "v1.2.3", "image"), true},
		{ev("acme/web", "v1", "image"), true},
		{ev("acme/worker", "v1", "image"), true},
		{ev("acme/webx", "v1", "image"), false}, // a regular expression matches the whole name
		{ev("xacme/web", "v1", "image"), false},
		{ev("acme/api", "latest", "image"), false},
		{ev("acme/api", "", "image"), false}, // a push by digest has no tag
		{ev("acme/api", "v1", "chart"), false},
		{events.Event{Type: events.TagDeleted, Repository: "acme/api", Tag: "v1", Kind: "image"}, false},
	}
	for _, tt := range tests {
		if got := push.Matches(tt.e); got != tt.want {
			t.Errorf("%s %s:%s %s: got %v", tt.e.Type, tt.e.Repository, tt.e.Tag, tt.e.Kind, got)
		}
	}
	tag := &TagTrigger{Repositories: []Pattern{mustPattern(t, "acme/*")}}
	if !tag.Matches(events.Event{Type: events.TagDeleted, Repository: "acme/api", Tag: "v1"}) ||
		tag.Matches(events.Event{Type: events.TagDeleted, Repository: "other/api", Tag: "v1"}) ||
		tag.Matches(events.Event{Type: events.ManifestPushed, Repository: "acme/api", Tag: "v1"}) {
		t.Error("tag trigger")
	}
	any := &PushTrigger{ArtifactTypes: []string{"application/vnd.acme.sbom"}}
	if !any.Matches(events.Event{Type: events.ManifestPushed, Repository: "a/b", Kind: "other", ArtifactType: "application/vnd.acme.sbom"}) {
		t.Error("artifact type by media type")
	}
}

func mustPattern(t *testing.T, s string) Pattern {
	t.Helper()
	p, err := ParsePattern(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWorkflowMatrixOrder(t *testing.T) {
	w, err := Parse([]byte(`name: w
on: manual
jobs:
  a:
    image: alpine
    matrix:
      x: [1, 2]
      y: [a, b, c]
      exclude:
        - {y: b}
        - {x: 2, y: c}
      include:
        - {x: 3, y: z}
    steps: [{run: "true"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range w.Jobs[0].Runs {
		keys = append(keys, r.Key)
	}
	if want := []string{"1, a", "1, c", "2, a", "3, z"}; !slices.Equal(keys, want) {
		t.Errorf("got %q, want %q", keys, want)
	}
}

func TestWorkflowOrder(t *testing.T) {
	w, err := Parse([]byte(`name: w
on: manual
jobs:
  d: {needs: [b, c], image: alpine, steps: [{run: "true"}]}
  c: {needs: a, image: alpine, steps: [{run: "true"}]}
  b: {needs: a, image: alpine, steps: [{run: "true"}]}
  a: {image: alpine, steps: [{run: "true"}]}
  e: {image: alpine, steps: [{run: "true"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "c", "b", "d", "e"}; !slices.Equal(w.Order, want) {
		t.Errorf("order %v, want %v", w.Order, want)
	}
}

// TestParseErrors: each broken file gives its error, at its line and column.
func TestWorkflowParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // each a prefix "LINE:COL: " and a part of the message
	}{
		// Decoding.
		{"empty", ``, []string{"1:1: the file is empty"}},
		{"syntax", "name: w\n  on: manual\n", []string{"2:1: YAML: mapping values are not allowed in this context"}},
		{"two documents", minimal + "---\nname: x\n", []string{"8:1: a workflow file holds one YAML document"}},
		{"not a mapping", "- a\n", []string{"1:1: the workflow must be a mapping, not a list"}},
		{"unknown top key", minimal + "nmae: x\n", []string{`8:1: the workflow: unknown key "nmae" (did you mean "name"?)`}},
		{"missing keys", "env: {A: b}\n", []string{"1:1: the workflow has no name", "1:1: the workflow has no on", "1:1: the workflow has no jobs"}},
		{"duplicate key", minimal + "name: v\n", []string{`8:1: the workflow: "name" is given twice`}},
		{"alias", "name: w\non: manual\nx: &a {}\njobs:\n  a:\n    image: alpine\n    steps: *a\n", []string{"7:12: YAML aliases (*a) are not supported"}},
		{"custom tag", "name: !foo w\non: manual\njobs: {}\n", []string{"1:7: the tag !foo is not supported"}},
		{"bad name", strings.Replace(minimal, "name: w", "name: My Flow", 1), []string{`1:7: name "My Flow" is not a valid name`}},
		{"name not string", strings.Replace(minimal, "name: w", "name: [a]", 1), []string{"1:7: name must be a string, not a list"}},
		{"too big", "name: w\n#" + strings.Repeat("x", MaxFileSize), []string{"1:1: the file is larger than 1048576 bytes (1 MiB)"}},

		// Triggers.
		{"unknown trigger", strings.Replace(minimal, "on: manual", "on: [pusj]", 1), []string{`2:6: on: unknown trigger "pusj" (did you mean "push"?)`}},
		{"no trigger", strings.Replace(minimal, "on: manual", "on: {}", 1), []string{"2:5: on names no trigger"}},
		{"unknown push key", strings.Replace(minimal, "on: manual", "on:\n  push:\n    tag: v*", 1), []string{`4:5: on: push: unknown key "tag" (did you mean "tags"?)`}},
		{"bad glob", strings.Replace(minimal, "on: manual", "on:\n  push:\n    tags: ['v[']", 1), []string{`4:12: on: push: tags: "v[" is not a glob pattern`}},
		{"bad regex", strings.Replace(minimal, "on: manual", "on:\n  push:\n    repositories: ['re:(acme']", 1), []string{`4:20: on: push: repositories: regular expression "(acme": missing closing )`}},
		{"bad artifact type", strings.Replace(minimal, "on: manual", "on:\n  push:\n    artifact-types: [images]", 1), []string{`4:22: on: push: artifact-types: "images" is neither image, chart, other nor a media type`}},
		{"bad cron", strings.Replace(minimal, "on: manual", "on:\n  schedule:\n    - cron: '61 * * * *'", 1), []string{`4:13: on: schedule: cron "61 * * * *": end of range (61) above maximum (59): 61`}},
		{"cron six fields", strings.Replace(minimal, "on: manual", "on:\n  schedule:\n    - cron: '0 0 3 * * *'", 1), []string{`4:13: on: schedule: cron "0 0 3 * * *": expected exactly 5 fields, found 6`}},
		{"cron never", strings.Replace(minimal, "on: manual", "on:\n  schedule:\n    - cron: '0 0 30 2 *'", 1), []string{`4:13: on: schedule: cron "0 0 30 2 *" never fires`}},
		{"cron every second", strings.Replace(minimal, "on: manual", "on:\n  schedule:\n    - cron: '@every 10s'", 1), []string{"4:13: on: schedule: cron \"@every 10s\": a schedule fires at most once a minute"}},
		{"cron tz inline", strings.Replace(minimal, "on: manual", "on:\n  schedule:\n    - cron: 'CRON_TZ=UTC 0 3 * * *'", 1), []string{"4:13: on: schedule: cron \"CRON_TZ=UTC 0 3 * * *\": give the time zone as timezone:"}},
		{"bad timezone", strings.Replace(minimal, "on: manual", "on:\n  schedule:\n    - cron: '0 3 * * *'\n      timezone: Mars/Olympus", 1), []string{`4:13: on: schedule: timezone "Mars/Olympus" is not an IANA time zone name`}},
		{"schedule without cron", strings.Replace(minimal, "on: manual", "on: [schedule]", 1), []string{"2:6: on: schedule needs a cron entry"}},
		{"workflow without names", strings.Replace(minimal, "on: manual", "on:\n  workflow: {results: [success]}", 1), []string{"3:13: on: workflow needs workflows"}},
		{"workflow bad result", strings.Replace(minimal, "on: manual", "on:\n  workflow: {workflows: [x], results: [done]}", 1), []string{`3:40: on: workflow: results: "done": want success, failure or cancelled`}},
		{"workflow itself", strings.Replace(minimal, "on: manual", "on:\n  workflow: {workflows: [w]}", 1), []string{"3:3: on: workflow: a workflow cannot start itself (w)"}},
		{"input bad type", strings.Replace(minimal, "on: manual", "on:\n  manual:\n    inputs:\n      x: {type: number}", 1), []string{`5:17: input x: type "number": want string, choice or boolean`}},
		{"input choice no options", strings.Replace(minimal, "on: manual", "on:\n  manual:\n    inputs:\n      x: {type: choice}", 1), []string{"5:7: input x: a choice input needs options"}},
		{"input default not option", strings.Replace(minimal, "on: manual", "on:\n  manual:\n    inputs:\n      x: {type: choice, options: [a, b], default: c}", 1), []string{`5:51: input x: default "c" is not one of the options (a, b)`}},
		{"input boolean default", strings.Replace(minimal, "on: manual", "on:\n  manual:\n    inputs:\n      x: {type: boolean, default: yes}", 1), []string{`5:35: input x: default must be true or false, not the string "yes"`}},
		{"input options on string", strings.Replace(minimal, "on: manual", "on:\n  manual:\n    inputs:\n      x: {options: [a]}", 1), []string{"5:20: input x: options are for choice inputs, not string"}},
		{"input bad name", strings.Replace(minimal, "on: manual", "on:\n  manual:\n    inputs:\n      dry-run: {type: boolean}", 1), []string{`5:7: on: manual: inputs: "dry-run" is not a valid input name`}},
		{"permissions", minimal + "permissions: {push: [Acme/App]}\n", []string{`8:22: permissions: push: "Acme/App" is not a repository name, NAMESPACE/* or *`}},
		{"deploy permission with a namespace", minimal + "permissions: {deploy: [acme/web]}\n", []string{`8:24: permissions: deploy: "acme/web": want a service of this namespace by name, PREFIX* or *`}},
		{"deploy permission glob", minimal + "permissions: {deploy: [\"*web\", Web, \"-x\", \"a*b\"]}\n", []string{
			`8:24: permissions: deploy: "*web": want a service of this namespace by name, PREFIX* or *`,
			`8:32: permissions: deploy: "Web": want a service of this namespace by name, PREFIX* or *`,
			`8:37: permissions: deploy: "-x": want a service of this namespace by name, PREFIX* or *`,
			`8:43: permissions: deploy: "a*b": want a service of this namespace by name, PREFIX* or *`}},

		// Jobs.
		{"no jobs", "name: w\non: manual\njobs: {}\n", []string{"3:7: jobs is empty"}},
		{"bad job name", strings.Replace(minimal, "  a:", "  1st:", 1), []string{`4:3: jobs: "1st" is not a valid job name`}},
		{"unknown job key", minimal + "    image2: x\n", []string{`8:5: job a: unknown key "image2" (did you mean "image"?)`}},
		// The workspace is the executor's (workflows.kube.workspace_size), not a job's:
		// nothing per job is promised, so the key is refused, not ignored.
		{"job workspace", minimal + "    workspace: {size: 1Gi}\n", []string{`8:5: job a: unknown key "workspace" (known keys: artifacts, cache, concurrency, env, environment, if, image, matrix, needs, outputs, resources, retries, services, steps, timeout)`}},
		{"no steps", "name: w\non: manual\njobs:\n  a:\n    image: alpine\n", []string{"5:5: job a has no steps"}},
		{"step without run or image", strings.Replace(minimal, `- run: "true"`, `- name: nothing`, 1), []string{"7:9: job a: step 1 needs run (a shell script) or image"}},
		{"step without any image", "name: w\non: manual\njobs:\n  a:\n    steps:\n      - run: make\n", []string{"6:9: job a: step 1 has no image"}},
		{"step args with run", strings.Replace(minimal, `- run: "true"`, `- {run: "true", args: [x]}`, 1), []string{"7:29: job a: step 1: args are for an image's entrypoint"}},
		{"bad image", strings.Replace(minimal, "image: alpine:3.20", "image: 'Alpine:::'", 1), []string{`5:12: job a: image "Alpine:::" is not an image reference`}},
		{"bad timeout", minimal + "    timeout: 30\n", []string{`8:14: job a: timeout "30" is not a duration`}},
		{"timeout too long", minimal + "    timeout: 100h\n", []string{"8:14: job a: timeout must be more than 0 and at most 72h, not 100h"}},
		{"retries", minimal + "    retries: 11\n", []string{"8:14: job a: retries must be between 0 and 10, not 11"}},
		{"retries type", minimal + "    retries: two\n", []string{`8:14: job a: retries must be a whole number, not the string "two"`}},
		{"env name", minimal + "    env: {1X: a}\n", []string{`8:11: job a: env: "1X" is not a valid variable name`}},
		{"env reserved", minimal + "    env: {HUBCTL_TOKEN: a}\n", []string{"8:11: job a: env: HUBCTL_TOKEN: names starting with HUBCTL_ are set by the hub"}},
		{"env value map", minimal + "    env: {A: {b: c}}\n", []string{"8:14: job a: env A must be a string, not a mapping"}},
		{"secret in env too", strings.Replace(minimal, `- run: "true"`, `- {run: "true", env: {K: v}, secrets: [K]}`, 1), []string{"7:9: job a: step 1: K is both in env and in secrets"}},
		{"secret bad name", strings.Replace(minimal, `- run: "true"`, `- {run: "true", secrets: [my-key]}`, 1), []string{`7:33: job a: step 1: secrets: "my-key" is not a valid secret name`}},
		{"workdir escapes", strings.Replace(minimal, `- run: "true"`, `- {run: "true", workdir: ../x}`, 1), []string{`7:32: job a: step 1: workdir "../x" must be a relative path inside the workspace`}},
		{"service name", minimal + "    services: {DB: {image: postgres}}\n", []string{`8:16: job a: services: "DB" is not a valid service name`}},
		{"service no image", minimal + "    services: {db: {env: {A: b}}}\n", []string{"8:20: job a: services: db has no image"}},
		{"output name", minimal + "    outputs: [my-out]\n", []string{`8:15: job a: outputs: "my-out" is not a valid output name`}},
		{"artifact path", minimal + "    artifacts: [{name: dist, path: /abs}]\n", []string{`8:36: job a: artifacts: path "/abs" must be a relative path inside the workspace`}},
		{"artifact twice", minimal + "    artifacts: [{name: d, path: a}, {name: d, path: b}]\n", []string{"8:37: job a: artifacts: d is given twice"}},
		{"cache no key", minimal + "    cache: {path: /c}\n", []string{"8:12: job a: cache has no key"}},
		{"cache relative", minimal + "    cache: {key: k, path: c}\n", []string{`8:27: job a: cache: path "c" must be a clean absolute path`}},
		{"resources", minimal + "    resources: {cpu: lots, memory: 1Qi}\n", []string{`8:22: job a: resources: cpu "lots"`, `8:36: job a: resources: memory "1Qi"`}},
		{"concurrency queue", minimal + "    concurrency: {group: g, queue: 1000}\n", []string{"8:36: job a: concurrency: queue must be between 0 and 100, not 1000"}},
		{"concurrency no group", minimal + "    concurrency: {queue: 2}\n", []string{"8:18: job a: concurrency has no group"}},
		{"approvers", minimal + "    environment: {name: prod, approvers: [alice], required: 2}\n", []string{"8:61: job a: environment: required is 2 but there are only 1 approvers"}},
		{"approver name", minimal + "    environment: {name: prod, approvers: [Alice]}\n", []string{`8:43: job a: environment: approvers: "Alice" is not an account name`}},
		{"required without approvers", minimal + "    environment: {name: prod, required: 1}\n", []string{"8:41: job a: environment: required needs approvers"}},
		{"environment no name", minimal + "    environment: {approvers: [alice]}\n", []string{"8:18: job a: environment has no name"}},
		{"too many steps", "name: w\non: manual\njobs:\n  a:\n    image: alpine\n    steps:\n" + strings.Repeat("      - run: x\n", MaxStepsPerJob+1), []string{"7:7: job a: 101 steps; a job has at most 100"}},
		{"run template", strings.Replace(minimal, `- run: "true"`, `- run: echo ${{ event.tag }}`, 1), []string{"7:9: job a: step 1: run: ${{ … }} is not allowed in a script"}},

		// Needs and the DAG.
		{"unknown need", minimal + "    needs: [b]\n", []string{`8:13: job a: needs "b", which is not a job of this workflow`}},
		{"need typo", minimal + "  build:\n    image: alpine\n    steps: [{run: x}]\n  test:\n    needs: biuld\n    image: alpine\n    steps: [{run: x}]\n", []string{`12:12: job test: needs "biuld", which is not a job of this workflow (did you mean "build"?)`}},
		{"need itself", minimal + "    needs: a\n", []string{"8:12: job a: needs itself (cycle a → a)"}},
		{"need twice", minimal + "  b:\n    needs: [a, a]\n    image: alpine\n    steps: [{run: x}]\n", []string{"9:16: job b: needs a twice"}},
		{"cycle", "name: w\non: manual\njobs:\n  a: {needs: c, image: alpine, steps: [{run: x}]}\n  b: {needs: a, image: alpine, steps: [{run: x}]}\n  c: {needs: b, image: alpine, steps: [{run: x}]}\n  d: {needs: c, image: alpine, steps: [{run: x}]}\n",
			[]string{"5:14: job b: needs form a cycle: a → b → c → a"}},
		{"two cycles", "name: w\non: manual\njobs:\n  a: {needs: b, image: alpine, steps: [{run: x}]}\n  b: {needs: a, image: alpine, steps: [{run: x}]}\n  c: {needs: d, image: alpine, steps: [{run: x}]}\n  d: {needs: c, image: alpine, steps: [{run: x}]}\n",
			[]string{"5:14: job b: needs form a cycle: a → b → a", "7:14: job d: needs form a cycle: c → d → c"}},

		// Matrices.
		{"matrix key", minimal + "    matrix: {go-version: [1]}\n", []string{`8:14: job a: matrix: "go-version" is not a valid matrix key`}},
		{"matrix empty axis", minimal + "    matrix: {os: []}\n", []string{"8:18: job a: matrix: os has no values"}},
		{"matrix duplicate value", minimal + "    matrix: {os: [a, a]}\n", []string{`8:22: job a: matrix: os: "a" is given twice`}},
		{"matrix exclude unknown key", minimal + "    matrix: {os: [a, b], exclude: [{oss: a}]}\n", []string{`8:37: job a: matrix: exclude: "oss" is not a key of the matrix (keys: os)`}},
		{"matrix exclude unknown value", minimal + "    matrix: {os: [a, b], exclude: [{os: c}]}\n", []string{`8:37: job a: matrix: exclude: os: "c" is not one of its values`}},
		{"matrix include partial", minimal + "    matrix: {os: [a], arch: [x], include: [{os: b}]}\n", []string{"8:44: job a: matrix: include: the entry has no arch"}},
		{"matrix include duplicate", minimal + "    matrix: {os: [a], include: [{os: a}]}\n", []string{"8:33: job a: matrix: include: this combination is already in the matrix"}},
		{"matrix all excluded", minimal + "    matrix: {os: [a], exclude: [{os: a}]}\n", []string{"8:13: job a: matrix: every combination is excluded"}},
		{"matrix too big", minimal + "    matrix: {a: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17], b: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}\n", []string{"8:13: job a: matrix: 272 combinations; a job runs at most 256"}},
		{"matrix product huge", minimal + "    matrix: {a: [1,2,3,4,5,6,7,8,9,10], b: [1,2,3,4,5,6,7,8,9,10], c: [1,2,3,4,5,6,7,8,9,10], d: [1,2,3,4,5,6,7,8,9,10]}\n", []string{"8:13: job a: matrix: its keys make more than 4096 combinations"}},
		{"matrix empty", minimal + "    matrix: {}\n", []string{"8:13: job a: matrix has no keys and no include"}},

		// Expressions.
		{"if unknown need", minimal + "  b:\n    needs: a\n    if: needs.c.result == \"success\"\n    image: alpine\n    steps: [{run: x}]\n", []string{"10:15: job b: if: unknown field c"}},
		{"if unknown output", minimal + "    outputs: [version]\n  b:\n    needs: a\n    if: needs.a.outputs.verison != \"\"\n    image: alpine\n    steps: [{run: x}]\n", []string{"11:25: job b: if: unknown field verison"}},
		{"if need not declared", minimal + "    outputs: [version]\n  b:\n    if: needs.a.outputs.version != \"\"\n    image: alpine\n    steps: [{run: x}]\n", []string{"10:15: job b: if: unknown field a"}},
		{"if unknown input", minimal + "    if: inputs.debug\n", []string{"8:16: job a: if: unknown field debug"}},
		{"if not bool", minimal + "    if: event.tag\n", []string{"8:9: job a: if: expected bool, but got string"}},
		{"if syntax", minimal + "    if: event.tag ==\n", []string{"8:20: job a: if: unexpected token EOF"}},
		{"if unknown name", minimal + "    if: github.ref == \"x\"\n", []string{"8:9: job a: if: unknown name github"}},
		{"if wrong type", minimal + "    matrix: {n: [1, 2]}\n    if: matrix.n == 1\n", []string{"9:18: job a: if: invalid operation: == (mismatched types string and int)"}},
		{"if hyphen job", "name: w\non: manual\njobs:\n  build-image:\n    image: alpine\n    outputs: [v]\n    steps: [{run: x}]\n  b:\n    needs: build-image\n    if: needs.build-image.outputs.v == \"1\"\n    image: alpine\n    steps: [{run: x}]\n",
			[]string{`10:15: job b: if: unknown field build (write needs["build-image"]`}},
		{"if matrix job outputs", "name: w\non: manual\njobs:\n  a:\n    image: alpine\n    matrix: {os: [x, y]}\n    outputs: [v]\n    steps: [{run: x}]\n  b:\n    needs: a\n    if: needs.a.outputs.v == \"1\"\n    image: alpine\n    steps: [{run: x}]\n",
			[]string{"11:17: job b: if: unknown field outputs"}},
		{"if matrix run unknown", "name: w\non: manual\njobs:\n  a:\n    image: alpine\n    matrix: {os: [x, y]}\n    outputs: [v]\n    steps: [{run: x}]\n  b:\n    needs: a\n    if: needs.a.runs[\"z\"].outputs.v == \"1\"\n    image: alpine\n    steps: [{run: x}]\n",
			[]string{`11:22: job b: if: unknown field z`}},
		{"env template unknown", minimal + "    env: {A: \"${{ inputs.nope }}\"}\n", []string{"8:26: job a: env A: unknown field nope"}},
		{"env template unclosed", minimal + "    env: {A: \"x ${{ event.tag\"}\n", []string{"8:17: job a: env A: ${{ is not closed by }}"}},
		{"env template empty", minimal + "    env: {A: \"${{ }}\"}\n", []string{"8:15: job a: env A: ${{ }} is empty"}},
		{"workflow env has no matrix", "name: w\non: manual\nenv:\n  A: ${{ matrix.os }}\njobs:\n  a:\n    image: alpine\n    steps: [{run: x}]\n", []string{"4:10: env A: unknown name matrix"}},
		{"image template", strings.Replace(minimal, "image: alpine:3.20", "image: ${{ matrix.os }}", 1), []string{"5:23: job a: image: unknown field os"}},
		{"cache key template", minimal + "    cache: {key: \"${{ needs.b }}\"}\n", []string{"8:29: job a: cache: key: unknown field b"}},
		{"status function args", minimal + "    if: always(1)\n", []string{"8:9: job a: if: too many arguments to call always"}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if seen[tt.name] {
			t.Fatalf("two cases named %q", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			w, err := Parse([]byte(tt.src))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("got %v (workflow %v), want Errors", err, w != nil)
			}
			for _, want := range tt.want {
				if !slices.ContainsFunc(es, func(e Error) bool { return strings.HasPrefix(e.Error(), want) }) {
					t.Errorf("no error %q in:\n%v", want, es)
				}
			}
			if len(es) > len(tt.want) {
				t.Errorf("%d errors, want %d:\n%v", len(es), len(tt.want), es)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 1 {
					t.Errorf("error without a position: %v", e)
				}
			}
		})
	}
}
