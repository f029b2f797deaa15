package layering

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hubctl/hubctl/internal/progress"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// defaultPath is the PATH docker gives an image built FROM scratch.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// layerRef is one layer of a stage's image: from its base, or built here.
type layerRef struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
	// base is the image the layer comes from; nil for a layer built here.
	base *baseImage
	name string
}

// stageState is a stage being interpreted: the image config and layers so far, and
// the files its own layers added (for COPY --from=<stage>).
type stageState struct {
	index    int
	name     string
	platform ocispec.Platform
	// base is the registry or local image the stage chain starts from (nil: scratch).
	base     *baseImage
	config   dockerspec.DockerOCIImageConfig
	author   string
	layers   []layerRef
	history  []ocispec.History
	tree     *Tree
	args     map[string]string
	argOrder []string
	cmdSet   bool
	// pendingDirs are WORKDIRs not yet created by a layer.
	pendingDirs []string
}

func (s *stageState) clone() *stageState {
	c := *s
	c.config.Env = slices.Clone(s.config.Env)
	c.config.Entrypoint = slices.Clone(s.config.Entrypoint)
	c.config.Cmd = slices.Clone(s.config.Cmd)
	c.config.Labels = maps.Clone(s.config.Labels)
	c.config.ExposedPorts = maps.Clone(s.config.ExposedPorts)
	c.config.Volumes = maps.Clone(s.config.Volumes)
	c.config.OnBuild = slices.Clone(s.config.OnBuild)
	c.config.Shell = slices.Clone(s.config.Shell)
	c.layers = slices.Clone(s.layers)
	c.history = slices.Clone(s.history)
	c.tree = NewTree()
	for _, p := range s.tree.Paths() {
		e, _ := s.tree.Get(p)
		c.tree.Add(*e)
	}
	c.args = map[string]string{}
	c.argOrder = nil
	c.pendingDirs = slices.Clone(s.pendingDirs)
	return &c
}

// env is what variables expand to in the stage: its ARGs, overridden by its ENV.
func (s *stageState) env() shell.EnvGetter {
	var kv []string
	for _, k := range s.argOrder {
		kv = append(kv, k+"="+s.args[k])
	}
	kv = append(kv, s.config.Env...)
	return shell.EnvsFromSlice(kv)
}

func (s *stageState) setEnv(key, value string) {
	for i, kv := range s.config.Env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			s.config.Env[i] = key + "=" + value
			return
		}
	}
	s.config.Env = append(s.config.Env, key+"="+value)
}

// interp interprets a Dockerfile for one platform.
type interp struct {
	b        *Build
	df       *Dockerfile
	platform ocispec.Platform
	lex      *shell.Lex
	global   map[string]string
	stages   map[int]*stageState
	// bases holds the images FROM names, opened before anything is built.
	bases map[int]*baseImage
}

func (in *interp) globalEnv() shell.EnvGetter {
	var kv []string
	for k, v := range in.global {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return shell.EnvsFromSlice(kv)
}

// platformArgs are the predefined ARGs of the target and build platforms.
func platformArgs(target, build ocispec.Platform) map[string]string {
	return map[string]string{
		"TARGETPLATFORM": platformString(target), "TARGETOS": target.OS, "TARGETARCH": target.Architecture, "TARGETVARIANT": target.Variant,
		"BUILDPLATFORM": platformString(build), "BUILDOS": build.OS, "BUILDARCH": build.Architecture, "BUILDVARIANT": build.Variant,
	}
}

// prepare evaluates the global ARGs, refuses what cannot be built and opens every base
// image the needed stages name, reading their ONBUILD triggers: everything that can
// fail before a layer is written.
func (in *interp) prepare(ctx context.Context, target int) (map[int]bool, error) {
	in.global = platformArgs(in.platform, in.b.buildPlatform)
	for _, a := range in.df.MetaArgs {
		for _, kv := range a.Args {
			if v, ok := in.b.buildArgs[kv.Key]; ok {
				in.global[kv.Key] = v
				continue
			}
			if kv.Value != nil {
				v, _, err := in.lex.ProcessWord(*kv.Value, in.globalEnv())
				if err != nil {
					return nil, in.errAt(&a, err)
				}
				in.global[kv.Key] = v
			} else if _, ok := in.global[kv.Key]; !ok {
				in.global[kv.Key] = ""
			}
		}
	}
	need := in.df.needed(target, in.lex, in.globalEnv())
	if err := in.df.check(need); err != nil {
		return nil, err
	}
	in.bases = map[int]*baseImage{}
	for i, st := range in.df.Stages {
		if !need[i] {
			continue
		}
		name, _, err := in.lex.ProcessWord(st.BaseName, in.globalEnv())
		if err != nil {
			return nil, in.errAtLoc(st.Location, err)
		}
		if name == "" {
			return nil, in.errAtLoc(st.Location, fmt.Errorf("FROM %s: the base image name is empty", st.BaseName))
		}
		if _, ok := in.df.stageIndex(name, i); ok || strings.EqualFold(name, "scratch") {
			continue
		}
		plat, err := in.stagePlatform(st)
		if err != nil {
			return nil, err
		}
		in.emit(fmt.Sprintf("[%s] FROM %s: reading its manifest and config", in.stageLabel(i), name))
		base, err := openBase(ctx, in.b.open, in.b.track, name, plat)
		if err != nil {
			return nil, in.errAtLoc(st.Location, fmt.Errorf("FROM %s: %w", name, err))
		}
		base.origin.Name = name
		for _, trig := range base.config.Config.OnBuild {
			cmds, err := parseTrigger(trig)
			if err != nil {
				return nil, in.errAtLoc(st.Location, fmt.Errorf("ONBUILD trigger of %s: %w", name, err))
			}
			for _, c := range cmds {
				if err := refuse(name+" (ONBUILD trigger)", c); err != nil {
					re := err.(*RefusedError)
					re.File, re.Line = in.df.Name, lineAt(st.Location)
					re.Why = "the base image " + name + " has the ONBUILD trigger '" + trig + "', and " + re.Why
					return nil, re
				}
			}
		}
		in.bases[i] = base
	}
	return need, nil
}

func (in *interp) stagePlatform(st instructions.Stage) (ocispec.Platform, error) {
	if st.Platform == "" {
		return in.platform, nil
	}
	v, _, err := in.lex.ProcessWord(st.Platform, in.globalEnv())
	if err != nil {
		return ocispec.Platform{}, in.errAtLoc(st.Location, err)
	}
	p, err := ParsePlatform(v)
	if err != nil {
		return ocispec.Platform{}, in.errAtLoc(st.Location, fmt.Errorf("FROM --platform=%s: %w", v, err))
	}
	return p, nil
}

// parseTrigger parses an ONBUILD trigger as the instructions it stands for.
func parseTrigger(trig string) ([]instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(trig))
	if err != nil {
		return nil, err
	}
	var out []instructions.Command
	for _, n := range res.AST.Children {
		c, err := instructions.ParseCommand(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func lineAt(loc []parser.Range) int {
	if len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

func (in *interp) errAt(c instructions.Command, err error) error {
	return in.errAtLoc(c.Location(), err)
}

func (in *interp) errAtLoc(loc []parser.Range, err error) error {
	if _, ok := err.(*RefusedError); ok {
		return err
	}
	if l := lineAt(loc); l > 0 {
		return fmt.Errorf("%s:%d: %w", in.df.Name, l, err)
	}
	return fmt.Errorf("%s: %w", in.df.Name, err)
}

func (in *interp) stageLabel(i int) string {
	if n := in.df.Stages[i].Name; n != "" {
		return n
	}
	return strconv.Itoa(i)
}

func (in *interp) emit(msg string) {
	if in.b.progress != nil {
		if len(in.b.platforms) > 1 {
			msg = platformString(in.platform) + " " + msg
		}
		in.b.progress(progress.Event{Kind: progress.Info, Message: msg})
	}
}

// run interprets the needed stages in order and returns the target's state.
func (in *interp) run(ctx context.Context, target int, need map[int]bool) (*stageState, error) {
	in.stages = map[int]*stageState{}
	for i := 0; i <= target; i++ {
		if !need[i] {
			continue
		}
		st, err := in.runStage(ctx, i)
		if err != nil {
			return nil, err
		}
		in.stages[i] = st
	}
	return in.stages[target], nil
}

func (in *interp) runStage(ctx context.Context, i int) (*stageState, error) {
	def := in.df.Stages[i]
	name, _, _ := in.lex.ProcessWord(def.BaseName, in.globalEnv())
	plat, err := in.stagePlatform(def)
	if err != nil {
		return nil, err
	}
	var st *stageState
	var triggers []string
	switch j, isStage := in.df.stageIndex(name, i); {
	case isStage:
		st = in.stages[j].clone()
	case strings.EqualFold(name, "scratch"):
		st = &stageState{tree: NewTree(), args: map[string]string{}}
		st.config.Env = []string{defaultPath}
	default:
		base := in.bases[i]
		st = &stageState{base: base, tree: NewTree(), args: map[string]string{}}
		st.config = base.config.Config
		st.config = in.cloneConfig(st.config)
		triggers = base.config.Config.OnBuild
		st.config.OnBuild = nil
		st.author = base.config.Author
		st.history = slices.Clone(base.config.History)
		for k, l := range base.manifest.Layers {
			st.layers = append(st.layers, layerRef{desc: l, diffID: base.config.RootFS.DiffIDs[k], base: base})
		}
	}
	st.index, st.name, st.platform = i, def.Name, plat
	in.emit(fmt.Sprintf("[%s] %s", in.stageLabel(i), def.SourceCode))
	for _, trig := range triggers {
		cmds, err := parseTrigger(trig)
		if err != nil {
			return nil, in.errAtLoc(def.Location, err)
		}
		for _, c := range cmds {
			in.emit(fmt.Sprintf("[%s] ONBUILD trigger of %s: %s", in.stageLabel(i), name, trig))
			if err := in.dispatch(ctx, st, c, def.Location); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range def.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := in.dispatch(ctx, st, c, c.Location()); err != nil {
			return nil, err
		}
	}
	if len(st.pendingDirs) > 0 {
		var entries []Entry
		for _, d := range st.pendingDirs {
			entries = append(entries, Entry{Path: d, Kind: KindDir, Mode: 0o755})
		}
		st.pendingDirs = nil
		if err := in.addLayer(st, entries, "WORKDIR "+st.config.WorkingDir, "workdir"); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (in *interp) cloneConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	tmp := &stageState{config: c, tree: NewTree()}
	return tmp.clone().config
}

// dispatch applies one instruction to the stage.
func (in *interp) dispatch(ctx context.Context, st *stageState, c instructions.Command, loc []parser.Range) error {
	if err := refuse(in.df.Name, c); err != nil {
		re := err.(*RefusedError)
		if re.Line == 0 {
			re.Line = lineAt(loc)
		}
		return re
	}
	_, isArg := c.(*instructions.ArgCommand)
	expand := func(word string) (string, error) {
		v, _, err := in.lex.ProcessWord(word, st.env())
		return v, err
	}
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok && !isArg {
		if err := ex.Expand(expand); err != nil {
			return in.errAtLoc(loc, err)
		}
	}
	if ex, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := ex.ExpandRaw(func(word string) (string, error) {
			lex := shell.NewLex('\\')
			lex.SkipProcessQuotes = true
			v, _, err := lex.ProcessWord(word, st.env())
			return v, err
		}); err != nil {
			return in.errAtLoc(loc, err)
		}
	}
	code := c.(interface{ String() string }).String()
	empty := true
	var err error
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			st.setEnv(kv.Key, kv.Value)
		}
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			key, err := expand(kv.Key)
			if err != nil {
				return in.errAtLoc(loc, err)
			}
			v, given := in.b.buildArgs[key]
			switch {
			case given:
			case kv.Value != nil:
				if v, err = expand(*kv.Value); err != nil {
					return in.errAtLoc(loc, err)
				}
			default:
				v = in.global[key]
			}
			if _, ok := st.args[key]; !ok {
				st.argOrder = append(st.argOrder, key)
			}
			st.args[key] = v
		}
	case *instructions.LabelCommand:
		if st.config.Labels == nil {
			st.config.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			st.config.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		st.author = c.Maintainer
	case *instructions.WorkdirCommand:
		p := c.Path
		if !path.IsAbs(p) {
			wd := st.config.WorkingDir
			if wd == "" {
				wd = "/"
			}
			p = path.Join(wd, p)
		}
		st.config.WorkingDir = path.Clean(p)
		if d := cleanPath(p); d != "" && !st.tree.IsDir(d) {
			st.pendingDirs = append(st.pendingDirs, d)
		}
	case *instructions.UserCommand:
		st.config.User = c.User
	case *instructions.ExposeCommand:
		err = in.expose(st, c, expand)
	case *instructions.VolumeCommand:
		if st.config.Volumes == nil {
			st.config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return in.errAtLoc(loc, fmt.Errorf("VOLUME specified can not be an empty string"))
			}
			st.config.Volumes[v] = struct{}{}
		}
	case *instructions.EntrypointCommand:
		st.config.Entrypoint = in.cmdLine(st, c.ShellDependantCmdLine)
		if !st.cmdSet {
			st.config.Cmd = nil
		}
	case *instructions.CmdCommand:
		st.config.Cmd = in.cmdLine(st, c.ShellDependantCmdLine)
		st.cmdSet = true
	case *instructions.ShellCommand:
		st.config.Shell = slices.Clone(c.Shell)
	case *instructions.StopSignalCommand:
		st.config.StopSignal = c.Signal
	case *instructions.HealthCheckCommand:
		h := *c.Health
		st.config.Healthcheck = &h
	case *instructions.OnbuildCommand:
		st.config.OnBuild = append(st.config.OnBuild, c.Expression)
	case *instructions.CopyCommand:
		empty = false
		err = in.copy(ctx, st, copyArgs{sd: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			exclude: c.ExcludePatterns, comments: c.Comments(), code: code}, expand)
	case *instructions.AddCommand:
		empty = false
		unpack := c.Unpack == nil || *c.Unpack
		err = in.copy(ctx, st, copyArgs{sd: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod,
			exclude: c.ExcludePatterns, comments: c.Comments(), code: code, add: true, unpack: unpack}, expand)
	default:
		return in.errAtLoc(loc, fmt.Errorf("%s is not supported by hubctl build", strings.ToUpper(c.Name())))
	}
	if err != nil {
		return in.errAtLoc(loc, err)
	}
	if empty {
		st.history = append(st.history, ocispec.History{Created: in.b.created(), CreatedBy: code, EmptyLayer: true, Comment: "hubctl build"})
	}
	return nil
}

// cmdLine is a CMD or ENTRYPOINT: the exec form as written, or the shell form run by
// the stage's SHELL.
func (in *interp) cmdLine(st *stageState, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := st.config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

func (in *interp) expose(st *stageState, c *instructions.ExposeCommand, expand func(string) (string, error)) error {
	if st.config.ExposedPorts == nil {
		st.config.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range c.Ports {
		p, err := expand(p)
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(p) {
			port, proto, _ := strings.Cut(f, "/")
			if proto == "" {
				proto = "tcp"
			}
			proto = strings.ToLower(proto)
			if proto != "tcp" && proto != "udp" && proto != "sctp" {
				return fmt.Errorf("EXPOSE %s: protocol must be tcp, udp or sctp", f)
			}
			lo, hi, isRange := strings.Cut(port, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || a < 1 || b > 65535 || b < a {
				return fmt.Errorf("EXPOSE %s: invalid port", f)
			}
			for n := a; n <= b; n++ {
				st.config.ExposedPorts[strconv.Itoa(n)+"/"+proto] = struct{}{}
			}
		}
	}
	return nil
}
