//go:build unix

package main

import "syscall"

// flushDirtyPages writes back every dirty page on the machine before a timed operation,
// so that one registry's write-back never lands in the other's measurement.
func flushDirtyPages() { syscall.Sync() }
