package deploy

import (
	"bytes"
	"strings"
	"testing"
)

const planSpec = `
service:
  name: web
  image: 127.0.0.1:5000/acme/web:1
  replicas: 3
  env:
    MODE: prod
  secrets: [TOKEN]
  proxy:
    port: 8080
hosts:
  - name: a
    docker: unix:///var/run/docker.sock
  - name: b
    docker: unix:///var/run/docker.sock
    env:
      REGION: eu
accessories:
  cache:
    image: 127.0.0.1:5000/acme/cache:1
    host: b
`

var planDigests = map[string]string{
	DigestKey: "127.0.0.1:5000/acme/web@sha256:" + strings.Repeat("1", 64),
	"cache":   "127.0.0.1:5000/acme/cache@sha256:" + strings.Repeat("2", 64),
}

func newPlan(t *testing.T, spec string, digests map[string]string, version int, state map[string]HostState) *Plan {
	t.Helper()
	p, err := NewPlan(PlanInput{Spec: mustParse(t, spec), Digests: digests, Secrets: map[string]string{"TOKEN": "s3cret"}, Version: version, State: state})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func names(ts []TaskSpec) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func cnames(cs []Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// TestPlanFirstDeploy: nothing runs, so every task and accessory starts, spread as
// Placement says, each host with its own overrides (so its own hash).
func TestPlanFirstDeploy(t *testing.T) {
	p := newPlan(t, planSpec, planDigests, 1, nil)
	if len(p.Hosts) != 2 {
		t.Fatalf("hosts = %+v", p.Hosts)
	}
	a, b := p.Hosts[0], p.Hosts[1]
	if got := names(a.Start); strings.Join(got, ",") != "hubctl-web-a-1-1,hubctl-web-a-1-2" {
		t.Errorf("a starts %v", got)
	}
	if got := names(b.Start); strings.Join(got, ",") != "hubctl-web-b-1-1" {
		t.Errorf("b starts %v", got)
	}
	if len(a.Accessories) != 0 || len(b.Accessories) != 1 || b.Accessories[0].Name != "hubctl-web-acc-cache" {
		t.Errorf("accessories a=%v b=%v", names(a.Accessories), names(b.Accessories))
	}
	if a.Start[0].Hash == b.Start[0].Hash {
		t.Error("host b overrides env, yet its tasks hash like a's")
	}
	envB := strings.Join(b.Start[0].Env, " ")
	if envB != "MODE=prod REGION=eu TOKEN=s3cret" {
		t.Errorf("b env = %q", envB)
	}
	l := a.Start[1].AllLabels()
	if l[LabelService] != "web" || l[LabelVersion] != "1" || l[LabelTask] != "2" || l[LabelConfig] != a.Start[1].Hash || l[LabelRole] != RoleTask || l[LabelHost] != "a" {
		t.Errorf("labels = %v", l)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "start hubctl-web-a-1-2") || !strings.Contains(out, "start accessory cache") || strings.Contains(out, "s3cret") {
		t.Errorf("plan text:\n%s", out)
	}
}

// TestPlanDiff: unchanged routed tasks are kept, changed ones replaced, extras and
// unrouted leftovers of a killed deploy stopped, running accessories left alone.
func TestPlanDiff(t *testing.T) {
	first := newPlan(t, planSpec, planDigests, 1, nil)
	hashA, hashB := first.Hosts[0].Start[0].Hash, first.Hosts[1].Start[0].Hash
	state := map[string]HostState{
		"a": {Containers: []Container{
			{Name: "hubctl-web-a-1-1", Role: RoleTask, Version: 1, Task: 1, Hash: hashA, State: "running", Routed: true},
			{Name: "hubctl-web-a-1-2", Role: RoleTask, Version: 1, Task: 2, Hash: hashA, State: "running", Routed: true},
			{Name: "hubctl-web-a-2-1", Role: RoleTask, Version: 2, Task: 1, Hash: hashA, State: "running", Routed: false}, // a killed deploy's
			{Name: "hubctl-proxy-web", Role: RoleProxy, State: "running"},
		}},
		"b": {Containers: []Container{
			{Name: "hubctl-web-b-1-1", Role: RoleTask, Version: 1, Task: 1, Hash: hashB, State: "running", Routed: true},
			{Name: "hubctl-web-acc-cache", Role: RoleAccessory, Accessory: "cache", Hash: "old", State: "running"},
		}},
	}
	p := newPlan(t, planSpec, planDigests, 3, state)
	a, b := p.Hosts[0], p.Hosts[1]
	if a.Changes() && len(a.Start) != 0 {
		t.Errorf("a starts %v", names(a.Start))
	}
	if got := strings.Join(cnames(a.Keep), ","); got != "hubctl-web-a-1-1,hubctl-web-a-1-2" {
		t.Errorf("a keeps %s", got)
	}
	if got := strings.Join(cnames(a.Stop), ","); got != "hubctl-web-a-2-1" {
		t.Errorf("a stops %s", got)
	}
	if b.Changes() {
		t.Errorf("b changes: %+v", b)
	}

	// A new image: every task is replaced, the accessory still not touched.
	digests := map[string]string{DigestKey: "127.0.0.1:5000/acme/web@sha256:" + strings.Repeat("3", 64), "cache": planDigests["cache"]}
	p = newPlan(t, planSpec, digests, 3, state)
	a, b = p.Hosts[0], p.Hosts[1]
	if len(a.Keep) != 0 || strings.Join(names(a.Start), ",") != "hubctl-web-a-3-1,hubctl-web-a-3-2" || len(a.Stop) != 3 {
		t.Errorf("a: keep %v start %v stop %v", cnames(a.Keep), names(a.Start), cnames(a.Stop))
	}
	if len(b.Start) != 1 || len(b.Stop) != 1 || len(b.Accessories) != 0 {
		t.Errorf("b: %+v", b)
	}

	// A stopped task with the desired hash is not kept: it serves nobody.
	state["b"].Containers[0].State = "exited"
	p = newPlan(t, planSpec, planDigests, 3, state)
	if b := p.Hosts[1]; len(b.Keep) != 0 || len(b.Start) != 1 {
		t.Errorf("b with its task exited: keep %v start %v", cnames(b.Keep), names(b.Start))
	}
}

// TestPlanRefuses: a missing secret or an unresolved image stops the plan.
func TestPlanRefuses(t *testing.T) {
	s := mustParse(t, planSpec)
	if _, err := NewPlan(PlanInput{Spec: s, Digests: planDigests, Version: 1}); err == nil || !strings.Contains(err.Error(), "secret TOKEN") {
		t.Errorf("without the secret: %v", err)
	}
	if _, err := NewPlan(PlanInput{Spec: s, Digests: map[string]string{}, Secrets: map[string]string{"TOKEN": "x"}, Version: 1}); err == nil {
		t.Error("an unresolved image was planned")
	}
	if _, err := NewPlan(PlanInput{Spec: s, Digests: map[string]string{DigestKey: planDigests[DigestKey]}, Secrets: map[string]string{"TOKEN": "x"}, Version: 1}); err == nil {
		t.Error("an unresolved accessory image was planned")
	}
}

// TestConfigHashIgnoresSecretValues: a label anyone on the engine reads must not
// depend on a secret's value.
func TestConfigHashIgnoresSecretValues(t *testing.T) {
	s := mustParse(t, planSpec)
	p1, err := NewPlan(PlanInput{Spec: s, Digests: planDigests, Secrets: map[string]string{"TOKEN": "one"}, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := NewPlan(PlanInput{Spec: s, Digests: planDigests, Secrets: map[string]string{"TOKEN": "two"}, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p1.Hosts[0].Start[0].Hash != p2.Hosts[0].Start[0].Hash {
		t.Error("the hash changed with the secret's value")
	}
}
