// Package docs holds the user guide and the generated command reference: docs/cli
// (markdown) and docs/man (man pages). It has no code; it anchors the go:generate line
// that also writes the completion scripts in completions/.
package docs

//go:generate go run ../cmd/gen-docs -out ..
