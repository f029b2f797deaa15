// Package layering will build container images without a daemon, for `hubctl build`.
//
// Planned contents (a later issue; nothing is implemented yet): a Dockerfile subset
// read with BuildKit's parser, jib-style layer rules that put dependencies and
// application files in separate, cache-friendly layers, a reproducible tar writer
// (fixed timestamps, owners and ordering) and layer compression. It will expose a
// small API with functional options (WithPlatform, WithJobs, WithProgress) and emit
// progress events for tui/ to render.
package layering
