// Package iostreams is the standard input, output and error of a command, injected so
// that commands never touch os.Stdout directly and tests can run them in-process.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"github.com/mattn/go-isatty"
)

// IOStreams are the streams a command reads and writes. Out carries only results (a
// digest, a reference, JSON); progress, logs and errors go to ErrOut so output composes
// in pipelines.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	inTTY, outTTY, errTTY bool
	noColor               bool
}

// System returns the process's streams, detecting which of them are terminals.
func System() *IOStreams {
	return &IOStreams{
		In:      os.Stdin,
		Out:     os.Stdout,
		ErrOut:  os.Stderr,
		inTTY:   isTerminal(os.Stdin),
		outTTY:  isTerminal(os.Stdout),
		errTTY:  isTerminal(os.Stderr),
		noColor: os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb",
	}
}

// Test returns streams backed by buffers (stdin, stdout, stderr), none of them a terminal.
func Test() (ios *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.inTTY }

// IsStdoutTTY reports whether stdout is a terminal, which selects interactive output.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY reports whether stderr is a terminal, where progress bars may be drawn.
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

// SetTTY marks the streams as terminals or not; tests use it to exercise TTY output.
func (s *IOStreams) SetTTY(in, out, err bool) { s.inTTY, s.outTTY, s.errTTY = in, out, err }

// ColorEnabled reports whether stdout may carry ANSI colour: only on a terminal and
// never when NO_COLOR is set (https://no-color.org) or TERM is dumb.
func (s *IOStreams) ColorEnabled() bool { return s.outTTY && !s.noColor }

// NoColor reports that the user asked for no colour at all (NO_COLOR, TERM=dumb),
// whichever stream a view draws on.
func (s *IOStreams) NoColor() bool { return s.noColor }

func isTerminal(f *os.File) bool {
	fd := f.Fd()
	return isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
}
