//go:build !unix

package server

// lockDataDir is a no-op where flock(2) does not exist; one server per data directory
// is then the operator's responsibility.
func lockDataDir(dir string) (func(), error) { return func() {}, nil }
