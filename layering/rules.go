package layering

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
)

// Rule puts the files it matches into one named layer. Files are .dockerignore-style
// patterns ("**" crosses directories, a leading "!" excludes) matched against paths
// relative to what is copied; a pattern naming a directory takes everything under it.
type Rule struct {
	Name  string   `yaml:"name" json:"name"`
	Files []string `yaml:"files" json:"files"`
	// Dest, when set (hubctl.yaml and presets only), places the matched files under this
	// absolute directory instead of the copy's destination, after removing Strip from
	// the front of their paths: the go preset puts kodata/ at /var/run/ko so.
	Dest  string `yaml:"dest,omitempty" json:"dest,omitempty"`
	Strip string `yaml:"strip,omitempty" json:"strip,omitempty"`
}

// Presets are the built-in layer rules, lowest layer first. Files no rule matches go to
// the last layer, which is the application's own code.
var Presets = map[string][]Rule{
	// jib's split of a Maven or Gradle build: release dependency jars, SNAPSHOT jars,
	// resources, classes.
	"java": {
		{Name: "dependencies", Files: []string{"**/*.jar", "!**/*-SNAPSHOT.jar"}},
		{Name: "snapshot-dependencies", Files: []string{"**/*-SNAPSHOT.jar"}},
		{Name: "resources", Files: []string{"**/resources", "**/classes", "!**/*.class", "!**/*.jar"}},
		{Name: "classes", Files: []string{"**/*.class"}},
	},
	// node_modules apart from the sources.
	"node": {
		{Name: "dependencies", Files: []string{"**/node_modules"}},
		{Name: "app", Files: nil},
	},
	// Installed packages (a virtualenv or site-packages) apart from the sources.
	"python": {
		{Name: "dependencies", Files: []string{"**/site-packages", "**/dist-packages", "**/.venv", "**/venv", "**/*.whl"}},
		{Name: "app", Files: nil},
	},
	// A static binary and its data directory, as ko lays them out: kodata/ goes to
	// /var/run/ko (KO_DATA_PATH) in a lower layer, the binary on top.
	"go": {
		{Name: "kodata", Files: []string{"kodata"}, Dest: "/var/run/ko", Strip: "kodata"},
		{Name: "app", Files: nil},
	},
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	var out []string
	for k := range Presets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseLayerFlag reads --layer name=glob[,glob…].
func ParseLayerFlag(s string) (Rule, error) {
	name, globs, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return Rule{}, fmt.Errorf("--layer %q: want name=glob[,glob…], like deps=lib/**", s)
	}
	r := Rule{Name: name}
	for _, g := range strings.Split(globs, ",") {
		if g = strings.TrimSpace(g); g != "" {
			r.Files = append(r.Files, g)
		}
	}
	return r, nil
}

// compiledRules are rules with their patterns compiled.
type compiledRules struct {
	rules    []Rule
	matchers []*patternmatcher.PatternMatcher
	// dirs memoises each rule's match state per directory, so a tree of many files
	// is matched once per directory, not once per file and parent.
	dirs []map[string]patternmatcher.MatchInfo
}

func compileRules(rules []Rule) (*compiledRules, error) {
	if len(rules) == 0 {
		return nil, fmt.Errorf("no layer rules")
	}
	c := &compiledRules{rules: rules}
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Name == "" {
			return nil, fmt.Errorf("a layer rule has no name")
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("layer %q is named twice", r.Name)
		}
		seen[r.Name] = true
		var pm *patternmatcher.PatternMatcher
		if len(r.Files) > 0 {
			var err error
			if pm, err = patternmatcher.New(r.Files); err != nil {
				return nil, fmt.Errorf("layer %s: %w", r.Name, err)
			}
		}
		c.matchers = append(c.matchers, pm)
		c.dirs = append(c.dirs, map[string]patternmatcher.MatchInfo{})
	}
	return c, nil
}

// dirInfo is rule i's match state for directory dir ("." for the root).
func (c *compiledRules) dirInfo(i int, dir string) patternmatcher.MatchInfo {
	if dir == "." || dir == "" {
		return patternmatcher.MatchInfo{}
	}
	if info, ok := c.dirs[i][dir]; ok {
		return info
	}
	_, info, err := c.matchers[i].MatchesUsingParentResults(dir, c.dirInfo(i, path.Dir(dir)))
	if err != nil {
		info = patternmatcher.MatchInfo{}
	}
	c.dirs[i][dir] = info
	return info
}

// assign is the index of the rule rel (a path relative to the copy) belongs to: the
// first whose patterns match, else the last.
func (c *compiledRules) assign(rel string) int {
	for i, pm := range c.matchers {
		if pm == nil {
			continue
		}
		if ok, _, err := pm.MatchesUsingParentResults(rel, c.dirInfo(i, path.Dir(rel))); err == nil && ok {
			return i
		}
	}
	return len(c.rules) - 1
}

// splitEntries divides a copy's entries (at dest, the copy's destination directory)
// into one list per rule. Files and symlinks go by rule; each layer also gets the
// directory entries above its files (with their metadata), and empty directories go
// to the last layer. A rule with Dest moves its files there.
func (c *compiledRules) splitEntries(entries []Entry, dest string) [][]Entry {
	dest = cleanPath(dest)
	out := make([][]Entry, len(c.rules))
	dirs := map[string]Entry{}
	used := map[string]bool{}
	// added[i] holds the directories layer i already lists.
	added := make([]map[string]bool, len(c.rules))
	for i := range added {
		added[i] = map[string]bool{}
	}
	relOf := func(p string) string {
		if dest == "" {
			return p
		}
		return strings.TrimPrefix(strings.TrimPrefix(p, dest), "/")
	}
	for _, e := range entries {
		if e.Kind == KindDir {
			dirs[cleanPath(e.Path)] = e
		}
	}
	// Each entry's rule first, so every layer's list is allocated once at its size
	// (a node_modules copy is tens of thousands of entries).
	rule := make([]int, len(entries))
	count := make([]int, len(c.rules))
	for k, e := range entries {
		if e.Kind == KindDir {
			continue
		}
		rule[k] = c.assign(relOf(cleanPath(e.Path)))
		count[rule[k]]++
	}
	for i, n := range count {
		// Room for the directories above the files too (about one per ten files in
		// a package tree; append grows it where there are more).
		if n > 0 {
			out[i] = make([]Entry, 0, n+n/8+1)
		}
	}
	for k, e := range entries {
		if e.Kind == KindDir {
			continue
		}
		rel := relOf(cleanPath(e.Path))
		i := rule[k]
		if r := c.rules[i]; r.Dest != "" {
			rel = strings.TrimPrefix(strings.TrimPrefix(rel, cleanPath(r.Strip)), "/")
			e.Path = path.Join(r.Dest, rel)
		}
		out[i] = append(out[i], e)
		for d := path.Dir(cleanPath(e.Path)); d != "." && !added[i][d]; d = path.Dir(d) {
			added[i][d] = true
			if de, ok := dirs[d]; ok {
				out[i] = append(out[i], de)
				used[d] = true
			}
		}
	}
	last := len(c.rules) - 1
	var empty []string
	for d := range dirs {
		if !used[d] {
			empty = append(empty, d)
		}
	}
	slices.Sort(empty)
	for _, d := range empty {
		if c.rules[last].Dest == "" {
			out[last] = append(out[last], dirs[d])
		}
	}
	return out
}
