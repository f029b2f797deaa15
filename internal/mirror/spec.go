// Package mirror copies many repositories from source registries to target
// registries, as `hubctl mirror -f mirror.yaml` does. A spec lists entries; each
// entry either lists the tags of a source repository and keeps those its TagFilter
// selects, or names one reference (a tag or digest) to copy as is. Plan turns a spec
// into (source, target) pairs; Run copies them through an Engine, the transfer
// engine seen through the little the mirror needs of it.
//
// A spec file looks like this:
//
//	defaults:                       # optional; each field can be set again per entry
//	  target: 127.0.0.1:5000/mirror # prefix: an entry without a target goes to <prefix>/<source path>
//	  platforms: [linux/amd64, linux/arm64]
//	  referrers: true
//	  tags:
//	    include: ['^v?\d+\.\d+\.\d+$']
//	    exclude: ['-rc']
//	    semver: '>=1.2, <2'
//	    newest: 3
//	mirrors:
//	  - source: docker.io/library/alpine   # goes to 127.0.0.1:5000/mirror/library/alpine
//	    tags: {include: ['^3\.']}          # replaces include only; exclude, semver, newest still apply
//	  - source: ghcr.io/org/app:1.2.3      # one reference: no listing, no tag filter
//	    target: 127.0.0.1:5000/app
//
// Defaults merge field by field: an entry's target, platforms, referrers and each of
// tags.include, tags.exclude, tags.semver and tags.newest replace the default when
// the entry sets them, and the default applies otherwise. Setting a field to an empty
// value clears its default: `include: []`, `platforms: []`, `semver: ""`, `newest: 0`,
// `referrers: false`. Null (`include:` with nothing after it) means unset.
//
// The default target is a repository prefix; an entry's target defaults to the
// prefix followed by the source's whole repository path without its host
// (docker.io/library/alpine → <prefix>/library/alpine), so sources from different
// organisations that share a last path element do not collide.
//
// Source and target always name their registry host: "alpine" is an error, write
// "docker.io/library/alpine".
package mirror

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Spec is a mirror spec with the defaults merged into each entry. Load returns a
// valid Spec; Plan and Run validate one built in code.
type Spec struct {
	// Mirrors are the entries, in the order of the file.
	Mirrors []Mirror
}

// Mirror is one entry of a spec: what to copy from where to where.
type Mirror struct {
	// Source is a repository whose tags are listed and filtered by Tags
	// ("docker.io/library/alpine"), or one reference that is copied without listing
	// ("ghcr.io/org/app:1.2.3", "ghcr.io/org/app@sha256:…").
	Source string
	// Target is the destination repository. When Source names one reference, Target
	// may carry a tag to copy it under another name; otherwise the source's tag or,
	// for a bare digest, the digest alone is used.
	Target string
	// Platforms keeps only these platforms ("linux/amd64") of an index; empty keeps all.
	Platforms []string
	// Referrers also copies the artifacts that refer to each image (signatures, SBOMs).
	Referrers bool
	// Tags selects the tags of a listed Source. It must be zero when Source names one
	// reference.
	Tags TagFilter
}

// maxSpecSize bounds what Load reads: a spec is a hand-written file.
const maxSpecSize = 4 << 20

// Load reads a YAML mirror spec, merges the defaults into each entry and validates
// the result. Unknown fields are errors. Every problem found is reported at once in
// a *SpecError.
func Load(r io.Reader) (*Spec, error) { return load(r, "") }

// LoadFile is Load for the file at path; errors name the file.
func LoadFile(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load mirror spec: %w", err)
	}
	defer f.Close()
	return load(f, path)
}

// The file's shape. Pointers and nil slices tell "not set" from "set to zero", which
// the field-by-field merge depends on.
type (
	fileSpec struct {
		Defaults *fileDefaults `yaml:"defaults"`
		Mirrors  []fileEntry   `yaml:"mirrors"`
	}
	fileDefaults struct {
		Target    string    `yaml:"target"`
		Platforms []string  `yaml:"platforms"`
		Referrers *bool     `yaml:"referrers"`
		Tags      *fileTags `yaml:"tags"`
	}
	fileEntry struct {
		Source    string    `yaml:"source"`
		Target    string    `yaml:"target"`
		Platforms []string  `yaml:"platforms"`
		Referrers *bool     `yaml:"referrers"`
		Tags      *fileTags `yaml:"tags"`
	}
	fileTags struct {
		Include []string `yaml:"include"`
		Exclude []string `yaml:"exclude"`
		Semver  *string  `yaml:"semver"`
		Newest  *int     `yaml:"newest"`
	}
)

func load(r io.Reader, file string) (*Spec, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSpecSize+1))
	if err != nil {
		return nil, specError(file, nil, nil, problem{err: fmt.Errorf("read: %w", err)})
	}
	if len(data) > maxSpecSize {
		return nil, specError(file, nil, nil, problem{err: fmt.Errorf("larger than %d bytes", maxSpecSize)})
	}
	// The node tree gives line numbers to validation errors and names the field of
	// a decoding error; the strict decode below cannot return it.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &SpecError{File: file, Problems: yamlProblems(err, nil)}
	}
	var fs fileSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fs); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, specError(file, nil, nil, problem{err: errors.New("spec is empty")})
		}
		return nil, &SpecError{File: file, Problems: yamlProblems(err, &doc)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &SpecError{File: file, Problems: []*FieldError{{Line: extra.Line, Entry: -1,
			Err: errors.New("a spec is one YAML document; remove the second one")}}}
	} else if !errors.Is(err, io.EOF) {
		return nil, &SpecError{File: file, Problems: yamlProblems(err, &doc)}
	}
	spec, probs := resolve(&fs)
	if len(probs) > 0 {
		sources := make([]string, len(fs.Mirrors))
		for i, e := range fs.Mirrors {
			sources[i] = e.Source
		}
		return nil, specError(file, sources, &doc, probs...)
	}
	return spec, nil
}

// resolve checks what the file says and merges the defaults into each entry. Each
// field is checked where it is written, so a bad default is reported once, not once
// per entry that inherits it.
func resolve(fs *fileSpec) (*Spec, []problem) {
	d := fs.Defaults
	if d == nil {
		d = &fileDefaults{}
	}
	var probs []problem
	var prefix string
	if d.Target != "" {
		r, err := parseRef(d.Target)
		switch {
		case err != nil:
			probs = append(probs, problem{path: []any{"defaults", "target"}, err: err})
		case r.exact():
			probs = append(probs, problem{path: []any{"defaults", "target"},
				err: fmt.Errorf("%q must be a repository prefix, without tag or digest", d.Target)})
		default:
			prefix = r.Repo
		}
	}
	probs = append(probs, checkPlatforms(d.Platforms, []any{"defaults", "platforms"})...)
	probs = append(probs, checkFilter(d.Tags.filter(), []any{"defaults", "tags"})...)
	if len(fs.Mirrors) == 0 {
		probs = append(probs, problem{path: []any{"mirrors"}, err: errors.New("at least one entry is required")})
	}

	spec := &Spec{Mirrors: make([]Mirror, len(fs.Mirrors))}
	for i, e := range fs.Mirrors {
		at := []any{"mirrors", i}
		probs = append(probs, checkPlatforms(e.Platforms, sub(at, "platforms"))...)
		probs = append(probs, checkFilter(e.Tags.filter(), sub(at, "tags"))...)
		m := Mirror{
			Source:    e.Source,
			Target:    e.Target,
			Platforms: slices.Clone(d.Platforms),
			Referrers: d.Referrers != nil && *d.Referrers,
		}
		if e.Platforms != nil {
			m.Platforms = slices.Clone(e.Platforms)
		}
		if e.Referrers != nil {
			m.Referrers = *e.Referrers
		}
		src, srcErr := parseRef(e.Source)
		if m.Target == "" && prefix != "" && srcErr == nil {
			_, path, _ := strings.Cut(src.Repo, "/")
			m.Target = prefix + "/" + path
		}
		if srcErr != nil || !src.exact() {
			m.Tags = mergeTags(d.Tags, e.Tags)
		}
		refProbs := checkRefs(m, at, e.Tags != nil)
		if e.Target == "" && d.Target != "" && prefix == "" {
			// The bad defaults.target is reported; "target is required" would only repeat it.
			refProbs = slices.DeleteFunc(refProbs, func(p problem) bool { return p.path[len(p.path)-1] == "target" })
		}
		probs = append(probs, refProbs...)
		spec.Mirrors[i] = m
	}
	return spec, probs
}

// filter is what the tags block itself sets, unset fields zero.
func (t *fileTags) filter() TagFilter {
	return mergeTags(nil, t)
}

// mergeTags applies the fields that over sets on top of base.
func mergeTags(base, over *fileTags) TagFilter {
	var f TagFilter
	for _, t := range []*fileTags{base, over} {
		if t == nil {
			continue
		}
		if t.Include != nil {
			f.Include = slices.Clone(t.Include)
		}
		if t.Exclude != nil {
			f.Exclude = slices.Clone(t.Exclude)
		}
		if t.Semver != nil {
			f.Semver = *t.Semver
		}
		if t.Newest != nil {
			f.Newest = *t.Newest
		}
	}
	return f
}

// yamlLineRe finds the line yaml.v3 puts at the start of its messages.
var yamlLineRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): `) })

// yamlUnknownRe matches yaml.v3's message for a field KnownFields rejected.
var yamlUnknownRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^field (.*) not found in type mirror\.(\w+)$`) })

// yamlTypeRe matches yaml.v3's message for a value of the wrong type.
var yamlTypeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("^cannot unmarshal !!(\\w+) (`.*` )?into (.+)$") })

// yamlKinds and yamlTypes say in the spec's words what yaml.v3 found and wanted.
var (
	yamlKinds = map[string]string{
		"str": "a string", "map": "a mapping", "seq": "a list", "int": "an integer",
		"bool": "true or false", "float": "a number", "null": "null", "timestamp": "a timestamp",
	}
	yamlTypes = map[string]string{
		"mirror.fileSpec": "a mapping with defaults and mirrors", "[]mirror.fileEntry": "a list of entries",
		"mirror.fileDefaults": "a mapping", "mirror.fileEntry": "a mapping", "mirror.fileTags": "a mapping",
		"[]string": "a list of strings", "string": "a string", "*string": "a string",
		"int": "an integer", "*int": "an integer", "bool": "true or false", "*bool": "true or false",
	}
)

// keyOnLine matches the value of the mapping key on line: yaml.v3 reports unknown and
// duplicate keys at the key.
func keyOnLine(line int) func(key, val *yaml.Node) bool {
	return func(key, _ *yaml.Node) bool { return key != nil && key.Line == line }
}

// valueOnLine matches the value a type error is about: its line, its kind ("str",
// "map") and, for a scalar, its text as the message quotes it ("`abc` ", or cut
// short as "`abcdefg...` ").
func valueOnLine(line int, kind, quoted string) func(key, val *yaml.Node) bool {
	text := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(quoted), "`"), "`")
	prefix, cut := strings.CutSuffix(text, "...")
	return func(_, val *yaml.Node) bool {
		if val.Line != line || val.ShortTag() != "!!"+kind {
			return false
		}
		if val.Kind != yaml.ScalarNode {
			return true
		}
		if cut {
			return strings.HasPrefix(val.Value, prefix)
		}
		return val.Value == text
	}
}

// yamlTypeMessage rewrites "cannot unmarshal !!str `x` into int" as
// "want an integer, got a string `x`".
func yamlTypeMessage(msg string) string {
	m := yamlTypeRe().FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	got, want := yamlKinds[m[1]], yamlTypes[m[3]]
	if got == "" || want == "" {
		return msg
	}
	return strings.TrimSpace(fmt.Sprintf("want %s, got %s %s", want, got, m[2]))
}

// yamlSections names where a type sits, for an unknown field that cannot be placed.
var yamlSections = map[string]string{
	"fileSpec":     "at the top level",
	"fileDefaults": "in defaults",
	"fileEntry":    "in a mirrors entry",
	"fileTags":     "in tags",
}

// yamlProblems turns a decoding error into problems with line numbers and, when
// doc is given and the line holds one field, the field's path.
func yamlProblems(err error, doc *yaml.Node) []*FieldError {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	// Placing a message walks the document; placing only those shown keeps a file
	// full of errors from costing time quadratic in its size.
	out := make([]*FieldError, 0, min(len(msgs), maxProblems+1))
	for _, msg := range msgs[:min(len(msgs), maxProblems)] {
		msg = strings.TrimPrefix(msg, "yaml: ")
		var line int
		if m := yamlLineRe().FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = msg[len(m[0]):]
		}
		var path []any
		if doc != nil && line > 0 {
			match := keyOnLine(line)
			if m := yamlTypeRe().FindStringSubmatch(msg); m != nil {
				match = valueOnLine(line, m[1], m[2])
			}
			path = pathWhere(doc, match)
		}
		if m := yamlUnknownRe().FindStringSubmatch(msg); m != nil {
			if len(path) > 0 {
				// The path ends at the unknown key itself; name its parent.
				path = path[:len(path)-1]
				msg = fmt.Sprintf("unknown field %q", m[1])
			} else {
				msg = fmt.Sprintf("unknown field %q %s", m[1], yamlSections[m[2]])
			}
		}
		fe := specError("", nil, nil, problem{path: path, err: errors.New(yamlTypeMessage(msg))}).Problems[0]
		fe.Line = line
		if fe.Entry >= 0 && doc != nil {
			if n, ok := nodeAt(doc, []any{"mirrors", fe.Entry, "source"}); ok && n.Kind == yaml.ScalarNode {
				fe.Source = n.Value
			}
		}
		out = append(out, fe)
	}
	if len(msgs) > maxProblems {
		out = append(out, &FieldError{Entry: -1, Err: fmt.Errorf("and %d more problems", len(msgs)-maxProblems)})
	}
	return out
}
