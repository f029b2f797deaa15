package blobstore

// SetBootID makes s believe the machine booted as id ("": a machine that names no boot,
// so appends are fsync'd), as after a restart of the machine.
func SetBootID(s *FS, id string) { s.boot = id }
