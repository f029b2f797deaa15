package layering

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Spec builds an image without a Dockerfile: the context copied to Dest, split into
// ordered, named layers by Layers (or a Preset), on a base with the image settings a
// Dockerfile would give. It is what hubctl.yaml holds.
type Spec struct {
	// Name is the file it came from, for messages.
	Name string `yaml:"-"`
	// From is the base image: a registry reference, oci:DIR or scratch (default).
	From string `yaml:"from"`
	// Dest is where the context goes in the image (default /app; /ko-app for go).
	Dest string `yaml:"dest"`
	// Preset names built-in rules (java, node, python, go); Layers replaces them.
	Preset string `yaml:"preset"`
	Layers []Rule `yaml:"layers"`
	// Exclude are .dockerignore-style patterns left out of the context.
	Exclude    []string          `yaml:"exclude"`
	Entrypoint []string          `yaml:"entrypoint"`
	Cmd        []string          `yaml:"cmd"`
	Env        map[string]string `yaml:"env"`
	User       string            `yaml:"user"`
	Workdir    string            `yaml:"workdir"`
	Ports      []string          `yaml:"ports"`
	Labels     map[string]string `yaml:"labels"`
}

// specRules is the preset name under which a spec's own rules are found.
const specRules = "spec"

// LoadSpec reads a hubctl.yaml.
func LoadSpec(file string) (Spec, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return Spec{}, err
	}
	var s Spec
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", file, err)
	}
	s.Name = file
	return s, nil
}

func (s *Spec) rules() ([]Rule, bool) {
	if len(s.Layers) > 0 {
		return s.Layers, true
	}
	r, ok := Presets[s.Preset]
	return r, ok
}

// dockerfile writes the spec as the Dockerfile it stands for, so one interpreter
// serves both: FROM, a COPY of the context split by the rules, then the settings.
func (s *Spec) dockerfile() ([]byte, error) {
	if s.Name == "" {
		s.Name = "hubctl.yaml"
	}
	if _, ok := s.rules(); !ok {
		if s.Preset == "" {
			return nil, fmt.Errorf("%s: give layers or a preset (%s)", s.Name, strings.Join(PresetNames(), ", "))
		}
		return nil, fmt.Errorf("%s: no preset %q (have %s)", s.Name, s.Preset, strings.Join(PresetNames(), ", "))
	}
	if rs, _ := s.rules(); true {
		if _, err := compileRules(rs); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	from := s.From
	if from == "" {
		from = "scratch"
	}
	dest := s.Dest
	if dest == "" {
		dest = "/app"
		if s.Preset == "go" && len(s.Layers) == 0 {
			dest = "/ko-app"
		}
	}
	if !path.IsAbs(dest) {
		return nil, fmt.Errorf("%s: dest %q must be an absolute path", s.Name, dest)
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	for _, v := range append([]string{from, dest, s.User, s.Workdir}, s.Ports...) {
		if strings.ContainsAny(v, "\n\r") {
			return nil, fmt.Errorf("%s: %q: values cannot span lines", s.Name, v)
		}
	}
	line("FROM %s", quote(from))
	line("# %s%s", presetDirective, specRules)
	line("COPY . %s", quote(strings.TrimSuffix(dest, "/")+"/"))
	env := s.Env
	if s.Preset == "go" && len(s.Layers) == 0 {
		env = mapWith(env, "KO_DATA_PATH", "/var/run/ko")
	}
	keys := sortedKeys(env)
	for _, k := range keys {
		line("ENV %s=%s", quote(k), quote(env[k]))
	}
	for _, k := range sortedKeys(s.Labels) {
		line("LABEL %s=%s", quote(k), quote(s.Labels[k]))
	}
	if s.Workdir != "" {
		line("WORKDIR %s", quote(s.Workdir))
	}
	if s.User != "" {
		line("USER %s", quote(s.User))
	}
	for _, p := range s.Ports {
		line("EXPOSE %s", quote(p))
	}
	if len(s.Entrypoint) > 0 {
		j, _ := json.Marshal(s.Entrypoint)
		line("ENTRYPOINT %s", escapeJSON(j))
	}
	if len(s.Cmd) > 0 {
		j, _ := json.Marshal(s.Cmd)
		line("CMD %s", escapeJSON(j))
	}
	return []byte(b.String()), nil
}

// quote makes v one Dockerfile word whose expansion is v itself.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`)
	return `"` + r.Replace(v) + `"`
}

// escapeJSON keeps a JSON array on one line (Marshal escapes newlines already).
func escapeJSON(j []byte) string { return string(j) }

func mapWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
