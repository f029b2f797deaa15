package layering

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzDockerfile interprets arbitrary Dockerfiles against a small context: errors are
// fine, panics are not.
func FuzzDockerfile(f *testing.F) {
	for _, seed := range []string{
		"FROM scratch\nCOPY . /app/\n",
		"ARG X=1\nFROM scratch AS a\nENV A=$X\nCOPY --chown=1:2 --chmod=755 a* /x/\nFROM a\nCOPY --from=a /x /y\n",
		"# escape=`\nFROM scratch\nLABEL a=b `\n  c=d\nEXPOSE 80/udp 1-3\n",
		"FROM scratch\nCOPY <<EOF /f\n$HOME\nEOF\nHEALTHCHECK CMD x\nSHELL [\"a\"]\nCMD b\n",
		"FROM scratch\nRUN x\n",
		"FROM scratch\nADD x.tar /\nWORKDIR a/../b\nUSER u\nVOLUME [\"/v\"]\nSTOPSIGNAL 9\nONBUILD COPY a b\n",
		"FROM ${NOPE:?missing}\n",
		"FROM scratch\n# hubctl:layers=java\nCOPY . /\n",
	} {
		f.Add(seed)
	}
	dir := writeContext(f, map[string]file{"a": {"a", 0}, "ab/c": {"c", 0o755}, "x.tar": {"not a tar", 0}})
	cache, err := OpenCache(filepath.Join(f.TempDir(), "cache"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, dockerfile string) {
		if len(dockerfile) > 4096 || strings.Count(dockerfile, "EXPOSE") > 4 {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			img, err := NewBuild(dir, WithCache(cache), WithDockerfileContent("Dockerfile", []byte(dockerfile))).Run(context.Background())
			if err == nil {
				img.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the build of %q did not finish in 10s", dockerfile)
		}
	})
}

// FuzzLayerRules splits arbitrary paths by arbitrary rules: every file lands in
// exactly one layer, and nothing panics.
func FuzzLayerRules(f *testing.F) {
	f.Add("**/*.jar\n!**/*-SNAPSHOT.jar", "lib/a.jar\nlib/b-SNAPSHOT.jar\nsrc/x")
	f.Add("node_modules", "node_modules/a/b.js\nindex.js")
	f.Add("[", "a")
	f.Add("kodata", "kodata/x\nbin")
	f.Fuzz(func(t *testing.T, patterns, paths string) {
		rules := []Rule{{Name: "one", Files: strings.Split(patterns, "\n")}, {Name: "rest"}}
		cr, err := compileRules(rules)
		if err != nil {
			return
		}
		var entries []Entry
		for _, p := range strings.Split(paths, "\n") {
			if cleanPath(p) == "" {
				continue
			}
			entries = append(entries, Entry{Path: "app/" + p, Kind: KindFile, Mode: 0o644})
		}
		parts := cr.splitEntries(entries, "app")
		n := 0
		for _, part := range parts {
			for _, e := range part {
				if e.Kind == KindFile {
					n++
				}
			}
		}
		if n != len(entries) {
			t.Fatalf("%d files in, %d out", len(entries), n)
		}
	})
}
