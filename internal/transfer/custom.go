package transfer

import "github.com/hubctl/hubctl/internal/imagestore"

// KindCustom is a location whose store the caller built: a chart or artifact made in
// memory to push, files being written by a pull. Custom makes one.
const KindCustom Kind = "custom"

// Custom returns a location that reads from src or writes to dst (either may be nil),
// named label in progress events, errors and results. The engine closes the store
// when the copy ends, as it closes the stores it opens.
func Custom(label string, src imagestore.Source, dst imagestore.Target) Location {
	return Location{Kind: KindCustom, raw: label, src: src, dst: dst}
}
