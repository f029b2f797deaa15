//go:build !unix

package main

// flushDirtyPages is a no-op where there is no sync(2); the benchmark targets Linux.
func flushDirtyPages(drop bool) {}
