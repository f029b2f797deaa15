// Package layering builds container images without a daemon, for `hubctl build`.
//
// It reads a Dockerfile with BuildKit's parser and interprets the instructions that
// need no container (everything but RUN), or layers a directory by ordered rules and
// presets (java, node, python, go) without a Dockerfile. Layers are written as
// reproducible tars (sorted entries, fixed times and owners, normalised modes),
// compressed in parallel (gzip or zstd) and kept in a cache keyed by their inputs, so
// an unchanged layer is neither re-tarred, re-compressed nor re-uploaded. The result
// is an image (or an index of several platforms) served as an imagestore.Source, which
// the transfer engine copies to a registry or a local form.
package layering
