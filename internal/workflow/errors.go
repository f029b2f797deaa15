package workflow

import "github.com/hubctl/hubctl/internal/yamlstrict"

// Pos, Error and Errors are the strict YAML reader's (internal/yamlstrict): a place
// in a workflow file, one problem there, and every problem of one file in source order.
// Parse returns Errors as its error; errors.As recovers the list.
type (
	Pos    = yamlstrict.Pos
	Error  = yamlstrict.Error
	Errors = yamlstrict.Errors
)

// maxErrors bounds the list a hostile or badly broken file can produce.
const maxErrors = yamlstrict.MaxErrors
