//go:build linux

package blobstore

import (
	"os"
	"strings"
)

// bootID returns the id Linux draws at every boot of the machine, or "" if it cannot be
// read. An upload appended to without an fsync records it: bytes of an earlier boot may
// never have reached the disk.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
