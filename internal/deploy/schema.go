package deploy

import _ "embed"

// Schema is the JSON Schema (draft 2020-12) of a deploy file, for editors; published
// as docs/deploy.schema.json. Parse checks more than it can say.
//
//go:embed deploy.schema.json
var Schema []byte
