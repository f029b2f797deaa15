package ocilayout

import (
	"runtime"
	"strings"
)

// ParseRef splits a layout location, the part after its transport prefix (`oci:`,
// `oci-archive:`), into the path of the directory or archive and its REF:
// "dir:v1" gives ("dir", "v1"), "dir@sha256:…" and "dir:sha256:…" give ("dir",
// "sha256:…"), "dir" gives ("dir", "").
//
// The REF follows the last colon that is not a Windows drive letter and not followed by
// a path separator anywhere, so "/tmp/a:b/dir" is a path without REF and "C:\img" is a
// path on Windows.
func ParseRef(arg string) (path, ref string) {
	return parseRef(arg, runtime.GOOS == "windows")
}

// parseRef is ParseRef with the platform as a parameter, so both are tested anywhere.
func parseRef(arg string, windows bool) (path, ref string) {
	hasSep := func(s string) bool {
		return strings.ContainsRune(s, '/') || (windows && strings.ContainsRune(s, '\\'))
	}
	isDrive := func(i int) bool {
		if !windows || i != 1 {
			return false
		}
		c := arg[0]
		return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
	}

	// path@digest, as in image references.
	if i := strings.LastIndexByte(arg, '@'); i >= 0 && isDigestLike(arg[i+1:]) && !hasSep(arg[i+1:]) {
		return arg[:i], arg[i+1:]
	}
	// path:digest: the digest has a colon of its own, so the last colon is not the split.
	for _, alg := range []string{"sha256", "sha512", "sha384"} {
		if i := strings.LastIndex(arg, ":"+alg+":"); i >= 0 && !isDrive(i) && !hasSep(arg[i+1:]) {
			return arg[:i], arg[i+1:]
		}
	}
	i := strings.LastIndexByte(arg, ':')
	if i < 0 || isDrive(i) || hasSep(arg[i+1:]) {
		return arg, ""
	}
	return arg[:i], arg[i+1:]
}
