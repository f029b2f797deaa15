//go:build !linux

package blobstore

// bootID returns "" where the OS names no boot: every append to an upload is then
// fsync'd before it is acknowledged.
func bootID() string { return "" }
