package tlsconf

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// FileCert serves the certificate and key in two PEM files (the certificate file may
// hold the chain after the leaf), re-read when either file changes: a renewed
// certificate written over the old one (certbot, cert-manager, a cron job) is served
// on the next connection without a restart. A pair that does not load (a half-written
// file, a key that does not match yet) leaves the last good pair in service.
type FileCert struct {
	CertFile, KeyFile string
	// OnError hears about a changed pair that failed to load; nil ignores it.
	OnError func(error)

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp [2]fileStamp
}

type fileStamp struct {
	size    int64
	modTime time.Time
	ino     uint64
}

// Load reads the pair now; it must load at start.
func (f *FileCert) Load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload(true)
}

// GetCertificate is tls.Config.GetCertificate. It looks at the two files' metadata on
// every handshake (two stat calls, a few microseconds against the handshake's
// signature), so a replaced pair is served on the very next connection.
func (f *FileCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reload(false); err != nil && f.OnError != nil {
		f.OnError(err)
	}
	if f.cert == nil {
		return nil, fmt.Errorf("no certificate loaded from %s", f.CertFile)
	}
	return f.cert, nil
}

func (f *FileCert) reload(force bool) error {
	var st [2]fileStamp
	for i, p := range []string{f.CertFile, f.KeyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		st[i] = stampOf(fi)
	}
	if !force && st == f.stamp {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s: %w", f.CertFile, err)
	}
	f.cert, f.stamp = &pair, st
	return nil
}
