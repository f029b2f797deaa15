package layering

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// specLayers builds dir with spec and returns each layer's file names (no dirs).
func specLayers(t *testing.T, dir string, spec Spec) (*Image, [][]string) {
	t.Helper()
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := NewBuild(dir, WithCache(c), WithSpec(spec)).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	var out [][]string
	for _, hs := range layerHeaders(t, img) {
		var names []string
		for _, h := range hs {
			if !strings.HasSuffix(h.Name, "/") {
				names = append(names, h.Name)
			}
		}
		out = append(out, names)
	}
	return img, out
}

func TestPresetLayerAssignment(t *testing.T) {
	for _, tt := range []struct {
		preset string
		files  []string
		want   [][]string
	}{
		{"java", []string{
			"lib/guava-33.0.jar", "lib/mylib-1.2-SNAPSHOT.jar", "classes/com/x/App.class",
			"classes/application.properties", "resources/static/index.html", "classes/com/x/Util.class",
		}, [][]string{
			{"app/lib/guava-33.0.jar"},
			{"app/lib/mylib-1.2-SNAPSHOT.jar"},
			{"app/classes/application.properties", "app/resources/static/index.html"},
			{"app/classes/com/x/App.class", "app/classes/com/x/Util.class"},
		}},
		{"node", []string{"node_modules/left-pad/index.js", "node_modules/.bin/x", "package.json", "src/server.js"}, [][]string{
			{"app/node_modules/.bin/x", "app/node_modules/left-pad/index.js"},
			{"app/package.json", "app/src/server.js"},
		}},
		{"python", []string{".venv/lib/python3.12/site-packages/requests/__init__.py", "app/main.py", "requirements.txt"}, [][]string{
			{"app/.venv/lib/python3.12/site-packages/requests/__init__.py"},
			{"app/app/main.py", "app/requirements.txt"},
		}},
		{"go", []string{"server", "kodata/index.html", "kodata/img/logo.png"}, [][]string{
			{"var/run/ko/img/logo.png", "var/run/ko/index.html"},
			{"ko-app/server"},
		}},
	} {
		t.Run(tt.preset, func(t *testing.T) {
			files := map[string]file{}
			for _, f := range tt.files {
				files[f] = file{f, 0o644}
			}
			dir := writeContext(t, files)
			img, got := specLayers(t, dir, Spec{Preset: tt.preset})
			if len(got) != len(tt.want) {
				t.Fatalf("layers %v, want %v", got, tt.want)
			}
			for i := range got {
				if !slices.Equal(got[i], tt.want[i]) {
					t.Errorf("layer %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
			if tt.preset == "go" && !slices.Contains(configOf(t, img).Config.Env, "KO_DATA_PATH=/var/run/ko") {
				t.Errorf("go preset env %v", configOf(t, img).Config.Env)
			}
		})
	}
}

func TestSpecLayersAndSettings(t *testing.T) {
	dir := writeContext(t, map[string]file{
		"deps/a.jar": {"a", 0}, "deps/b.jar": {"b", 0}, "conf/app.yaml": {"c", 0}, "bin/app": {"x", 0o755},
		"hubctl.yaml": {"ignored by the command", 0},
	})
	img, got := specLayers(t, dir, Spec{
		Layers:     []Rule{{Name: "deps", Files: []string{"deps/**"}}, {Name: "conf", Files: []string{"conf"}}, {Name: "app"}},
		Dest:       "/opt/svc",
		Entrypoint: []string{"/opt/svc/bin/app", "--flag=$NOT_EXPANDED"},
		Env:        map[string]string{"A": "1 2", "B": `q"uote$`},
		User:       "1000", Workdir: "/opt/svc", Ports: []string{"8080"}, Labels: map[string]string{"team": "x"},
		Exclude: []string{"hubctl.yaml"},
	})
	want := [][]string{{"opt/svc/deps/a.jar", "opt/svc/deps/b.jar"}, {"opt/svc/conf/app.yaml"}, {"opt/svc/bin/app"}}
	for i := range want {
		if i >= len(got) || !slices.Equal(got[i], want[i]) {
			t.Fatalf("layers %v, want %v", got, want)
		}
	}
	c := configOf(t, img).Config
	if !slices.Equal(c.Entrypoint, []string{"/opt/svc/bin/app", "--flag=$NOT_EXPANDED"}) || c.User != "1000" || c.WorkingDir != "/opt/svc" || c.Labels["team"] != "x" {
		t.Errorf("config %+v", c)
	}
	if !slices.Contains(c.Env, "A=1 2") || !slices.Contains(c.Env, `B=q"uote$`) {
		t.Errorf("Env %v", c.Env)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ports %v", c.ExposedPorts)
	}
}

func TestDockerfileCopyWithPreset(t *testing.T) {
	dir := writeContext(t, map[string]file{"target/lib/dep-1.0.jar": {"d", 0}, "target/classes/A.class": {"a", 0}})
	img := mustBuild(t, dir, "FROM scratch\n# hubctl:layers=java\nCOPY target/ /app/\nCOPY target/lib/dep-1.0.jar /single.jar\n")
	names := layerNames(t, img)
	if len(names) != 3 || !slices.Contains(names[0], "app/lib/dep-1.0.jar") || !slices.Contains(names[1], "app/classes/A.class") {
		t.Fatalf("layers %v, want dependencies, classes, then the plain COPY", names)
	}
	_, err := build(t, dir, "FROM scratch\n# hubctl:layers=cobol\nCOPY . /\n")
	if err == nil || !strings.Contains(err.Error(), "no such preset") {
		t.Errorf("unknown preset: %v", err)
	}
}

// checkout writes the same files into a new directory with the given umask and
// mtime, as a second clone of the project on another machine would.
func checkout(t *testing.T, files map[string]file, umask int, mtime time.Time) string {
	t.Helper()
	old := syscall.Umask(umask)
	defer syscall.Umask(old)
	dir := t.TempDir()
	for name, f := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o777)
		perm := os.FileMode(0o666)
		if f.mode&0o111 != 0 {
			perm = 0o777
		}
		if err := os.WriteFile(p, []byte(f.data), perm); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	return dir
}

func TestReproducibleAcrossCheckouts(t *testing.T) {
	files := map[string]file{
		"Dockerfile":                {"FROM scratch\nCOPY bin/ /usr/local/bin/\nCOPY conf /etc/app\nWORKDIR /data\n", 0},
		"bin/server":                {"binary", 0o755},
		"conf/a.yaml":               {"a", 0},
		"conf/deep/b.yaml":          {"b", 0},
		"lib/guava-33.jar":          {"g", 0},
		"lib/x-1-SNAPSHOT.jar":      {"s", 0},
		"classes/App.class":         {"c", 0},
		"classes/app.properties":    {"p", 0},
		"resources/templates/x.tpl": {"t", 0},
	}
	a := checkout(t, files, 0o022, time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC))
	b := checkout(t, files, 0o077, time.Now())
	for _, mode := range []string{"dockerfile", "java"} {
		var digests []string
		for _, dir := range []string{a, b} {
			c, _ := OpenCache(filepath.Join(t.TempDir(), "cold"))
			opts := []Option{WithCache(c)}
			if mode == "java" {
				opts = append(opts, WithSpec(Spec{Preset: "java", Exclude: []string{"Dockerfile"}}))
			} else {
				opts = append(opts, WithDockerfile(filepath.Join(dir, "Dockerfile")))
			}
			img, err := NewBuild(dir, opts...).Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, img.Desc.Digest.String())
			img.Close()
		}
		if digests[0] != digests[1] {
			t.Errorf("%s build: digests %v differ between checkouts (umask 022 vs 077, old vs new mtimes, cold caches)", mode, digests)
		}
	}
	// SOURCE_DATE_EPOCH changes the digest, and only it.
	c, _ := OpenCache(t.TempDir())
	img, err := NewBuild(a, WithCache(c), WithEpoch(time.Unix(1700000000, 0))).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg := configOf(t, img); cfg.Created.Unix() != 1700000000 {
		t.Errorf("created %v", cfg.Created)
	}
	for _, hs := range layerHeaders(t, img) {
		for _, h := range hs {
			if h.ModTime.Unix() != 1700000000 {
				t.Errorf("%s mtime %v", h.Name, h.ModTime)
			}
		}
	}
}

func TestCacheSkipsUnchangedLayers(t *testing.T) {
	dir := writeContext(t, map[string]file{"deps/big.jar": {strings.Repeat("x", 1<<20), 0}, "src/A.class": {"v1", 0}})
	c, _ := OpenCache(t.TempDir())
	run := func() *Image {
		img, err := NewBuild(dir, WithCache(c), WithSpec(Spec{Preset: "java"})).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	first := run()
	for _, l := range first.Layers {
		if l.Cached {
			t.Fatalf("cold build reused %s", l.Digest)
		}
	}
	os.WriteFile(filepath.Join(dir, "src/A.class"), []byte("v2"), 0o644)
	second := run()
	var cached, built int
	for _, l := range second.Layers {
		if l.Cached {
			cached++
		} else {
			built++
		}
	}
	if cached != 1 || built != 1 {
		t.Fatalf("after one class changed: %d cached, %d built; want the jar layer cached and the class layer built", cached, built)
	}
	if second.Desc.Digest == first.Desc.Digest {
		t.Fatal("a changed file did not change the digest")
	}
}
