package commands

import (
	"errors"
	"strings"
)

// summarizer is an error that can say itself in one short line for people
// (distclient.Error: who is logged in and what was refused; dockerdaemon.EngineError:
// the image the engine lacks).
type summarizer interface {
	error
	Summary() string
}

// errorLine is the error as the one line shown without --debug: the command's own
// context (the outermost "push SRC to DST") and then the cause in words, when the
// cause can say itself so. The whole chain, with methods, URLs and digests, is for
// --debug.
func errorLine(err error) string {
	msg := err.Error()
	var s summarizer
	if errors.As(err, &s) {
		return outerContext(msg, s.Error()) + s.Summary()
	}
	return msg
}

// outerContext is the first element of msg's chain followed by ": ", or "" when msg
// is the cause itself.
func outerContext(msg, cause string) string {
	if msg == cause {
		return ""
	}
	outer, _, ok := strings.Cut(msg, ": ")
	if !ok {
		return ""
	}
	return outer + ": "
}
