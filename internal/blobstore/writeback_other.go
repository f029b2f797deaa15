//go:build !linux

package blobstore

import "os"

// startWriteback is a no-op where the OS has no way to start writeback early; the final
// fsync does all of it.
func startWriteback(f *os.File, off, n int64) {}
