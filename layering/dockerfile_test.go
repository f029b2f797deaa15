package layering

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/internal/ocilayout"
	"github.com/hubctl/hubctl/internal/transfer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// headerMap is every entry of every layer: name → header (the top layer wins).
func headerMap(t testing.TB, img *Image) map[string]*tar.Header {
	out := map[string]*tar.Header{}
	for _, hs := range layerHeaders(t, img) {
		for _, h := range hs {
			out[h.Name] = h
		}
	}
	return out
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestRefusedInstructions(t *testing.T) {
	dir := writeContext(t, map[string]file{"a": {"a", 0}})
	for _, tt := range []struct {
		name, dockerfile string
		line             int
		want             string
	}{
		{"run", "FROM scratch\nCOPY a /a\nRUN echo hi\n", 3, "RUN: hubctl build runs no commands"},
		{"run exec form", "FROM scratch\n\nRUN [\"/bin/true\"]\n", 3, "RUN"},
		{"run heredoc", "FROM scratch\nRUN <<EOF\necho hi\nEOF\n", 2, "RUN"},
		{"add url", "FROM scratch\nADD https://example.com/x.tar.gz /x/\n", 2, "ADD https://example.com/x.tar.gz: hubctl build does not download"},
		{"add git", "FROM scratch\nADD git@github.com:moby/buildkit.git /src\n", 2, "does not download remote sources"},
		{"run in a needed stage", "FROM scratch AS a\nRUN make\nFROM scratch\nCOPY --from=a /x /x\n", 2, "RUN"},
		{"copy parents", "FROM scratch\nCOPY --parents a /x/\n", 2, "COPY --parents"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "c")
			c, _ := OpenCache(cache)
			_, err := NewBuild(dir, WithCache(c), WithDockerfileContent("Dockerfile", []byte(tt.dockerfile))).Run(context.Background())
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RefusedError", err)
			}
			if re.Line != tt.line || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "Dockerfile:") {
				t.Fatalf("err = %q (line %d), want line %d and %q", err, re.Line, tt.line, tt.want)
			}
			if !strings.Contains(strings.ToLower(re.Instead), "copy") {
				t.Errorf("no advice on what to do instead: %q", re.Instead)
			}
			// Nothing was built: the cache holds no layer.
			if ents, _ := os.ReadDir(filepath.Join(cache, "layers")); len(ents) != 0 {
				t.Errorf("%d layers built before the refusal", len(ents))
			}
		})
	}
	// A RUN in a stage the target does not need is not refused (BuildKit skips it).
	mustBuild(t, dir, "FROM scratch AS test\nRUN go test\nFROM scratch\nCOPY a /a\n")
	mustBuild(t, dir, "FROM scratch AS one\nCOPY a /a\nFROM scratch AS two\nRUN x\n", WithTarget("one"))
}

func TestMultiStageCopyFrom(t *testing.T) {
	dir := writeContext(t, map[string]file{"bin/app": {"app", 0o755}, "bin/tool": {"tool", 0o755}, "cfg/x.conf": {"x", 0}})
	img := mustBuild(t, dir, `FROM scratch AS build
COPY bin/ /out/bin/
COPY cfg /out/cfg
FROM scratch AS other
COPY --from=build /out/bin/app /usr/bin/app
FROM scratch
COPY --from=build /out/cfg /etc/app/
COPY --from=1 /usr/bin/app /app
COPY --from=build /out/bin/t* /tools/
`)
	h := headerMap(t, img)
	for _, want := range []string{"etc/app/x.conf", "app", "tools/tool"} {
		if _, ok := h[want]; !ok {
			t.Errorf("%s missing; have %v", want, keys(h))
		}
	}
	if _, ok := h["out/bin/app"]; ok {
		t.Error("the build stage's files leaked into the final image")
	}
	if got := len(layerHeaders(t, img)); got != 3 {
		t.Errorf("%d layers, want 3 (the final stage's COPYs)", got)
	}
}

func TestDockerignoreGlobsExclude(t *testing.T) {
	dir := writeContext(t, map[string]file{
		".dockerignore":     {"*.log\nsecret/\n!keep.log\n", 0},
		"app.log":           {"x", 0},
		"keep.log":          {"k", 0},
		"secret/key":        {"k", 0},
		"src/a.go":          {"a", 0},
		"src/b.go":          {"b", 0},
		"src/b_test.go":     {"t", 0},
		"src/sub/c.go":      {"c", 0},
		"docs/readme.md":    {"r", 0},
		"docs/internal.txt": {"i", 0},
	})
	img := mustBuild(t, dir, `FROM scratch
COPY . /ctx/
COPY src/*.go /globbed/
COPY --exclude=*_test.go --exclude=internal* src docs /excluded/
`)
	h := headerMap(t, img)
	for _, gone := range []string{"ctx/app.log", "ctx/secret/key", "ctx/secret/", "globbed/sub/", "excluded/b_test.go", "excluded/internal.txt"} {
		if _, ok := h[gone]; ok {
			t.Errorf("%s is in the image", gone)
		}
	}
	for _, want := range []string{"ctx/keep.log", "ctx/src/sub/c.go", "globbed/a.go", "globbed/b.go", "globbed/b_test.go", "excluded/a.go", "excluded/readme.md", "excluded/sub/c.go"} {
		if _, ok := h[want]; !ok {
			t.Errorf("%s missing; have %v", want, keys(h))
		}
	}
	_, err := build(t, dir, "FROM scratch\nCOPY app.log /x\n")
	if err == nil || !strings.Contains(err.Error(), "not found in the build context (or excluded by .dockerignore)") {
		t.Errorf("COPY of an ignored file: %v", err)
	}
	_, err = build(t, dir, "FROM scratch\nCOPY src/*.go /notadir\n")
	if err == nil || !strings.Contains(err.Error(), "must be a directory and end with a /") {
		t.Errorf("glob onto a file: %v", err)
	}
	_, err = build(t, dir, "FROM scratch\nCOPY *.nothing /x/\n")
	if err == nil || !strings.Contains(err.Error(), "no source files") || !strings.HasPrefix(err.Error(), "Dockerfile:2:") {
		t.Errorf("glob matching nothing: %v", err)
	}
}

func TestChownChmodInTarHeaders(t *testing.T) {
	dir := writeContext(t, map[string]file{
		"etc/passwd": {"root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n", 0},
		"etc/group":  {"root:x:0:\nstaff:x:50:\n", 0},
		"run.sh":     {"#!/bin/sh", 0o700},
		"data/d.txt": {"d", 0o600},
	})
	img := mustBuild(t, dir, `FROM scratch
COPY etc/ /etc/
COPY --chown=app:staff --chmod=0750 run.sh /bin/
COPY --chown=1234 data /data
COPY --chown=7:8 --chmod=600 run.sh /plain
COPY run.sh /normal
`)
	h := headerMap(t, img)
	check := func(name string, uid, gid int, mode int64) {
		t.Helper()
		x, ok := h[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		if x.Uid != uid || x.Gid != gid || x.Mode != mode || x.Uname != "" || x.Gname != "" {
			t.Errorf("%s: uid %d gid %d mode %o uname %q, want %d %d %o and no names", name, x.Uid, x.Gid, x.Mode, x.Uname, uid, gid, mode)
		}
	}
	check("bin/run.sh", 1001, 50, 0o750)
	check("data/d.txt", 1234, 1234, 0o644)
	check("data/", 1234, 1234, 0o755)
	check("plain", 7, 8, 0o600)
	check("normal", 0, 0, 0o755)
	_, err := build(t, dir, "FROM scratch\nCOPY --chown=nobody run.sh /x\n")
	if err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Errorf("unknown user: %v", err)
	}
	// --preserve-modes keeps the context's modes.
	img = mustBuild(t, dir, "FROM scratch\nCOPY run.sh data/d.txt /p/\n", WithPreserveModes(true))
	h = headerMap(t, img)
	if h["p/run.sh"].Mode != 0o700 || h["p/d.txt"].Mode != 0o600 {
		t.Errorf("preserved modes %o %o, want 700 600", h["p/run.sh"].Mode, h["p/d.txt"].Mode)
	}
}

func TestHeredocs(t *testing.T) {
	dir := writeContext(t, map[string]file{})
	img := mustBuild(t, dir, `FROM scratch
ARG NAME=world
COPY <<EOF /etc/greeting
hello $NAME
EOF
COPY --chmod=755 <<"EOT" <<-EOR /bin/
#!/bin/sh
echo $NOT_EXPANDED
EOT
	indented
	EOR
`)
	h := headerMap(t, img)
	if h["bin/EOT"] == nil || h["bin/EOR"] == nil || h["bin/EOT"].Mode != 0o755 {
		t.Fatalf("heredoc files: %v", keys(h))
	}
	files := layerContents(t, img)
	if got := files["etc/greeting"]; got != "hello world\n" {
		t.Errorf("expanded heredoc = %q", got)
	}
	if got := files["bin/EOT"]; got != "#!/bin/sh\necho $NOT_EXPANDED\n" {
		t.Errorf("quoted heredoc = %q", got)
	}
	if got := files["bin/EOR"]; got != "indented\n" {
		t.Errorf("<<- heredoc = %q", got)
	}
}

// layerContents reads every regular file of the image's layers.
func layerContents(t testing.TB, img *Image) map[string]string {
	out := map[string]string{}
	var m ocispec.Manifest
	if err := jsonUnmarshal(img.Raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		rc, err := openLayer(context.Background(), img, l)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			var b bytes.Buffer
			b.ReadFrom(tr)
			if h.Typeflag == tar.TypeReg {
				out[h.Name] = b.String()
			}
		}
		rc.Close()
	}
	return out
}

func TestAddExtractsLocalArchives(t *testing.T) {
	var tb bytes.Buffer
	gz := gzip.NewWriter(&tb)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "pkg/lib.txt", Typeflag: tar.TypeReg, Mode: 0o600, Size: 3, Uid: 99})
	tw.Write([]byte("lib"))
	tw.Close()
	gz.Close()
	dir := writeContext(t, map[string]file{"vendor.tar.gz": {tb.String(), 0}, "plain.txt": {"p", 0}})
	img := mustBuild(t, dir, "FROM scratch\nADD vendor.tar.gz plain.txt /opt/\nCOPY vendor.tar.gz /copied/\n")
	files := layerContents(t, img)
	if files["opt/pkg/lib.txt"] != "lib" || files["opt/plain.txt"] != "p" {
		t.Errorf("ADD: %v", files)
	}
	if _, ok := files["copied/vendor.tar.gz"]; !ok {
		t.Errorf("COPY of an archive must not extract it: %v", files)
	}
	if h := headerMap(t, img)["opt/pkg/lib.txt"]; h.Uid != 0 || h.Mode != 0o644 {
		t.Errorf("extracted file header %+v", h)
	}
}

// writeBase builds an image from dockerfile and writes it as an OCI layout, returning
// the layout and an opener that serves "oci:" names.
func writeBase(t testing.TB, dir, dockerfile string, platforms ...ocispec.Platform) (string, Opener) {
	t.Helper()
	img := mustBuild(t, dir, dockerfile, WithPlatforms(platforms...))
	layout := filepath.Join(t.TempDir(), "base")
	loc, err := transfer.ParseLocation("oci:" + layout + ":1")
	if err != nil {
		t.Fatal(err)
	}
	img.FetchBase(true)
	if _, err := (&transfer.Engine{}).CopyFrom(context.Background(), img, "test", loc, transfer.Options{}); err != nil {
		t.Fatal(err)
	}
	return layout, func(ctx context.Context, name string) (imagestore.Source, Origin, error) {
		p, ref := ocilayout.ParseRef(strings.TrimPrefix(name, "oci:"))
		src, err := ocilayout.OpenDir(p, ref)
		return src, Origin{Name: name}, err
	}
}

func TestFromLocalBaseOnbuildAndChownNames(t *testing.T) {
	baseCtx := writeContext(t, map[string]file{
		"passwd": {"root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n", 0},
		"group":  {"root:x:0:\nwww:x:34:\n", 0},
	})
	layout, open := writeBase(t, baseCtx, `FROM scratch
COPY passwd group /etc/
ENV BASE=1 PATH=/usr/bin
WORKDIR /srv
CMD ["base-cmd"]
ONBUILD COPY app.txt /srv/from-trigger.txt
ONBUILD LABEL triggered=yes
`)
	dir := writeContext(t, map[string]file{"app.txt": {"app", 0}})
	img := mustBuild(t, dir, "FROM oci:"+layout+":1\nCOPY --chown=web:www app.txt /srv/app.txt\nENTRYPOINT [\"/srv/app\"]\n", WithOpener(open))
	cfg := configOf(t, img)
	if !slices.Contains(cfg.Config.Env, "BASE=1") || cfg.Config.WorkingDir != "/srv" || cfg.Config.Labels["triggered"] != "yes" {
		t.Errorf("inherited config %+v", cfg.Config)
	}
	if len(cfg.Config.Cmd) != 0 || len(cfg.Config.OnBuild) != 0 {
		t.Errorf("ENTRYPOINT must reset the base's CMD and triggers must not be inherited: cmd %v onbuild %v", cfg.Config.Cmd, cfg.Config.OnBuild)
	}
	h := headerMap(t, img)
	if x := h["srv/app.txt"]; x == nil || x.Uid != 33 || x.Gid != 34 {
		t.Errorf("--chown=web:www header %+v", x)
	}
	if _, ok := h["srv/from-trigger.txt"]; !ok {
		t.Errorf("ONBUILD COPY did not run: %v", keys(h))
	}
	if got, want := len(cfg.RootFS.DiffIDs), 4; got != want { // base COPY, base WORKDIR, trigger, COPY
		t.Errorf("%d layers, want %d", got, want)
	}
	m := img.Manifests[0]
	if m.BaseName != "oci:"+layout+":1" || m.BaseDigest == "" {
		t.Errorf("base annotations %+v", m)
	}

	// A base whose trigger runs a command is refused before anything is built.
	layout2, open2 := writeBase(t, baseCtx, "FROM scratch\nCOPY passwd /etc/\nONBUILD RUN make\n")
	_, err := build(t, dir, "FROM oci:"+layout2+":1\nCOPY app.txt /\n", WithOpener(open2))
	var re *RefusedError
	if !errors.As(err, &re) || re.Line != 1 || !strings.Contains(err.Error(), "ONBUILD trigger 'RUN make'") {
		t.Errorf("base with ONBUILD RUN: %v", err)
	}

	// One file onto a directory of the base without a trailing slash lands inside
	// it: the base's WORKDIR, and the standard directories.
	img = mustBuild(t, dir, "FROM oci:"+layout+":1\nCOPY app.txt /srv\nCOPY app.txt /usr/local/bin\nCOPY app.txt /renamed\n", WithOpener(open))
	h = headerMap(t, img)
	for _, want := range []string{"srv/app.txt", "usr/local/bin/app.txt", "renamed"} {
		if x, ok := h[want]; !ok || x.Typeflag != tar.TypeReg {
			t.Errorf("%s missing; have %v", want, keys(h))
		}
	}

	// COPY --from=<image> reads files of the image.
	img = mustBuild(t, dir, "FROM scratch\nCOPY --from=oci:"+layout+":1 /etc/passwd /copied\n", WithOpener(open))
	if got := layerContents(t, img)["copied"]; !strings.Contains(got, "web:x:33") {
		t.Errorf("COPY --from=image: %q", got)
	}
}

func TestTwoPlatformIndex(t *testing.T) {
	baseCtx := writeContext(t, map[string]file{"arch": {"x", 0}})
	amd := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	layout, open := writeBase(t, baseCtx, "FROM scratch\nARG TARGETARCH\nCOPY arch /arch-$TARGETARCH\n", amd, arm)
	dir := writeContext(t, map[string]file{"app": {"a", 0o755}})
	img := mustBuild(t, dir, "ARG BASE\nFROM $BASE\nARG TARGETPLATFORM\nLABEL built-for=$TARGETPLATFORM\nCOPY app /app\n",
		WithOpener(open), WithPlatforms(amd, arm), WithBuildArgs(map[string]string{"BASE": "oci:" + layout + ":1"}))
	if img.Desc.MediaType != ocispec.MediaTypeImageIndex || len(img.Manifests) != 2 {
		t.Fatalf("root %s with %d manifests", img.Desc.MediaType, len(img.Manifests))
	}
	for i, want := range []string{"linux/amd64", "linux/arm64"} {
		cfg, err := img.Config(img.Manifests[i])
		if err != nil {
			t.Fatal(err)
		}
		if platformString(cfg.Platform) != want || cfg.Config.Labels["built-for"] != want {
			t.Errorf("manifest %d: platform %s label %q, want %s", i, platformString(cfg.Platform), cfg.Config.Labels["built-for"], want)
		}
	}
	if img.Manifests[0].BaseDigest == img.Manifests[1].BaseDigest {
		t.Error("both platforms built on the same base manifest")
	}
	_, err := build(t, dir, "FROM oci:"+layout+":1\n", WithOpener(open), WithPlatforms(ocispec.Platform{OS: "linux", Architecture: "s390x"}))
	if err == nil || !strings.Contains(err.Error(), "has no image for linux/s390x") {
		t.Errorf("missing platform: %v", err)
	}
}

func TestVariableExpansionAsDocker(t *testing.T) {
	dir := writeContext(t, map[string]file{"f": {"f", 0}})
	img := mustBuild(t, dir, "# escape=`\n"+`FROM scratch
ARG A=one
ENV B=${A}-two C="${UNSET:-dflt}" D=${A:+alt} E='$A' F=`+"`"+`$A
ENV G=${A} `+"`"+`
    H=x
LABEL l1="${B}" l2=${C}
WORKDIR /w/$A
WORKDIR sub
COPY f ${A}.txt
SHELL ["/bin/bash", "-c"]
CMD echo $B
`)
	c := configOf(t, img).Config
	env := strings.Join(c.Env, " ")
	for _, want := range []string{"B=one-two", "C=dflt", "D=alt", "E=$A", "F=$A", "G=one", "H=x"} {
		if !strings.Contains(env, want) {
			t.Errorf("Env %v lacks %s", c.Env, want)
		}
	}
	if c.Labels["l1"] != "one-two" || c.Labels["l2"] != "dflt" || c.WorkingDir != "/w/one/sub" {
		t.Errorf("labels %v workdir %q", c.Labels, c.WorkingDir)
	}
	if !slices.Equal(c.Cmd, []string{"/bin/bash", "-c", "echo $B"}) {
		t.Errorf("CMD = %v", c.Cmd)
	}
	if _, ok := headerMap(t, img)["w/one/sub/one.txt"]; !ok {
		t.Errorf("COPY to a relative destination: %v", keys(headerMap(t, img)))
	}
}
