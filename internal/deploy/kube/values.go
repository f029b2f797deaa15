package kube

import (
	"fmt"
	"strings"

	"github.com/hubctl/hubctl/internal/distclient"
)

// parsePinned reads the image a deploy resolved: a reference with a digest.
func parsePinned(image string) (distclient.Ref, error) {
	ref, err := distclient.ParseRef(image)
	if err != nil {
		return distclient.Ref{}, fmt.Errorf("image: %w", err)
	}
	if ref.Digest == "" {
		return distclient.Ref{}, fmt.Errorf("image %q is not pinned: a deploy resolves it to HOST/REPOSITORY[:TAG]@sha256:… first", image)
	}
	return ref, nil
}

// pinValues answers a copy of the spec's values with the image written under path
// (dotted): repository, tag and digest; with "registry" and the repository path
// apart when the chart's or the spec's values at path have a registry key. The
// spec's values are not changed.
func pinValues(vals map[string]any, path string, ref distclient.Ref, chartVals map[string]any) (map[string]any, error) {
	out := deepCopy(vals)
	keys := strings.Split(path, ".")
	m := out
	for i, k := range keys {
		next, ok := m[k]
		if !ok || next == nil {
			n := map[string]any{}
			m[k] = n
			m = n
			continue
		}
		n, ok := next.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("values: %s is %T, not a mapping: the image path %q needs a mapping there", strings.Join(keys[:i+1], "."), next, path)
		}
		m = n
	}
	_, split := m["registry"]
	if !split {
		if cm, ok := lookup(chartVals, keys); ok {
			_, split = cm["registry"]
		}
	}
	if split {
		m["registry"] = ref.Host
		m["repository"] = ref.Path
	} else {
		m["repository"] = ref.Repo.String()
	}
	m["tag"] = ref.Tag
	m["digest"] = ref.Digest
	return out, nil
}

// lookup answers the mapping at keys in vals.
func lookup(vals map[string]any, keys []string) (map[string]any, bool) {
	m := vals
	for _, k := range keys {
		n, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = n
	}
	return m, true
}

func deepCopy(v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = copyValue(x)
	}
	return out
}

func copyValue(x any) any {
	switch t := x.(type) {
	case map[string]any:
		return deepCopy(t)
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = copyValue(e)
		}
		return s
	default:
		return x
	}
}
