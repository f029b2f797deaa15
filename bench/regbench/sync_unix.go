//go:build unix

package main

import (
	"os"
	"syscall"
)

// flushDirtyPages writes back every dirty page on the machine before a timed operation,
// so that one registry's write-back never lands in the other's measurement. With drop it
// also drops the clean page cache (Linux, as root; silently skipped otherwise): on a VM
// a write into a never-touched guest page costs several times a write into a reused one
// (the host backs guest memory lazily), so without recycling the cache every push
// lands on colder memory than the one before and the figures drift down run by run.
func flushDirtyPages(drop bool) {
	syscall.Sync()
	if drop {
		_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0)
	}
}
