package layering

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Dockerfile is a parsed Dockerfile: its stages and the ARGs before the first FROM.
type Dockerfile struct {
	// Name is the file as the user named it, for messages ("Dockerfile:12: …").
	Name     string
	Stages   []instructions.Stage
	MetaArgs []instructions.ArgCommand
	Escape   rune
	// Syntax is the "# syntax=" directive, if any (hubctl reads the file itself and
	// only notes it).
	Syntax   string
	Warnings []string
}

// RefusedError is an instruction hubctl build cannot carry out (RUN, a remote ADD),
// found before anything is built.
type RefusedError struct {
	File        string
	Line        int
	Instruction string
	Why         string
	Instead     string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s; %s", e.File, e.Line, e.Instruction, e.Why, e.Instead)
}

// ParseDockerfile parses content with BuildKit's parser (escape and syntax directives,
// heredocs, line continuations) into stages.
func ParseDockerfile(name string, content []byte) (*Dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, locErr(err))
	}
	df := &Dockerfile{Name: name, Escape: res.EscapeToken}
	if syntax, _, _, ok := parser.DetectSyntax(content); ok {
		df.Syntax = syntax
	}
	for _, w := range res.Warnings {
		df.Warnings = append(df.Warnings, w.Short)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		var line int
		var le *parser.LocationError
		if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			line = le.Locations[0][0].Start.Line
		}
		if line > 0 {
			return nil, fmt.Errorf("%s:%d: %v", name, line, unwrapAll(err))
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction", name)
	}
	df.Stages, df.MetaArgs = stages, metaArgs
	return df, nil
}

func locErr(err error) error { return errors.New(unwrapAll(err)) }

// unwrapAll is the message of the innermost error, without BuildKit's wrapping.
func unwrapAll(err error) string {
	msg := err.Error()
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		msg = e.Error()
	}
	return msg
}

func lineOf(c instructions.Command) int {
	if loc := c.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// stageIndex finds a stage by name (case-insensitive, as docker does) or number among
// the first n stages.
func (df *Dockerfile) stageIndex(name string, n int) (int, bool) {
	for i := 0; i < n && i < len(df.Stages); i++ {
		if df.Stages[i].Name != "" && strings.EqualFold(df.Stages[i].Name, name) {
			return i, true
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < n && i < len(df.Stages) {
		return i, true
	}
	return 0, false
}

// targetIndex is the stage --target names, or the last.
func (df *Dockerfile) targetIndex(target string) (int, error) {
	if target == "" {
		return len(df.Stages) - 1, nil
	}
	if i, ok := df.stageIndex(target, len(df.Stages)); ok {
		return i, nil
	}
	var names []string
	for _, s := range df.Stages {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return 0, fmt.Errorf("--target %s: no such stage in %s (stages: %s)", target, df.Name, strings.Join(names, ", "))
}

// needed returns the stages the target depends on (through FROM and COPY --from),
// expanding stage names with the global args.
func (df *Dockerfile) needed(target int, lex *shell.Lex, global shell.EnvGetter) map[int]bool {
	need := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		st := df.Stages[i]
		if base, _, err := lex.ProcessWord(st.BaseName, global); err == nil {
			if j, ok := df.stageIndex(base, i); ok {
				visit(j)
			}
		}
		for _, c := range st.Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				if j, ok := df.stageIndex(cp.From, i); ok {
					visit(j)
				}
			}
		}
	}
	visit(target)
	return need
}

// check refuses, before anything is built, what hubctl build cannot do in the stages
// that are needed: RUN, remote ADD sources, COPY --parents.
func (df *Dockerfile) check(need map[int]bool) error {
	for i, st := range df.Stages {
		if !need[i] {
			continue
		}
		for _, c := range st.Commands {
			if err := refuse(df.Name, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// refuse returns the RefusedError for a command hubctl build cannot carry out.
func refuse(file string, c instructions.Command) error {
	switch c := c.(type) {
	case *instructions.RunCommand:
		return &RefusedError{File: file, Line: lineOf(c), Instruction: "RUN",
			Why:     "hubctl build runs no commands (there is no daemon and no container)",
			Instead: "build what RUN makes before 'hubctl build' (on the host or in a CI step) and COPY it in, or build this Dockerfile with 'docker build'"}
	case *instructions.AddCommand:
		for _, s := range c.SourcePaths {
			if isRemote(s) {
				return &RefusedError{File: file, Line: lineOf(c), Instruction: "ADD " + s,
					Why:     "hubctl build does not download remote sources (the build must not depend on the network)",
					Instead: "download the file into the build context first (curl -o, git clone) and COPY or ADD it from there"}
			}
		}
	case *instructions.CopyCommand:
		if c.Parents {
			return &RefusedError{File: file, Line: lineOf(c), Instruction: "COPY --parents",
				Why: "--parents is not supported", Instead: "copy each directory to its destination explicitly"}
		}
	}
	return nil
}

// isRemote reports whether an ADD source is a URL or a git address.
func isRemote(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "://") || strings.HasPrefix(l, "git@")
}
