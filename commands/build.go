package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/imagestore"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/progress"
	"github.com/hubctl/hubctl/internal/transfer"
	"github.com/hubctl/hubctl/layering"
	"github.com/hubctl/hubctl/tui"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// BuildOptions are the inputs of `hubctl build`.
type BuildOptions struct {
	IO         *iostreams.IOStreams
	Context    string
	Dockerfile string
	Tags       []string
	// Outputs are local destinations (oci:DIR, oci-archive:FILE, docker-archive:FILE,
	// docker-daemon[:NAME]); "json" among -o values selects JSON output instead.
	Outputs        []string
	Push           bool
	Platforms      string
	BuildArgs      []string
	Target         string
	Labels         []string
	Annotations    []string
	IIDFile        string
	MetadataFile   string
	CacheDir       string
	NoCache        bool
	Compression    string
	PreserveModes  bool
	Layers         []string
	Preset         string
	Spec           string
	Jobs           int
	Progress       string
	Insecure       bool
	Mode           tui.Mode
	SourceDateTime time.Time
}

// NewCmdBuild returns `hubctl build`.
func NewCmdBuild(f *Factory, runF func(*BuildOptions) error) *cobra.Command {
	o := &BuildOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "build [CONTEXT]",
		Short: "Build an image without a daemon, from a Dockerfile or layer rules",
		Long: `Build an image from a Dockerfile (or from layer rules, without one) with no Docker daemon,
and push it to the registries named by -t, or write it where --output says.

The Dockerfile is read with BuildKit's parser and every instruction that needs no
container is carried out: FROM (a registry image, oci:DIR, scratch; multi-stage),
ARG, ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, ENTRYPOINT, CMD, SHELL, STOPSIGNAL,
HEALTHCHECK, ONBUILD, COPY and ADD (globs, --from, --chown, --chmod, --exclude,
--link, heredocs, local archives, .dockerignore). RUN and remote ADD sources are
refused before anything is built.

Builds are reproducible: entries sorted, times from SOURCE_DATE_EPOCH (default the
epoch), owners 0:0 unless --chown, modes 0644/0755 unless --preserve-modes. Each layer
is cached by its inputs under ~/.cache/hubctl/build, so an unchanged layer is not
tarred, compressed or uploaded again. The base image is not downloaded for a registry
destination: its layers are mounted (same registry) or streamed registry to registry.

Without a Dockerfile, CONTEXT/hubctl.yaml (or --layer / --preset) lists ordered, named
layers; files no rule matches go to the last. Presets: java, node, python, go. In a
Dockerfile, the comment "# hubctl:layers=PRESET" above a COPY splits what it copies.

The pushed reference with its digest goes to stdout, one line per tag.`,
		Example: `  hubctl build -t registry.example.com/team/app:1 .
  hubctl build -t localhost:5000/app:1 -t localhost:5000/app:latest --platform linux/amd64,linux/arm64 .
  hubctl build -t app:dev --output docker-daemon .
  hubctl build --output oci:./out . && hubctl push oci:./out registry.example.com/app:1
  hubctl build --preset java -t registry.example.com/team/svc:1 target/`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Context = "."
			if len(args) == 1 {
				o.Context = args[0]
			}
			if err := o.validate(cmd, f); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return buildRun(cmd.Context(), f, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Dockerfile, "file", "f", "", "The Dockerfile (default CONTEXT/Dockerfile)")
	fl.StringArrayVarP(&o.Tags, "tag", "t", nil, "Push to this `reference` (repeatable); with --output, names the image")
	fl.StringArrayVarP(&o.Outputs, "output", "o", nil, "Write the image here instead of pushing: oci:DIR, oci-archive:FILE, docker-archive:FILE, docker-daemon[:NAME]; or json for JSON output (repeatable)")
	fl.BoolVar(&o.Push, "push", false, "Push to the -t references as well as writing --output")
	fl.StringVar(&o.Platforms, "platform", "", "Build for these `platforms` (linux/amd64,linux/arm64); more than one gives an index")
	fl.StringArrayVar(&o.BuildArgs, "build-arg", nil, "Set an ARG: `NAME=VALUE`, or NAME to take it from the environment")
	fl.StringVar(&o.Target, "target", "", "Build this `stage` of a multi-stage Dockerfile")
	fl.StringArrayVar(&o.Labels, "label", nil, "Add a label to the image config: `KEY=VALUE`")
	fl.StringArrayVar(&o.Annotations, "annotation", nil, "Add an annotation to the manifest (and index): `KEY=VALUE`")
	fl.StringVar(&o.IIDFile, "iidfile", "", "Write the image digest to this `file`")
	fl.StringVar(&o.MetadataFile, "metadata-file", "", "Write the build result as JSON to this `file` (as buildx does)")
	fl.StringVar(&o.CacheDir, "cache-dir", "", "Layer cache `directory` (default ~/.cache/hubctl/build)")
	fl.BoolVar(&o.NoCache, "no-cache", false, "Build every layer again, in a throw-away cache")
	fl.StringVar(&o.Compression, "compression", "gzip", "Layer compression: gzip or zstd")
	fl.BoolVar(&o.PreserveModes, "preserve-modes", false, "Keep the context's file modes (as docker does) instead of 0644/0755")
	fl.StringArrayVar(&o.Layers, "layer", nil, "A layer rule without a Dockerfile: `NAME=GLOB[,GLOB…]` (repeatable, lowest first)")
	fl.StringVar(&o.Preset, "preset", "", "Layer the context by a preset without a Dockerfile: "+strings.Join(layering.PresetNames(), ", "))
	fl.StringVar(&o.Spec, "spec", "", "The layering `file` (default CONTEXT/hubctl.yaml when there is no Dockerfile)")
	fl.IntVarP(&o.Jobs, "jobs", "j", 4, "Blobs pushed in parallel")
	fl.StringVar(&o.Progress, "progress", "auto", "Progress display: auto, tty, plain or quiet")
	fl.BoolVar(&o.Insecure, "insecure", false, "Allow plain HTTP to the registries named on the command line (loopback always is)")
	_ = cmd.MarkFlagFilename("file")
	_ = cmd.MarkFlagFilename("spec", "yaml", "yml")
	_ = cmd.MarkFlagDirname("cache-dir")
	return cmd
}

func (o *BuildOptions) validate(cmd *cobra.Command, f *Factory) error {
	if o.Jobs < 1 {
		return usageErrorf(cmd, "--jobs must be at least 1")
	}
	mode, err := tui.ParseMode(o.Progress)
	if err != nil {
		return usageErrorf(cmd, "%v", err)
	}
	var outs []string
	for _, out := range o.Outputs {
		if out == "json" {
			mode = tui.ModeJSON
			continue
		}
		if out == "docker-daemon" {
			outs = append(outs, out)
			continue
		}
		l, err := transfer.ParseLocation(out)
		if err != nil || l.IsRegistry() {
			return usageErrorf(cmd, "--output %s: want oci:DIR, oci-archive:FILE, docker-archive:FILE, docker-daemon[:NAME] or json (push to a registry with -t)", out)
		}
		outs = append(outs, out)
	}
	o.Outputs, o.Mode = outs, mode
	if len(o.Tags) == 0 && len(o.Outputs) == 0 {
		return usageErrorf(cmd, "say where the image goes: -t REGISTRY/REPO:TAG to push, or --output")
	}
	for _, t := range o.Tags {
		l, err := transfer.ParseLocation(t)
		if err != nil || !l.IsRegistry() {
			return usageErrorf(cmd, "-t %s: want a registry reference like registry.example.com/team/app:1", t)
		}
	}
	for _, out := range o.Outputs {
		if out == "docker-daemon" && len(o.Tags) == 0 {
			return usageErrorf(cmd, "--output docker-daemon needs a name: docker-daemon:NAME or -t NAME")
		}
	}
	if o.Push && len(o.Tags) == 0 {
		return usageErrorf(cmd, "--push needs -t")
	}
	if _, err := layering.ParseCompression(o.Compression); err != nil {
		return usageErrorf(cmd, "--compression: %v", err)
	}
	if _, err := parsePlatformList(o.Platforms); err != nil {
		return usageErrorf(cmd, "--platform: %v", err)
	}
	for _, kv := range append(append([]string{}, o.Labels...), o.Annotations...) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return usageErrorf(cmd, "%q: want KEY=VALUE", kv)
		}
	}
	for _, l := range o.Layers {
		if _, err := layering.ParseLayerFlag(l); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
	}
	if o.Preset != "" {
		if _, ok := layering.Presets[o.Preset]; !ok {
			return usageErrorf(cmd, "--preset %s: want one of %s", o.Preset, strings.Join(layering.PresetNames(), ", "))
		}
	}
	if o.Dockerfile != "" && (len(o.Layers) > 0 || o.Preset != "" || o.Spec != "") {
		return usageErrorf(cmd, "-f builds from a Dockerfile; --layer, --preset and --spec build without one")
	}
	// A name-only --build-arg takes its value from the environment; docker skips it
	// when the variable is not set.
	var args []string
	for _, a := range o.BuildArgs {
		if k, _, ok := strings.Cut(a, "="); ok {
			if k == "" {
				return usageErrorf(cmd, "--build-arg %q: want NAME=VALUE or NAME", a)
			}
			args = append(args, a)
		} else if v, ok := f.LookupEnv(a); ok {
			args = append(args, a+"="+v)
		}
	}
	o.BuildArgs = args
	o.SourceDateTime = time.Unix(0, 0).UTC()
	if v, ok := f.LookupEnv("SOURCE_DATE_EPOCH"); ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return usageErrorf(cmd, "SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
		}
		o.SourceDateTime = time.Unix(n, 0).UTC()
	}
	return nil
}

func parsePlatformList(s string) ([]ocispec.Platform, error) {
	var out []ocispec.Platform
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pl, err := layering.ParsePlatform(p)
		if err != nil {
			return nil, err
		}
		out = append(out, pl)
	}
	return out, nil
}

func parseKV(list []string) map[string]string {
	if len(list) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// buildResult is the final JSON line of -o json, and what --metadata-file holds.
type buildResult struct {
	Event      string                `json:"event,omitempty"`
	Digest     string                `json:"digest"`
	MediaType  string                `json:"mediaType"`
	References []string              `json:"references"`
	Platforms  []buildPlatformResult `json:"platforms"`
	Layers     []buildLayerResult    `json:"layers"`
	Summary    *progress.Summary     `json:"summary,omitempty"`
	// The keys buildx writes to --metadata-file.
	ContainerImageDigest     string              `json:"containerimage.digest"`
	ContainerImageDescriptor *ocispec.Descriptor `json:"containerimage.descriptor,omitempty"`
	ImageName                string              `json:"image.name,omitempty"`
}

type buildPlatformResult struct {
	Platform   string `json:"platform"`
	Digest     string `json:"digest"`
	BaseName   string `json:"baseName,omitempty"`
	BaseDigest string `json:"baseDigest,omitempty"`
}

type buildLayerResult struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Cached bool   `json:"cached"`
}

func buildRun(ctx context.Context, f *Factory, o *BuildOptions) error {
	if os.Getenv("GOGC") == "" {
		// A build holds a context of tens of thousands of small entries for its
		// whole run; at Go's default the collector rescans them every few MiB of
		// garbage (a sixth of a no-op rebuild's CPU on a node_modules tree). Less
		// often, at a heap of a few times the context, costs little memory.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	cacheDir := o.CacheDir
	if o.NoCache {
		tmp, err := os.MkdirTemp("", "hubctl-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		cacheDir = tmp
	} else if cacheDir == "" {
		d, err := layering.DefaultCacheDir()
		if err != nil {
			return fmt.Errorf("build cache: %w (give --cache-dir)", err)
		}
		cacheDir = d
	}
	cache, err := layering.OpenCache(cacheDir)
	if err != nil {
		return err
	}
	engine, err := newEngine(f, o.Insecure, o.Tags...)
	if err != nil {
		return err
	}
	opts, err := o.layeringOptions(ctx, engine, cache)
	if err != nil {
		return err
	}
	var img *layering.Image
	var refs []string
	verb := "push"
	if len(o.Tags) == 0 || (len(o.Outputs) > 0 && !o.Push) {
		verb = "write"
	}
	summary, err := runWithProgress(ctx, renderOptions(o.IO, o.Mode, verb), func(ctx context.Context, sink progress.Sink) error {
		var err error
		img, err = layering.NewBuild(o.Context, append(opts, layering.WithProgress(sink))...).Run(ctx)
		if err != nil {
			return err
		}
		refs, err = o.deliver(ctx, engine, img, sink)
		return err
	})
	if img != nil {
		defer img.Close()
	}
	if err != nil {
		return fmt.Errorf("build %s: %w", o.Context, err)
	}
	res := o.result(img, refs)
	if o.IIDFile != "" {
		if err := os.WriteFile(o.IIDFile, []byte(img.Desc.Digest.String()), 0o644); err != nil {
			return err
		}
	}
	if o.MetadataFile != "" {
		raw, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.MetadataFile, append(raw, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.Mode == tui.ModeJSON {
		res.Event, res.Summary = "result", &summary
		return json.NewEncoder(o.IO.Out).Encode(res)
	}
	for _, r := range refs {
		fmt.Fprintln(o.IO.Out, r)
	}
	return nil
}

// layeringOptions turns the flags into the build's options.
func (o *BuildOptions) layeringOptions(ctx context.Context, engine *transfer.Engine, cache *layering.Cache) ([]layering.Option, error) {
	comp, _ := layering.ParseCompression(o.Compression)
	platforms, _ := parsePlatformList(o.Platforms)
	args := parseKV(o.BuildArgs)
	annotations := map[string]string{}
	if source, revision := layering.GitInfo(ctx, o.Context); revision != "" {
		annotations[layering.AnnotationRevision] = revision
		if source != "" {
			annotations[layering.AnnotationSource] = source
		}
	}
	for k, v := range parseKV(o.Annotations) {
		annotations[k] = v
	}
	opts := []layering.Option{
		layering.WithCache(cache), layering.WithCompression(comp), layering.WithPlatforms(platforms...),
		layering.WithBuildArgs(args), layering.WithTarget(o.Target), layering.WithLabels(parseKV(o.Labels)),
		layering.WithAnnotations(annotations), layering.WithEpoch(o.SourceDateTime),
		layering.WithPreserveModes(o.PreserveModes), layering.WithOpener(opener(engine)),
	}
	spec, useSpec, err := o.spec()
	if err != nil {
		return nil, err
	}
	if useSpec {
		opts = append(opts, layering.WithSpec(spec))
	} else if o.Dockerfile != "" {
		opts = append(opts, layering.WithDockerfile(o.Dockerfile))
	}
	return opts, nil
}

// spec returns the layering spec when the build has no Dockerfile: --spec, --layer,
// --preset, or CONTEXT/hubctl.yaml when CONTEXT/Dockerfile is missing.
func (o *BuildOptions) spec() (layering.Spec, bool, error) {
	if o.Dockerfile != "" {
		return layering.Spec{}, false, nil
	}
	file := o.Spec
	if file == "" {
		if _, err := os.Stat(filepath.Join(o.Context, "Dockerfile")); err == nil && len(o.Layers) == 0 && o.Preset == "" {
			return layering.Spec{}, false, nil
		}
		if _, err := os.Stat(filepath.Join(o.Context, "hubctl.yaml")); err == nil {
			file = filepath.Join(o.Context, "hubctl.yaml")
		}
	}
	var s layering.Spec
	if file != "" {
		var err error
		if s, err = layering.LoadSpec(file); err != nil {
			return s, false, err
		}
	} else if len(o.Layers) == 0 && o.Preset == "" {
		return s, false, fmt.Errorf("%s has no Dockerfile and no hubctl.yaml: give -f, --layer or --preset", o.Context)
	} else {
		s.Name = "command line"
	}
	if o.Preset != "" {
		s.Preset, s.Layers = o.Preset, nil
	}
	if len(o.Layers) > 0 {
		s.Layers = nil
		for _, l := range o.Layers {
			r, _ := layering.ParseLayerFlag(l)
			s.Layers = append(s.Layers, r)
		}
	}
	s.Exclude = append(s.Exclude, "hubctl.yaml") // the spec is not part of the image
	return s, true, nil
}

// opener opens base images through the transfer engine: registry references with the
// same credentials as every verb, and local forms.
func opener(engine *transfer.Engine) layering.Opener {
	return func(ctx context.Context, name string) (imagestore.Source, layering.Origin, error) {
		l, err := transfer.ParseLocation(name)
		if err != nil {
			return nil, layering.Origin{}, err
		}
		src, err := engine.Open(ctx, l)
		if err != nil {
			return nil, layering.Origin{}, err
		}
		origin := layering.Origin{Name: name}
		if l.IsRegistry() {
			origin.Host, origin.Repo = l.Ref.Host, l.Ref.Path
		}
		return src, origin, nil
	}
}

// deliver pushes the image to every -t reference (unless only --output is wanted) and
// writes every --output, returning the references with the digest.
func (o *BuildOptions) deliver(ctx context.Context, engine *transfer.Engine, img *layering.Image, sink progress.Sink) ([]string, error) {
	var refs []string
	copyTo := func(dst string, local bool) error {
		l, err := transfer.ParseLocation(dst)
		if err != nil {
			return err
		}
		img.FetchBase(local)
		res, err := engine.CopyFrom(ctx, img, "build "+o.Context, l, transfer.Options{Jobs: o.Jobs, Progress: sink})
		if err != nil {
			return err
		}
		refs = append(refs, res.Reference)
		return nil
	}
	if len(o.Outputs) == 0 || o.Push {
		for _, t := range o.Tags {
			if err := copyTo(t, false); err != nil {
				return refs, err
			}
		}
	}
	for _, out := range o.Outputs {
		dst, err := o.localDestination(out)
		if err != nil {
			return refs, err
		}
		if err := copyTo(dst, true); err != nil {
			return refs, err
		}
	}
	return refs, nil
}

// localDestination names an --output: docker-daemon and archives take the image name
// from the first -t when they have none.
func (o *BuildOptions) localDestination(out string) (string, error) {
	name := ""
	if len(o.Tags) > 0 {
		name = o.Tags[0]
	}
	switch {
	case out == "docker-daemon":
		if name == "" {
			return "", errors.New("--output docker-daemon needs a name: docker-daemon:NAME or -t NAME")
		}
		return "docker-daemon:" + name, nil
	case strings.HasPrefix(out, "docker-archive:") && name != "":
		if l, _ := transfer.ParseLocation(out); l.Name == "" {
			return out + ":" + name, nil
		}
	}
	return out, nil
}

func (o *BuildOptions) result(img *layering.Image, refs []string) buildResult {
	res := buildResult{Digest: img.Desc.Digest.String(), MediaType: img.Desc.MediaType, References: refs,
		ContainerImageDigest: img.Desc.Digest.String(), ContainerImageDescriptor: &ocispec.Descriptor{
			MediaType: img.Desc.MediaType, Digest: img.Desc.Digest, Size: img.Desc.Size}}
	res.ImageName = strings.Join(o.Tags, ",")
	if res.References == nil {
		res.References = []string{}
	}
	for _, pm := range img.Manifests {
		res.Platforms = append(res.Platforms, buildPlatformResult{Platform: pm.Platform.OS + "/" + pm.Platform.Architecture +
			variantSuffix(pm.Platform.Variant), Digest: pm.Desc.Digest.String(), BaseName: pm.BaseName, BaseDigest: pm.BaseDigest})
	}
	for _, l := range img.Layers {
		res.Layers = append(res.Layers, buildLayerResult{Digest: l.Digest.String(), Size: l.Size, Cached: l.Cached})
	}
	return res
}

func variantSuffix(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}
