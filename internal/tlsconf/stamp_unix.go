//go:build unix

package tlsconf

import (
	"os"
	"syscall"
)

// stampOf identifies a file's content cheaply: a rename over it changes the inode even
// when size and time do not.
func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
	}
	return s
}
